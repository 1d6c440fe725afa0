#!/usr/bin/env bash
# Starts or stops the Sluice JobManager on this host (the cluster's master).
#
# Usage: jobmanager.sh (start|start-foreground|stop|stop-all) [daemon args, e.g. -D rest.port=8082]
#   start             run in the background; logs in $SLUICE_LOG_DIR, pid in $SLUICE_PID_DIR
#   start-foreground  run in this terminal (for containers and debugging)
#   stop              stop the most recently started JobManager on this host
set -euo pipefail

USAGE="Usage: $(basename "$0") (start|start-foreground|stop|stop-all) [args]"
if [ $# -lt 1 ]; then
  echo "$USAGE" >&2
  exit 2
fi
case "$1" in
  start | start-foreground | stop | stop-all) ;;
  *) echo "$USAGE" >&2; exit 2 ;;
esac

ACTION=$1
shift
exec "$(dirname -- "${BASH_SOURCE[0]}")/daemon.sh" "$ACTION" jobmanager "$@"
