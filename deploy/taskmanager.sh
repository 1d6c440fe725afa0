#!/usr/bin/env bash
# Starts or stops a Sluice TaskManager on this host. Several may run on one host: each `start`
# adds one, each `stop` stops the most recently started one, `stop-all` stops them all, and
# `stop-id ID` the one started with -D taskmanager.resource-id=ID.
#
# Usage: taskmanager.sh (start|start-foreground|stop|stop-all|stop-id ID) [daemon args, e.g. -D taskmanager.numberOfTaskSlots=4]
#   start             run in the background; logs in $SLUICE_LOG_DIR (the .out file holds the
#                     output of jobs' print() sinks), pid in $SLUICE_PID_DIR
#   start-foreground  run in this terminal (for containers and debugging)
set -euo pipefail

USAGE="Usage: $(basename "$0") (start|start-foreground|stop|stop-all|stop-id ID) [args]"
if [ $# -lt 1 ]; then
  echo "$USAGE" >&2
  exit 2
fi
case "$1" in
  start | start-foreground | stop | stop-all | stop-id) ;;
  *) echo "$USAGE" >&2; exit 2 ;;
esac

ACTION=$1
shift
exec "$(dirname -- "${BASH_SOURCE[0]}")/daemon.sh" "$ACTION" taskmanager "$@"
