#!/usr/bin/env bash
# Starts a Sluice cluster: the JobManager on this host (the master), then one TaskManager per
# line of $SLUICE_CONF_DIR/workers; this host's entries start locally, other hosts over ssh
# (which must find the same installation at $SLUICE_HOME there).
# With high-availability.type: zookeeper, one JobManager per `host:webui-port` line of
# $SLUICE_CONF_DIR/masters instead (each with rest.port set to its line's port); they elect a
# leader through ZooKeeper, and TaskManagers find it there.
set -euo pipefail

DEPLOY_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=deploy/config.sh
. "$DEPLOY_DIR/config.sh"

# The command that runs deploy/taskmanager.sh ACTION on a remote host, with our directories.
remote_taskmanager_cmd() {
  printf 'cd %q && SLUICE_CONF_DIR=%q SLUICE_BIN_DIR=%q SLUICE_LOG_DIR=%q SLUICE_PID_DIR=%q deploy/taskmanager.sh %q' \
    "$SLUICE_HOME" "$SLUICE_CONF_DIR" "$SLUICE_BIN_DIR" "$SLUICE_LOG_DIR" "$SLUICE_PID_DIR" "$1"
}
# The same for deploy/jobmanager.sh ACTION [args].
remote_jobmanager_cmd() {
  printf 'cd %q && SLUICE_CONF_DIR=%q SLUICE_BIN_DIR=%q SLUICE_LOG_DIR=%q SLUICE_PID_DIR=%q deploy/jobmanager.sh' \
    "$SLUICE_HOME" "$SLUICE_CONF_DIR" "$SLUICE_BIN_DIR" "$SLUICE_LOG_DIR" "$SLUICE_PID_DIR"
  printf ' %q' "$@"
}

echo "Starting cluster (configuration: $SLUICE_CONF_DIR)."
if [ ! -f "$SLUICE_CONF_DIR/config.yaml" ]; then
  echo "ERROR: $SLUICE_CONF_DIR/config.yaml does not exist." >&2
  exit 1
fi

HA_TYPE=$(sluice_config_get high-availability.type NONE | tr '[:upper:]' '[:lower:]')
if [ "$HA_TYPE" = zookeeper ]; then
  if ! MASTERS=$(sluice_read_masters "$SLUICE_CONF_DIR/masters"); then
    echo "ERROR: $SLUICE_CONF_DIR/masters is malformed; nothing started." >&2
    exit 1
  fi
  if [ -z "$MASTERS" ]; then
    echo "ERROR: $SLUICE_CONF_DIR/masters lists no host; nothing started." >&2
    exit 1
  fi
  masters=0
  while read -r host webui_port; do
    masters=$((masters + 1))
    if sluice_is_local_host "$host"; then
      "$DEPLOY_DIR/jobmanager.sh" start -D "rest.port=$webui_port" ||
        { echo "ERROR: the JobManager on $host did not start; not starting TaskManagers." >&2; exit 1; }
    else
      echo "Starting JobManager on $host over ssh."
      # shellcheck disable=SC2086  # SLUICE_SSH_OPTS holds several words
      ssh -n $SLUICE_SSH_OPTS "$host" "$(remote_jobmanager_cmd start -D "rest.port=$webui_port")" 2>&1 |
        sed "s/^/[$host] /" ||
        { echo "ERROR: the JobManager on $host did not start; not starting TaskManagers." >&2; exit 1; }
    fi
  done <<<"$MASTERS"
  echo "$masters JobManager(s) started; one is elected leader through ZooKeeper."
elif ! "$DEPLOY_DIR/jobmanager.sh" start; then
  echo "ERROR: the JobManager did not start; not starting TaskManagers." >&2
  exit 1
fi

# TaskManagers keep trying to register, but starting them once the JobManager listens keeps
# their logs free of connection errors. (In HA mode they wait for the leader in ZooKeeper.)
JM_ADDRESS=$(sluice_config_get jobmanager.rpc.address localhost)
JM_PORT=$(sluice_config_get jobmanager.rpc.port 6123)
if [ "$JM_PORT" != 0 ] && [ "$HA_TYPE" != zookeeper ]; then
  for ((i = 0; i < 150; i++)); do
    sluice_port_in_use "$JM_ADDRESS" "$JM_PORT" && break
    sleep 0.1
  done
  if ! sluice_port_in_use "$JM_ADDRESS" "$JM_PORT"; then
    echo "[WARN] the JobManager does not accept connections at $JM_ADDRESS:$JM_PORT yet; starting TaskManagers anyway." >&2
  fi
fi

mapfile -t WORKERS < <(sluice_read_hosts "$SLUICE_CONF_DIR/workers")
if [ ${#WORKERS[@]} -eq 0 ]; then
  echo "[WARN] $SLUICE_CONF_DIR/workers lists no hosts; no TaskManager started." >&2
  exit 0
fi

failed=0
remote_pids=()
remote_hosts=()
for host in "${WORKERS[@]}"; do
  if sluice_is_local_host "$host"; then
    "$DEPLOY_DIR/taskmanager.sh" start || { echo "ERROR: TaskManager on $host did not start." >&2; failed=$((failed + 1)); }
  else
    echo "Starting TaskManager on $host over ssh."
    # shellcheck disable=SC2086  # SLUICE_SSH_OPTS holds several words
    (ssh -n $SLUICE_SSH_OPTS "$host" "$(remote_taskmanager_cmd start)" 2>&1 | sed "s/^/[$host] /") &
    remote_pids+=($!)
    remote_hosts+=("$host")
  fi
done
for i in ${remote_pids[@]+"${!remote_pids[@]}"}; do
  if ! wait "${remote_pids[$i]}"; then
    echo "ERROR: TaskManager on ${remote_hosts[$i]} did not start." >&2
    failed=$((failed + 1))
  fi
done

if [ $failed -gt 0 ]; then
  echo "$failed of ${#WORKERS[@]} TaskManager(s) did not start; see the messages above." >&2
  exit 1
fi
if [ "$HA_TYPE" = zookeeper ]; then
  echo "Cluster started: $masters JobManager(s), ${#WORKERS[@]} TaskManager(s)."
else
  echo "Cluster started: 1 JobManager, ${#WORKERS[@]} TaskManager(s)."
fi
