#!/usr/bin/env bash
# Starts and stops one kind of Sluice daemon on this host; shared by jobmanager.sh and
# taskmanager.sh. Several instances of a daemon may run on one host: their pids are kept, one per
# line in start order, in $SLUICE_PID_DIR/sluice-$SLUICE_IDENT_STRING-<daemon>.pid, and instance n
# logs to $SLUICE_LOG_DIR/sluice-<daemon>-<n>-<host>.log (stderr) and .out (stdout).
# Daemons are only ever signalled by the pids recorded there.
#
# Usage: daemon.sh (start|start-foreground|stop|stop-all|stop-id ID) (jobmanager|taskmanager) [args]
#   stop-id ID  stops the instance started with -D taskmanager.resource-id=ID
set -euo pipefail
set +m  # no job control: a background child must not lead its own process group (see start)

usage() {
  echo "Usage: $(basename "$0") (start|start-foreground|stop|stop-all|stop-id ID) (jobmanager|taskmanager) [args]" >&2
  exit 2
}

[ $# -ge 2 ] || usage
ACTION=$1
DAEMON=$2
shift 2

# shellcheck source=deploy/config.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/config.sh"

case "$DAEMON" in
  jobmanager | taskmanager) ;;
  *) echo "Unknown daemon '$DAEMON' (expected jobmanager or taskmanager)." >&2; usage ;;
esac

BIN="$SLUICE_BIN_DIR/sluice-$DAEMON"
HOST=$(sluice_hostname)
PID_FILE="$SLUICE_PID_DIR/sluice-$SLUICE_IDENT_STRING-$DAEMON.pid"
# Seconds to watch a new daemon before declaring it started, and to wait for one to stop.
START_WAIT=${SLUICE_START_WAIT:-1}
STOP_TIMEOUT=${SLUICE_STOP_TIMEOUT:-10}
MAX_LOG_FILES=${SLUICE_MAX_LOG_FILES:-5}

# Serialises pid file updates between concurrent invocations on this host (when flock exists).
lock_pid_dir() {
  if command -v flock >/dev/null 2>&1; then
    exec 9<"$SLUICE_PID_DIR"
    flock 9
  fi
}

