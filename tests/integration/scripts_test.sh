#!/usr/bin/env bash
# Integration test of the operator scripts in deploy/: starts a local cluster (a JobManager and
# two TaskManagers on free ports, with temporary configuration, log and pid directories) with
# start-cluster.sh, checks that it answers and that its daemons run, stops it with
# stop-cluster.sh and checks that nothing is left behind. Also checks that a daemon that cannot
# start is reported. Only processes started here are ever signalled, by their recorded pids.
#
# Usage: tests/integration/scripts_test.sh BUILD_DIR     (binaries in BUILD_DIR/bin)
# Set KEEP_TMP=1 to keep the temporary directory for inspection.
set -uo pipefail

if [ $# -ne 1 ]; then
  echo "Usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD_DIR=$(cd -- "$1" 2>/dev/null && pwd -P) || { echo "No such build directory: $1" >&2; exit 2; }
REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
DEPLOY="$REPO/deploy"
BIN="$BUILD_DIR/bin"

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

for b in sluice-jobmanager sluice-taskmanager sluice; do
  if [ ! -x "$BIN/$b" ]; then
    echo "Missing binary $BIN/$b; build first."
    echo "0 passed, 1 failed"
    exit 1
  fi
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-scripts-test.XXXXXX")
export SLUICE_BIN_DIR="$BIN"
export SLUICE_CONF_DIR="$TMP/conf"
export SLUICE_LOG_DIR="$TMP/log"
export SLUICE_PID_DIR="$TMP/pid"
export SLUICE_IDENT_STRING="scripts-test"
JM_PID_FILE="$SLUICE_PID_DIR/sluice-$SLUICE_IDENT_STRING-jobmanager.pid"
TM_PID_FILE="$SLUICE_PID_DIR/sluice-$SLUICE_IDENT_STRING-taskmanager.pid"
STARTED_PIDS=()  # every daemon pid seen in a pid file, for the clean-up

alive() {  # a live, non-zombie process
  [ -d "/proc/$1" ] || kill -0 "$1" 2>/dev/null || return 1
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  case "$state" in Z* | X* | '') return 1 ;; esac
}

pids_in() {
  if [ -f "$1" ]; then grep -E '^[0-9]+$' "$1" || true; fi
}

remember_pids() {
  local pid
  for pid in $(pids_in "$JM_PID_FILE") $(pids_in "$TM_PID_FILE"); do
    [[ " ${STARTED_PIDS[*]-} " == *" $pid "* ]] || STARTED_PIDS+=("$pid")
  done
}

