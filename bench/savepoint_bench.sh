#!/usr/bin/env bash
# Savepoint duration and size for large keyed state, on each state backend: a local cluster (a
# JobManager and one TaskManager on 127.0.0.1, ports chosen here, stopped by pid) runs
# tests/jobs/large_state_job.cc, which puts --keys keys into keyed state in a first pass and then
# waits at a gate. While it waits, `sluice savepoint` is timed (the CLI's wall-clock time and the
# JobManager's own duration of it) and the folder measured; then `sluice stop` (a second
# savepoint of the same state; the command returns once it has completed) is timed. Last, the job resumes from the first
# savepoint on the other backend and must count every key.
#   bench/savepoint_bench.sh [--build DIR] [--keys N] [--backends "hashmap rocksdb"] [-p P]
# Prints one line per backend:
#   backend keys state_bytes savepoint_s savepoint_jm_ms stop_s resumed_on_other_backend
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$REPO/build
KEYS=20000000
BACKENDS="hashmap rocksdb"
P=2
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --keys) KEYS=$2; shift 2 ;;
    --backends) BACKENDS=$2; shift 2 ;;
    -p) P=$2; shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "savepoint_bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
BIN=$BUILD/bin
JOB=$BUILD/tests/jobs/liblarge_state_job.so
[ -x "$BIN/sluice-jobmanager" ] || { echo "savepoint_bench: no $BIN/sluice-jobmanager (build first)" >&2; exit 1; }
[ -f "$JOB" ] || { echo "savepoint_bench: no $JOB (configure with -DSLUICE_BUILD_TESTS=ON)" >&2; exit 1; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-savepoint-bench.XXXXXX")
# shellcheck source=bench/daemons.sh
. "$REPO/bench/daemons.sh"
trap 'stop_cluster; rm -rf "$TMP"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

start_cluster() {  # $1: backend
  local jm_port rest_port conf
  jm_port=$(free_port)
  rest_port=$(free_port)
  conf=(-D jobmanager.rpc.address=127.0.0.1 -D jobmanager.rpc.port="$jm_port" -D rest.port="$rest_port"
    -D taskmanager.host=127.0.0.1 -D taskmanager.numberOfTaskSlots=4
    -D state.checkpoints.dir="$TMP/checkpoints" -D state.backend.type="$1"
    -D state.backend.rocksdb.localdir="$TMP/rocksdb" -D taskmanager.memory.managed.size=512mb
    -D blob.storage.directory="$TMP")
  "$BIN/sluice-jobmanager" "${conf[@]}" >"$TMP/jm.out" 2>"$TMP/jm.log" &
  PIDS+=($!)
  "$BIN/sluice-taskmanager" "${conf[@]}" >"$TMP/tm.out" 2>"$TMP/tm.log" &
  PIDS+=($!)
  JM="127.0.0.1:$jm_port"
  REST="127.0.0.1:$rest_port"
  for _ in $(seq 1 300); do
    grep -q "registered at JobManager" "$TMP/tm.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "savepoint_bench: the cluster did not start; see $TMP" >&2
  exit 1
}
cli() {
  local cmd=$1
  shift
  "$BIN/sluice" "$cmd" -m "$JM" "$@"
}
# The JobManager's duration (ms) of the job's newest savepoint, from its REST view.
savepoint_ms() {
  python3 - "http://$REST/jobs/$1/checkpoints" <<'PY'
import json, sys, urllib.request
print(json.load(urllib.request.urlopen(sys.argv[1]))["latest"]["savepoint"]["end_to_end_duration"])
PY
}
wait_gate() {  # until every subtask has finished the first pass
  for _ in $(seq 1 6000); do
    [ "$(find "$TMP" -maxdepth 1 -name 'gate.waiting-*' | wc -l)" -ge "$P" ] && return 0
    sleep 0.1
  done
  echo "savepoint_bench: the first pass did not end within 10 min" >&2
  exit 1
}

echo "backend keys state_bytes savepoint_s savepoint_jm_ms stop_s resumed_on_other_backend"
for backend in $BACKENDS; do
  rm -rf "$TMP/checkpoints" "$TMP/savepoints" "$TMP"/gate* "$TMP/out"
  start_cluster "$backend"
  # The job waits at its gate until the savepoints are taken, however long the first pass was.
  job=$(cli run -d -p "$P" -D execution.checkpointing.interval=1h "$JOB" -- --keys "$KEYS" \
    --per-key 2 --gate "$TMP/gate" --gate-timeout-s 1000000 --output "$TMP/out" |
    sed -n 's/.*JobID \([0-9a-f]\{32\}\).*/\1/p')
  [ -n "$job" ] || { echo "savepoint_bench: the job was not submitted; see $TMP/jm.log" >&2; exit 1; }
  wait_gate
  t0=$(now)
  out=$(cli savepoint "$job" "$TMP/savepoints")
  t1=$(now)
  path=$(sed -n 's/^Savepoint completed\. Path: //p' <<<"$out")
  [ -n "$path" ] || { echo "savepoint_bench: $out" >&2; exit 1; }
  bytes=$(du -sb "$path" | cut -f1)
  sp_ms=$(savepoint_ms "$job")
  # Stop with a savepoint: the same state again (the command returns once it has completed).
  t2=$(now)
  cli stop -p "$TMP/savepoints" "$job" >/dev/null
  stop_s=$(elapsed "$t2" "$(now)")
  stop_cluster
  # The first savepoint restores on the other backend: the second pass counts every key to 2.
  other=hashmap
  [ "$backend" = hashmap ] && other=rocksdb
  start_cluster "$other"
  touch "$TMP/gate"
  resumed=false
  if cli run -p "$P" -s "$path" -D execution.checkpointing.interval=10s "$JOB" -- --keys "$KEYS" \
    --per-key 2 --gate "$TMP/gate" --output "$TMP/out" >"$TMP/resume.out" 2>&1; then
    lines=$(find "$TMP/out" -name 'part-*' -exec cat {} + | awk -F, '$2 == 2 && $3 == 0' | wc -l)
    [ "$lines" -eq "$KEYS" ] && resumed=true
  fi
  stop_cluster
  echo "$backend $KEYS $bytes $(elapsed "$t0" "$t1") $sp_ms $stop_s $resumed"
done
