#!/usr/bin/env bash
# Stops the Sluice cluster that start-cluster.sh started: the TaskManagers of every host in
# $SLUICE_CONF_DIR/workers (all those recorded in that host's pid file), then the JobManager on
# this host, and with high-availability.type: zookeeper those of every host in
# $SLUICE_CONF_DIR/masters. Daemons are stopped by their recorded pids only.
set -euo pipefail

DEPLOY_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=deploy/config.sh
. "$DEPLOY_DIR/config.sh"

remote_taskmanager_cmd() {
  printf 'cd %q && SLUICE_CONF_DIR=%q SLUICE_BIN_DIR=%q SLUICE_LOG_DIR=%q SLUICE_PID_DIR=%q deploy/taskmanager.sh %q' \
    "$SLUICE_HOME" "$SLUICE_CONF_DIR" "$SLUICE_BIN_DIR" "$SLUICE_LOG_DIR" "$SLUICE_PID_DIR" "$1"
}

echo "Stopping cluster (configuration: $SLUICE_CONF_DIR)."
mapfile -t WORKERS < <(sluice_read_hosts "$SLUICE_CONF_DIR/workers" | awk '!seen[$0]++')

failed=0
local_workers=0
remote_pids=()
remote_hosts=()
for host in ${WORKERS[@]+"${WORKERS[@]}"}; do
  if sluice_is_local_host "$host"; then
    local_workers=1
  else
    echo "Stopping TaskManagers on $host over ssh."
    # shellcheck disable=SC2086  # SLUICE_SSH_OPTS holds several words
    (ssh -n $SLUICE_SSH_OPTS "$host" "$(remote_taskmanager_cmd stop-all)" 2>&1 | sed "s/^/[$host] /") &
    remote_pids+=($!)
    remote_hosts+=("$host")
  fi
done
if [ $local_workers -eq 1 ]; then
  "$DEPLOY_DIR/taskmanager.sh" stop-all || failed=$((failed + 1))
fi
for i in ${remote_pids[@]+"${!remote_pids[@]}"}; do
  if ! wait "${remote_pids[$i]}"; then
    echo "ERROR: stopping the TaskManagers on ${remote_hosts[$i]} failed." >&2
    failed=$((failed + 1))
  fi
done

"$DEPLOY_DIR/jobmanager.sh" stop-all || failed=$((failed + 1))

HA_TYPE=$(sluice_config_get high-availability.type NONE | tr '[:upper:]' '[:lower:]')
if [ "$HA_TYPE" = zookeeper ]; then
  mapfile -t MASTERS < <(sluice_read_hosts "$SLUICE_CONF_DIR/masters" | awk '!seen[$0]++')
  for host in ${MASTERS[@]+"${MASTERS[@]}"}; do
    sluice_is_local_host "$host" && continue  # stopped above
    echo "Stopping JobManagers on $host over ssh."
    # shellcheck disable=SC2086  # SLUICE_SSH_OPTS holds several words
    ssh -n $SLUICE_SSH_OPTS "$host" "$(printf 'cd %q && SLUICE_CONF_DIR=%q SLUICE_BIN_DIR=%q SLUICE_LOG_DIR=%q SLUICE_PID_DIR=%q deploy/jobmanager.sh stop-all' \
      "$SLUICE_HOME" "$SLUICE_CONF_DIR" "$SLUICE_BIN_DIR" "$SLUICE_LOG_DIR" "$SLUICE_PID_DIR")" 2>&1 |
      sed "s/^/[$host] /" || failed=$((failed + 1))
  done
fi

if [ $failed -gt 0 ]; then
  echo "Some daemons could not be stopped; see the messages above." >&2
  exit 1
fi
echo "Cluster stopped."