cleanup() {
  local pid i left=()
  remember_pids
  for pid in ${STARTED_PIDS[@]+"${STARTED_PIDS[@]}"}; do
    if alive "$pid"; then
      echo "cleanup: stopping leftover daemon pid $pid"
      kill -TERM "$pid" 2>/dev/null && left+=("$pid")
    fi
  done
  for ((i = 0; i < 50 && ${#left[@]} > 0; i++)); do
    sleep 0.1
    local still=()
    for pid in "${left[@]}"; do alive "$pid" && still+=("$pid"); done
    left=(${still[@]+"${still[@]}"})
  done
  for pid in ${left[@]+"${left[@]}"}; do kill -KILL "$pid" 2>/dev/null; done
  if [ "${KEEP_TMP:-0}" = 1 ]; then
    echo "Temporary files kept in $TMP"
  else
    rm -rf -- "$TMP"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dump_logs() {
  local f
  for f in "$SLUICE_LOG_DIR"/*; do
    [ -f "$f" ] || continue
    echo "----- $f (last lines)"
    tail -n 20 -- "$f"
  done
}

# Two distinct free ports, bound at the same time so they differ.
read -r JM_PORT REST_PORT < <(python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])')

mkdir -p "$SLUICE_CONF_DIR" "$SLUICE_LOG_DIR" "$SLUICE_PID_DIR"
cp -- "$REPO/conf/config.yaml" "$REPO/conf/masters" "$SLUICE_CONF_DIR/"
# shellcheck source=deploy/config.sh
. "$DEPLOY/config.sh"
sluice_config_set "$SLUICE_CONF_DIR/config.yaml" jobmanager.rpc.port "$JM_PORT"
sluice_config_set "$SLUICE_CONF_DIR/config.yaml" rest.port "$REST_PORT"
printf '# two TaskManagers on this host\nlocalhost\n\n127.0.0.1\n' >"$SLUICE_CONF_DIR/workers"
printf 'localhost:%s\n' "$REST_PORT" >"$SLUICE_CONF_DIR/masters"
echo "Test directory $TMP; JobManager port $JM_PORT, REST port $REST_PORT"

check "config.sh reads the JobManager port" [ "$(sluice_config_get jobmanager.rpc.port x "$SLUICE_CONF_DIR/config.yaml")" = "$JM_PORT" ]
check "config.sh falls back to the default for an absent key" [ "$(sluice_config_get no.such.key dflt "$SLUICE_CONF_DIR/config.yaml")" = dflt ]

# Nested YAML (Flink's config.yaml form), Flink 1 and 2 names, and env.log.dir / env.pid.dir /
# env.ssh.opts read by the scripts when the environment does not set the folders.
mkdir -p "$TMP/nested"
cat >"$TMP/nested/config.yaml" <<EOF_NESTED
rest:
  port: 8082
state:
  checkpoints:
    dir: /flink1/chk
env:
  log:
    dir: $TMP/nested-log
  pid:
    dir: $TMP/nested-pid
  ssh:
    opts: -o ConnectTimeout=3 -p 2222
  java:
    opts:
      all: -Xss2m
jobmanager:
  memory:
    process:
      size: 1600m
EOF_NESTED
check "config.sh reads a nested key" [ "$(sluice_config_get rest.port x "$TMP/nested/config.yaml")" = 8082 ]
check "config.sh reads a Flink 1 key under its Flink 2 name" [ "$(sluice_config_get execution.checkpointing.dir x "$TMP/nested/config.yaml")" = /flink1/chk ]
nested_env=$(env -u SLUICE_LOG_DIR -u SLUICE_PID_DIR -u SLUICE_SSH_OPTS SLUICE_CONF_DIR="$TMP/nested" \
  bash -c '. "$1/config.sh" && printf "%s|%s|%s" "$SLUICE_LOG_DIR" "$SLUICE_PID_DIR" "$SLUICE_SSH_OPTS"' _ "$DEPLOY" 2>&1)
check "config.sh takes env.log.dir, env.pid.dir and env.ssh.opts from config.yaml ($nested_env)" \
  [ "$nested_env" = "$TMP/nested-log|$TMP/nested-pid|-o ConnectTimeout=3 -p 2222" ]
env_wins=$(SLUICE_LOG_DIR=/from/env SLUICE_CONF_DIR="$TMP/nested" bash -c '. "$1/config.sh" && printf "%s" "$SLUICE_LOG_DIR"' _ "$DEPLOY" 2>&1)
check "SLUICE_LOG_DIR wins over env.log.dir" [ "$env_wins" = /from/env ]

# --- start the cluster ------------------------------------------------------------------------
timeout 40 "$DEPLOY/start-cluster.sh" >"$TMP/start.txt" 2>&1
rc=$?
remember_pids
sed 's/^/  start-cluster: /' "$TMP/start.txt"
check "start-cluster.sh exits 0" [ $rc -eq 0 ]

mapfile -t JM_PIDS < <(pids_in "$JM_PID_FILE")
mapfile -t TM_PIDS < <(pids_in "$TM_PID_FILE")
check "one JobManager pid recorded" [ ${#JM_PIDS[@]} -eq 1 ]
check "two TaskManager pids recorded" [ ${#TM_PIDS[@]} -eq 2 ]
all_alive() {
  local p
  [ $# -gt 0 ] || return 1
  for p in "$@"; do alive "$p" || return 1; done
}
check "the JobManager process is alive" all_alive ${JM_PIDS[@]+"${JM_PIDS[@]}"}
check "both TaskManager processes are alive" all_alive ${TM_PIDS[@]+"${TM_PIDS[@]}"}
host=$(hostname 2>/dev/null || uname -n)
check "each TaskManager has its own log file" \
  [ -f "$SLUICE_LOG_DIR/sluice-taskmanager-0-$host.log" -a -f "$SLUICE_LOG_DIR/sluice-taskmanager-1-$host.log" ]
check "each TaskManager has its own .out file" \
  [ -f "$SLUICE_LOG_DIR/sluice-taskmanager-0-$host.out" -a -f "$SLUICE_LOG_DIR/sluice-taskmanager-1-$host.out" ]
check "the JobManager listens on its port" sluice_port_in_use 127.0.0.1 "$JM_PORT"

# The JobManager answers the CLI (allow it a few seconds to come up).
list_ok=0
for ((i = 0; i < 20; i++)); do
  if timeout 10 "$BIN/sluice" list --config-dir "$SLUICE_CONF_DIR" >"$TMP/list.txt" 2>&1; then
    list_ok=1
    break
  fi
  sleep 0.5
done
sed 's/^/  sluice list: /' "$TMP/list.txt"
check "sluice list gets an answer from the JobManager" [ $list_ok -eq 1 ]

# Both TaskManagers found the JobManager through the configuration the scripts passed them.
JM_LOG="$SLUICE_LOG_DIR/sluice-jobmanager-0-$host.log"
registered() { grep -c "registered from" "$JM_LOG" 2>/dev/null || true; }
for ((i = 0; i < 100; i++)); do
  [ "$(registered)" -ge 2 ] && break
  sleep 0.1
done
check "both TaskManagers registered with the JobManager" [ "$(registered)" -ge 2 ]

# A job with parallelism 4 runs on the 2 x 2 slots (when the example is built).
EXAMPLE="$BUILD_DIR/examples/libwordcount.so"
if [ -f "$EXAMPLE" ]; then
  printf 'a b c\nb c\nc\n' >"$TMP/words.txt"
  timeout 60 "$BIN/sluice" run --config-dir "$SLUICE_CONF_DIR" -p 4 "$EXAMPLE" -- \
    --input "$TMP/words.txt" --output "$TMP/out" >"$TMP/run.txt" 2>&1
  rc=$?
  sed 's/^/  sluice run: /' "$TMP/run.txt"
  check "a job with parallelism 4 finishes on the cluster" [ $rc -eq 0 ]
  got=$(cat "$TMP"/out/part-* 2>/dev/null | awk -F, '$2 > m[$1] { m[$1] = $2 } END { for (w in m) print w "=" m[w] }' | sort | tr '\n' ' ')
  check "the job's output is right (got: $got)" [ "$got" = "a=1 b=2 c=3 " ]
fi

# A TaskManager that cannot start (bad configuration) is reported and leaves no pid behind.
timeout 20 "$DEPLOY/taskmanager.sh" start -D taskmanager.numberOfTaskSlots=not-a-number >"$TMP/bad.txt" 2>&1
rc=$?
remember_pids
sed 's/^/  bad start: /' "$TMP/bad.txt"
check "starting a misconfigured TaskManager fails" [ $rc -ne 0 ]
check "the failure shows the daemon's log" grep -q "numberOfTaskSlots" "$TMP/bad.txt"
check "the failed TaskManager leaves no pid behind" [ "$(pids_in "$TM_PID_FILE" | wc -l)" -eq 2 ]

# --- the TaskManager provider (the autoscaler's request and release commands) ----------------
printf '# one spare TaskManager on this host\nlocalhost\n' >"$SLUICE_CONF_DIR/spare-workers"
timeout 40 "$DEPLOY/taskmanager-provider.sh" request 1 >"$TMP/provide.txt" 2>&1
rc=$?
remember_pids
sed 's/^/  provider request: /' "$TMP/provide.txt"
check "taskmanager-provider.sh request 1 exits 0" [ $rc -eq 0 ]
check "the provided TaskManager is recorded with its host" \
  grep -qx 'tm-spare-1 localhost' "$SLUICE_PID_DIR/sluice-provided-taskmanagers"
check "a third TaskManager pid is recorded" [ "$(pids_in "$TM_PID_FILE" | wc -l)" -eq 3 ]
for ((i = 0; i < 100; i++)); do
  grep -q "tm-spare-1" "$JM_LOG" 2>/dev/null && break
  sleep 0.1
done
check "the provided TaskManager registered as tm-spare-1" grep -q "tm-spare-1" "$JM_LOG"
timeout 20 "$DEPLOY/taskmanager-provider.sh" request 1 >"$TMP/provide2.txt" 2>&1
rc=$?
check "a request beyond the spare hosts fails, naming the file" \
  bash -c '[ "$0" -ne 0 ] && grep -q spare-workers "$1"' "$rc" "$TMP/provide2.txt"
timeout 20 "$DEPLOY/taskmanager-provider.sh" release tm-other 127.0.0.1:1 >"$TMP/release0.txt" 2>&1
check "releasing a TaskManager it did not start leaves it (exit 0)" \
  bash -c '[ "$0" -eq 0 ] && grep -q "was not started by" "$1"' "$?" "$TMP/release0.txt"
timeout 40 "$DEPLOY/taskmanager-provider.sh" release tm-spare-1 127.0.0.1:0 >"$TMP/release.txt" 2>&1
rc=$?
sed 's/^/  provider release: /' "$TMP/release.txt"
check "taskmanager-provider.sh release tm-spare-1 exits 0" [ $rc -eq 0 ]
check "the released TaskManager's pid is gone from the pid file" [ "$(pids_in "$TM_PID_FILE" | wc -l)" -eq 2 ]
check "the record no longer lists it" bash -c '! grep -q tm-spare-1 "$0"' "$SLUICE_PID_DIR/sluice-provided-taskmanagers"

# --- stop the cluster -------------------------------------------------------------------------
timeout 40 "$DEPLOY/stop-cluster.sh" >"$TMP/stop.txt" 2>&1
rc=$?
sed 's/^/  stop-cluster: /' "$TMP/stop.txt"
check "stop-cluster.sh exits 0" [ $rc -eq 0 ]

none_alive() {
  local p
  for p in "$@"; do
    if alive "$p"; then
      echo "  pid $p is still alive: $(ps -o args= -p "$p" 2>/dev/null)"
      return 1
    fi
  done
}
check "every recorded daemon pid is gone" none_alive ${STARTED_PIDS[@]+"${STARTED_PIDS[@]}"}
check "the pid files hold no pids" [ -z "$(pids_in "$JM_PID_FILE")$(pids_in "$TM_PID_FILE")" ]
port_free() {
  python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}
check "the JobManager port is free again" port_free "$JM_PORT"
# shellcheck disable=SC2016  # expanded by the inner shell
check "nothing accepts connections on the JobManager port" bash -c '! (exec 3<>"/dev/tcp/127.0.0.1/$0") 2>/dev/null' "$JM_PORT"
timeout 20 "$DEPLOY/stop-cluster.sh" >"$TMP/stop2.txt" 2>&1
check "stop-cluster.sh with nothing running exits 0" [ $? -eq 0 ]

# --- high availability: a local ZooKeeper, two masters ---------------------------------------
HA_LOGS="$SLUICE_LOG_DIR/ha"
if ! command -v java >/dev/null 2>&1 || [ ! -r /usr/share/java/zookeeper.jar ]; then
  fail "high availability: java or /usr/share/java/zookeeper.jar missing (deploy/install-deps.sh)"
else
  export SLUICE_ZOOKEEPER_DIR="$TMP/zk"
  export SLUICE_LOG_DIR="$HA_LOGS"  # the HA daemons' logs apart from the first cluster's
  read -r ZK_PORT REST_A REST_B < <(python3 -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
  timeout 90 "$DEPLOY/zookeeper.sh" start "$ZK_PORT" >"$TMP/zk-start.txt" 2>&1
  check "zookeeper.sh starts a local ZooKeeper" [ $? -eq 0 ]
  for pid in $(pids_in "$SLUICE_PID_DIR/sluice-$SLUICE_IDENT_STRING-zookeeper.pid"); do
    STARTED_PIDS+=("$pid")
  done
  conf="$SLUICE_CONF_DIR/config.yaml"
  sluice_config_set "$conf" high-availability.type zookeeper
  sluice_config_set "$conf" high-availability.zookeeper.quorum "127.0.0.1:$ZK_PORT"
  sluice_config_set "$conf" high-availability.storageDir "$TMP/ha"
  sluice_config_set "$conf" high-availability.zookeeper.client.session-timeout "2 s"
  printf 'localhost:%s\nlocalhost:%s\n' "$REST_A" "$REST_B" >"$SLUICE_CONF_DIR/masters"
  printf 'localhost\n' >"$SLUICE_CONF_DIR/workers"
  timeout 60 "$DEPLOY/start-cluster.sh" >"$TMP/ha-start.txt" 2>&1
  check "start-cluster.sh starts a JobManager per masters line in HA mode" [ $? -eq 0 ]
  remember_pids
  check "two JobManagers run" [ "$(pids_in "$JM_PID_FILE" | wc -l)" -eq 2 ]
  leaders() { cat "$HA_LOGS"/sluice-jobmanager-*.log 2>/dev/null | grep -c "JobManager leads at" || true; }
  tm_registered() { cat "$HA_LOGS"/sluice-taskmanager-*.log 2>/dev/null | grep -c "registered at JobManager" || true; }
  for ((i = 0; i < 200; i++)); do
    [ "$(leaders)" -ge 1 ] && [ "$(tm_registered)" -ge 1 ] && break
    sleep 0.1
  done
  check "one JobManager leads" [ "$(leaders)" -eq 1 ]
  check "the TaskManager registers with the leader" [ "$(tm_registered)" -ge 1 ]
  timeout 30 "$BIN/sluice" list >"$TMP/ha-list.txt" 2>&1
  check "sluice list finds the leader through ZooKeeper" grep -q "No running jobs" "$TMP/ha-list.txt"
  ha_pids=$(pids_in "$JM_PID_FILE"; pids_in "$TM_PID_FILE")
  timeout 60 "$DEPLOY/stop-cluster.sh" >"$TMP/ha-stop.txt" 2>&1
  check "stop-cluster.sh stops every master's JobManager" [ $? -eq 0 ]
  still=0
  for pid in $ha_pids; do alive "$pid" && still=1; done
  check "no HA daemon is left" [ $still -eq 0 ]
  printf 'localhost:%s\nnot a master line\n' "$REST_A" >"$SLUICE_CONF_DIR/masters"
  timeout 30 "$DEPLOY/start-cluster.sh" >"$TMP/ha-bad.txt" 2>&1
  check "a malformed masters line is refused" [ $? -ne 0 ]
  check "the error names the masters file and line" grep -q "masters line 2" "$TMP/ha-bad.txt"
  check "nothing started from a malformed masters file" [ -z "$(pids_in "$JM_PID_FILE")" ]
  timeout 30 "$DEPLOY/zookeeper.sh" stop >"$TMP/zk-stop.txt" 2>&1
  check "zookeeper.sh stops it by its pid" [ $? -eq 0 ]
  check "zookeeper.sh status then says not running" bash -c '! "$0/zookeeper.sh" status' "$DEPLOY"
fi

if [ $failed -gt 0 ]; then
  dump_logs
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
