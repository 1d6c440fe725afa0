#!/usr/bin/env bash
# Gives the JobManager TaskManagers when its jobs need more slots, and takes back idle ones: the
# command for resourcemanager.taskmanager.request-command and .release-command, e.g.
#   resourcemanager.taskmanager.request-command: /opt/sluice/deploy/taskmanager-provider.sh
#   resourcemanager.taskmanager.release-command: /opt/sluice/deploy/taskmanager-provider.sh
#
# Usage: taskmanager-provider.sh request COUNT
#        taskmanager-provider.sh release TM_ID ADDRESS
#   request  starts COUNT TaskManagers on the hosts of $SLUICE_CONF_DIR/spare-workers (one per
#            line; a host may be listed several times), each on the host with the fewest
#            TaskManagers this script started (this host's entries locally, others over ssh with
#            $SLUICE_SSH_OPTS, as start-cluster.sh). Each gets the id tm-spare-<n> (Flink's
#            taskmanager.resource-id), recorded in $SLUICE_PID_DIR/sluice-provided-taskmanagers.
#   release  stops the TaskManager TM_ID if this script started it (others are left alone).
set -euo pipefail

DEPLOY_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=deploy/config.sh
. "$DEPLOY_DIR/config.sh"

usage() {
  echo "Usage: $(basename "$0") request COUNT | release TM_ID ADDRESS" >&2
  exit 2
}

RECORD="$SLUICE_PID_DIR/sluice-provided-taskmanagers"
mkdir -p -- "$SLUICE_PID_DIR"
touch "$RECORD"
# Requests and releases may run at once: one at a time updates the record (when flock exists).
# (A lock file of its own: the record is replaced, and daemon.sh locks the pid folder.)
if command -v flock >/dev/null 2>&1; then
  exec 8>>"$SLUICE_PID_DIR/sluice-provided.lock"
  flock 8
fi

remote_cmd() {
  printf 'cd %q && SLUICE_CONF_DIR=%q SLUICE_BIN_DIR=%q SLUICE_LOG_DIR=%q SLUICE_PID_DIR=%q deploy/taskmanager.sh' \
    "$SLUICE_HOME" "$SLUICE_CONF_DIR" "$SLUICE_BIN_DIR" "$SLUICE_LOG_DIR" "$SLUICE_PID_DIR"
  printf ' %q' "$@"
}

# Runs deploy/taskmanager.sh ARGS on HOST.
on_host() {
  local host=$1
  shift
  # The lock's descriptor is not passed on: a TaskManager would hold the lock while it lives.
  if sluice_is_local_host "$host"; then
    "$DEPLOY_DIR/taskmanager.sh" "$@" 8>&-
  else
    # shellcheck disable=SC2086  # SLUICE_SSH_OPTS holds several words
    ssh -n $SLUICE_SSH_OPTS "$host" "$(remote_cmd "$@")" 8>&-
  fi
}

request() {
  local count=$1 i host best n id started=0
  [[ "$count" =~ ^[1-9][0-9]*$ ]] || usage
  local spare="$SLUICE_CONF_DIR/spare-workers"
  mapfile -t hosts < <(sluice_read_hosts "$spare")
  if [ ${#hosts[@]} -eq 0 ]; then
    echo "ERROR: $spare lists no hosts: no TaskManager to start." >&2
    exit 1
  fi
  for ((i = 0; i < count; i++)); do
    # The spare host with the fewest TaskManagers started here (listed twice: may have two).
    best=""
    local best_n=1000000
    for host in $(printf '%s\n' "${hosts[@]}" | sort -u); do
      local slots running
      slots=$(printf '%s\n' "${hosts[@]}" | grep -cxF -- "$host")
      running=$(awk -v h="$host" '$2 == h' "$RECORD" | wc -l)
      [ "$running" -lt "$slots" ] || continue
      if [ "$running" -lt "$best_n" ]; then best=$host best_n=$running; fi
    done
    if [ -z "$best" ]; then
      echo "ERROR: every spare host of $spare runs its TaskManagers already; started $started of $count." >&2
      exit 1
    fi
    n=$(( $(cat "$SLUICE_PID_DIR/sluice-provided-count" 2>/dev/null || echo 0) + 1 ))
    echo "$n" >"$SLUICE_PID_DIR/sluice-provided-count"
    id="tm-spare-$n"
    echo "Starting TaskManager $id on $best."
    if on_host "$best" start -D "taskmanager.resource-id=$id"; then
      echo "$id $best" >>"$RECORD"
      started=$((started + 1))
    else
      echo "ERROR: TaskManager $id did not start on $best." >&2
    fi
  done
  [ "$started" -eq "$count" ]
}

release() {
  local id=$1 host
  host=$(awk -v id="$id" '$1 == id { print $2; exit }' "$RECORD")
  if [ -z "$host" ]; then
    echo "TaskManager $id was not started by $(basename "$0"); leaving it."
    return 0
  fi
  on_host "$host" stop-id "$id"
  awk -v id="$id" '$1 != id' "$RECORD" >"$RECORD.tmp.$$" && mv -f -- "$RECORD.tmp.$$" "$RECORD"
}

[ $# -ge 1 ] || usage
case "$1" in
  request) [ $# -eq 2 ] || usage; request "$2" ;;
  release) [ $# -eq 3 ] || usage; release "$2" ;;
  *) usage ;;
esac