# The recorded pids that still run this daemon; the pid file is rewritten to hold only those.
live_pids() {
  local pid kept=()
  [ -f "$PID_FILE" ] || return 0
  while IFS= read -r pid || [ -n "$pid" ]; do
    pid=${pid//[[:space:]]/}
    [ -n "$pid" ] || continue
    if sluice_pid_is_daemon "$pid" "$DAEMON"; then
      kept+=("$pid")
    fi
  done <"$PID_FILE"
  write_pid_file ${kept[@]+"${kept[@]}"}
  [ ${#kept[@]} -eq 0 ] || printf '%s\n' "${kept[@]}"
}

# Replaces the pid file's contents with the given pids (removes it when there are none).
write_pid_file() {
  if [ $# -eq 0 ]; then
    rm -f -- "$PID_FILE"
  else
    printf '%s\n' "$@" >"$PID_FILE.tmp.$$"
    mv -f -- "$PID_FILE.tmp.$$" "$PID_FILE"
  fi
}

remove_pid() {
  local gone=$1 pid kept=()
  [ -f "$PID_FILE" ] || return 0
  while IFS= read -r pid || [ -n "$pid" ]; do
    pid=${pid//[[:space:]]/}
    [ -n "$pid" ] && [ "$pid" != "$gone" ] && kept+=("$pid")
  done <"$PID_FILE"
  write_pid_file ${kept[@]+"${kept[@]}"}
}

# Keeps the previous MAX_LOG_FILES generations of a log file as FILE.1 (newest) .. FILE.N.
rotate_log() {
  local file=$1 i
  [ -f "$file" ] || return 0
  for ((i = MAX_LOG_FILES - 1; i >= 1; i--)); do
    [ -f "$file.$i" ] && mv -f -- "$file.$i" "$file.$((i + 1))"
  done
  if [ "$MAX_LOG_FILES" -ge 1 ]; then mv -f -- "$file" "$file.1"; else rm -f -- "$file"; fi
}

# Sends SIGTERM to the pids, waits up to STOP_TIMEOUT seconds for them to exit, then SIGKILLs the
# rest (with their process group when the daemon leads one, as it does when started by setsid).
# Each pid that is gone is removed from the pid file. Fails when one could not be stopped.
stop_pids() {
  local pid waited=0 remaining=() still=() failed=0
  for pid in "$@"; do
    echo "Stopping $DAEMON daemon (pid: $pid) on host $HOST."
    if kill -TERM "$pid" 2>/dev/null; then
      remaining+=("$pid")
    elif sluice_pid_alive "$pid"; then
      echo "Cannot signal $DAEMON daemon (pid: $pid): permission denied." >&2
      failed=1
    else
      remove_pid "$pid"
    fi
  done
  local deadline=$((STOP_TIMEOUT * 10))
  while [ ${#remaining[@]} -gt 0 ] && [ $waited -lt $deadline ]; do
    sleep 0.1
    waited=$((waited + 1))
    still=()
    for pid in "${remaining[@]}"; do
      if sluice_pid_alive "$pid"; then still+=("$pid"); else remove_pid "$pid"; fi
    done
    remaining=(${still[@]+"${still[@]}"})
  done
  for pid in ${remaining[@]+"${remaining[@]}"}; do
    echo "$DAEMON daemon (pid: $pid) did not stop within $STOP_TIMEOUT s; sending SIGKILL." >&2
    if [ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    else
      kill -KILL "$pid" 2>/dev/null || true
    fi
    waited=0
    while sluice_pid_alive "$pid" && [ $waited -lt 50 ]; do
      sleep 0.1
      waited=$((waited + 1))
    done
    if sluice_pid_alive "$pid"; then
      echo "$DAEMON daemon (pid: $pid) is still alive after SIGKILL." >&2
      failed=1
    else
      remove_pid "$pid"
    fi
  done
  return $failed
}

start_daemon() {
  if [ ! -x "$BIN" ]; then
    echo "Cannot start the $DAEMON: $BIN does not exist or is not executable." >&2
    echo "Build Sluice first (cmake -S . -B build -G Ninja && cmake --build build), or set SLUICE_BIN_DIR." >&2
    exit 1
  fi
  if [ ! -d "$SLUICE_CONF_DIR" ]; then
    echo "Cannot start the $DAEMON: configuration directory $SLUICE_CONF_DIR does not exist." >&2
    exit 1
  fi
  mkdir -p -- "$SLUICE_LOG_DIR" "$SLUICE_PID_DIR"
  lock_pid_dir

  local pids=() id
  mapfile -t pids < <(live_pids)
  if [ ${#pids[@]} -gt 0 ]; then
    echo "[INFO] ${#pids[@]} instance(s) of $DAEMON are already running on $HOST."
  fi
  id=${#pids[@]}
  local prefix="$SLUICE_LOG_DIR/sluice-$DAEMON-$id-$HOST"
  local log="$prefix.log" out="$prefix.out"
  rotate_log "$log"
  rotate_log "$out"

  echo "Starting $DAEMON daemon on host $HOST."
  # setsid gives the daemon its own session, so a terminal's hangup or Ctrl-C does not reach it;
  # with job control off our child is never a process group leader, so setsid does not fork and
  # $! is the daemon's pid. The lock descriptor is not passed on.
  local launcher=()
  command -v setsid >/dev/null 2>&1 && launcher=(setsid)
  nohup ${launcher[@]+"${launcher[@]}"} "$BIN" --config-dir "$SLUICE_CONF_DIR" "$@" \
    </dev/null >"$out" 2>"$log" 9<&- &
  local pid=$!
  echo "$pid" >>"$PID_FILE"

  # Watch it for START_WAIT seconds; a bad configuration or a taken port ends it within that time.
  local waited=0 deadline
  deadline=$(awk -v s="$START_WAIT" 'BEGIN { printf "%d", s * 10 }')
  while [ $waited -lt "$deadline" ] && sluice_pid_alive "$pid"; do
    sleep 0.1
    waited=$((waited + 1))
  done
  if ! sluice_pid_alive "$pid"; then
    local rc=0
    wait "$pid" 2>/dev/null || rc=$?
    remove_pid "$pid"
    echo "ERROR: the $DAEMON (pid: $pid) exited right after starting (exit status $rc)." >&2
    echo "Last lines of $log:" >&2
    tail -n 25 -- "$log" | sed 's/^/  /' >&2 || true
    if [ -s "$out" ]; then
      echo "Last lines of $out:" >&2
      tail -n 10 -- "$out" | sed 's/^/  /' >&2 || true
    fi
    exit 1
  fi
  echo "Started $DAEMON daemon (pid: $pid), logging to $log"
}

stop_daemon() {
  local pids=()
  lock_pid_dir
  mapfile -t pids < <(live_pids)
  if [ ${#pids[@]} -eq 0 ]; then
    echo "No $DAEMON daemon to stop on host $HOST."
    return 0
  fi
  # The most recently started instance.
  stop_pids "${pids[${#pids[@]} - 1]}"
}

# The instance whose command line sets taskmanager.resource-id to $1.
stop_daemon_with_id() {
  local pids=() pid
  lock_pid_dir
  mapfile -t pids < <(live_pids)
  for pid in ${pids[@]+"${pids[@]}"}; do
    if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "taskmanager.resource-id=$1"; then
      stop_pids "$pid"
      return
    fi
  done
  echo "No $DAEMON daemon with id $1 on host $HOST."
}

stop_all_daemons() {
  local pids=()
  lock_pid_dir
  mapfile -t pids < <(live_pids)
  if [ ${#pids[@]} -eq 0 ]; then
    echo "No $DAEMON daemon to stop on host $HOST."
    return 0
  fi
  stop_pids "${pids[@]}"
}

case "$ACTION" in
  start)
    start_daemon "$@"
    ;;
  start-foreground)
    if [ ! -x "$BIN" ]; then
      echo "Cannot start the $DAEMON: $BIN does not exist or is not executable." >&2
      exit 1
    fi
    exec "$BIN" --config-dir "$SLUICE_CONF_DIR" "$@"
    ;;
  stop)
    [ $# -eq 0 ] || echo "[WARN] ignoring extra arguments to stop: $*" >&2
    stop_daemon
    ;;
  stop-all)
    stop_all_daemons
    ;;
  stop-id)
    [ $# -eq 1 ] || usage
    stop_daemon_with_id "$1"
    ;;
  *)
    echo "Unknown action '$ACTION'." >&2
    usage
    ;;
esac
