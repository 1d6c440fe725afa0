#!/usr/bin/env bash
# Runs Nexmark queries on a local Sluice cluster beside their single-threaded baselines, and
# prints one line per query (and writes the same as JSON):
#   query events seconds events_per_s cpu_s events_per_core_s baseline_events_per_s
#   ratio_to_baseline checksum_ok
#
#   bench/nexmark/run.sh [--queries q0,q5,...] [--events N] [-p P]
#                        [--state hashmap|rocksdb|rocksdb-hash]
#                        [--checkpoint-interval MS] [-D KEY=VALUE ...] [--build DIR]
#                        [--out FILE] [--keep]
#                        [-- generator options, e.g. --rate 1000 --prob-delayed-event 0.1]
#
# The cluster: a JobManager and P TaskManagers of one slot each (the reference's layout, one slot
# per TaskManager) on 127.0.0.1, the JobManager's port chosen at run time, in a temporary folder
# (logs, checkpoints, results; removed at the end unless --keep). Every daemon is stopped by its
# pid when the script ends, also on an error or Ctrl-C. Defaults: all queries, 2,000,000 events,
# P = 2, the heap backend (hashmap), no checkpoints. rocksdb-hash: RocksDB with
# state.backend.rocksdb.writebuffer.hash. -D passes a configuration key to every job (as
# `sluice run -D`), e.g. -D state.backend.rocksdb.cache.entries=0.
#
# Per query: the job runs at parallelism P to its end (`sluice run`, attached); `seconds` is the
# job's duration as the JobManager reports it (submission accepted to FINISHED), `cpu_s` the CPU
# time (user + system) the JobManager and TaskManagers used meanwhile, from /proc/<pid>/stat
# before and after. `events_per_core_s` = events / cpu_s. The baseline (nexmark-baseline, one
# thread) runs the same query over the same events; `ratio_to_baseline` = events_per_core_s /
# baseline_events_per_s (per core, the job over the hand-written loop). `checksum_ok`: the sum of
# the job's per-subtask checksums equals the baseline's (rows and hash sum).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$REPO/build
QUERIES=q0,q1,q2,q3,q4,q5,q7,q8,q9,q11,q12,q14,q20,q21
EVENTS=2000000
PARALLELISM=2
STATE=hashmap
CHECKPOINT_MS=0
OUT=
KEEP=0
GEN=()
JOB_CONF=()
while [ $# -gt 0 ]; do
  case $1 in
    --queries) QUERIES=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    -p | --parallelism) PARALLELISM=$2; shift 2 ;;
    --state) STATE=$2; shift 2 ;;
    --checkpoint-interval) CHECKPOINT_MS=$2; shift 2 ;;
    --build) BUILD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -D) [[ ${2:-} == *=* ]] || { echo "run.sh: -D takes KEY=VALUE, got '${2:-}'" >&2; exit 2; }
        JOB_CONF+=("$2"); shift 2 ;;
    --) shift; GEN=("$@"); break ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case $STATE in hashmap | rocksdb | rocksdb-hash) ;; *) echo "run.sh: --state must be hashmap, rocksdb or rocksdb-hash, got '$STATE'" >&2; exit 2 ;; esac
[[ $EVENTS =~ ^[0-9]+$ ]] || { echo "run.sh: --events must be a whole number, got '$EVENTS'" >&2; exit 2; }
[[ $PARALLELISM =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: -p must be a positive number, got '$PARALLELISM'" >&2; exit 2; }
[[ $CHECKPOINT_MS =~ ^[0-9]+$ ]] || { echo "run.sh: --checkpoint-interval must be milliseconds, got '$CHECKPOINT_MS'" >&2; exit 2; }
BIN=$BUILD/bin
JOBS=$BUILD/bench/nexmark
for f in "$BIN/sluice" "$BIN/sluice-jobmanager" "$BIN/sluice-taskmanager" "$BIN/nexmark-baseline"; do
  [ -x "$f" ] || { echo "run.sh: $f is missing: cmake --build $BUILD --target nexmark" >&2; exit 1; }
done
IFS=, read -r -a QLIST <<<"$QUERIES"
for q in "${QLIST[@]}"; do
  [ -f "$JOBS/libnexmark_$q.so" ] || { echo "run.sh: no job library for query '$q' ($JOBS/libnexmark_$q.so)" >&2; exit 2; }
done

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-nexmark.XXXXXX")
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$KEEP" = 1 ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port of 127.0.0.1 nothing listens on now.
free_port() {
  local port
  for _ in $(seq 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  echo "run.sh: no free port found" >&2; return 1
}
# CPU seconds (user + system) of the daemons so far.
cpu_ticks() {
  local total=0 pid stat
  for pid in "${PIDS[@]}"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || { echo "run.sh: daemon $pid is gone" >&2; return 1; }
    stat=${stat##*) }  # the fields after the command name; utime and stime are the 12th and 13th
    read -r -a f <<<"$stat"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}
TICKS=$(getconf CLK_TCK)

settings=(-D jobmanager.bind-host=127.0.0.1 -D jobmanager.rpc.address=127.0.0.1
  -D taskmanager.host=127.0.0.1 -D taskmanager.bind-host=127.0.0.1
  -D taskmanager.numberOfTaskSlots=1 -D rest.port=0
  -D "blob.storage.directory=$TMP/blobs" -D "state.backend.rocksdb.localdir=$TMP/rocksdb"
  -D "state.checkpoints.dir=$TMP/checkpoints")
started=0
for _ in 1 2 3; do  # the port may be taken between the probe and the bind
  PORT=$(free_port)
  "$BIN/sluice-jobmanager" -D "jobmanager.rpc.port=$PORT" "${settings[@]}" \
    >"$TMP/jobmanager.out" 2>"$TMP/jobmanager.log" </dev/null &
  JM=$!
  PIDS+=("$JM")  # stopped on any exit from here on
  for _ in $(seq 200); do
    kill -0 "$JM" 2>/dev/null || break
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then started=1; break; fi
    sleep 0.05
  done
  [ "$started" = 1 ] && break
  kill -KILL "$JM" 2>/dev/null || true
  wait "$JM" 2>/dev/null || true
  PIDS=()
done
[ "$started" = 1 ] || { echo "run.sh: the JobManager did not start:" >&2; tail -n 20 "$TMP/jobmanager.log" >&2; exit 1; }
settings+=(-D "jobmanager.rpc.port=$PORT")
for i in $(seq "$PARALLELISM"); do
  "$BIN/sluice-taskmanager" "${settings[@]}" >"$TMP/taskmanager-$i.out" 2>"$TMP/taskmanager-$i.log" </dev/null &
  PIDS+=($!)
done
for _ in $(seq 300); do
  n=$(grep -c "TaskManager .* registered from" "$TMP/jobmanager.log" || true)
  [ "$n" -ge "$PARALLELISM" ] && break
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "run.sh: daemon $pid exited; logs in $TMP" >&2; KEEP=1; exit 1; }
  done
  sleep 0.1
done
[ "$n" -ge "$PARALLELISM" ] || { echo "run.sh: the TaskManagers did not register in 30 s" >&2; KEEP=1; exit 1; }

job_flags=(-m "127.0.0.1:$PORT" -p "$PARALLELISM" -D "state.backend.type=${STATE%-hash}")
[ "$STATE" = rocksdb-hash ] && job_flags+=(-D state.backend.rocksdb.writebuffer.hash=true)
[ "$CHECKPOINT_MS" -gt 0 ] && job_flags+=(-D "execution.checkpointing.interval=${CHECKPOINT_MS}ms")
for kv in "${JOB_CONF[@]+"${JOB_CONF[@]}"}"; do job_flags+=(-D "$kv"); done
gen_args=(--events "$EVENTS" "${GEN[@]+"${GEN[@]}"}")
job_args=()
for ((i = 0; i < ${#gen_args[@]}; i += 2)); do job_args+=("${gen_args[i]}=${gen_args[i + 1]:-}"); done

echo "# Nexmark on Sluice: $EVENTS events, parallelism $PARALLELISM ($PARALLELISM TaskManagers x 1 slot), state $STATE, checkpoints $([ "$CHECKPOINT_MS" -gt 0 ] && echo "every ${CHECKPOINT_MS} ms" || echo off), $(nproc) cores; generator: ${gen_args[*]}${JOB_CONF[*]+; job configuration: ${JOB_CONF[*]}}"
echo "query events seconds events_per_s cpu_s events_per_core_s baseline_events_per_s ratio_to_baseline checksum_ok"
rows_json=()
mismatches=0
for q in "${QLIST[@]}"; do
  result=$TMP/result-$q
  mkdir -p "$result"
  before=$(cpu_ticks)
  if ! "$BIN/sluice" run "${job_flags[@]}" "$JOBS/libnexmark_$q.so" -- "${job_args[@]}" "--result-dir=$result" \
    >"$TMP/run-$q.out" 2>"$TMP/run-$q.err"; then
    echo "run.sh: query $q failed:" >&2; cat "$TMP/run-$q.out" "$TMP/run-$q.err" >&2; KEEP=1; exit 1
  fi
  after=$(cpu_ticks)
  ms=$(sed -n 's/.* FINISHED in \([0-9]*\) ms.*/\1/p' "$TMP/run-$q.out")
  [ -n "$ms" ] || { echo "run.sh: no duration in the output of query $q:" >&2; cat "$TMP/run-$q.out" >&2; exit 1; }
  base=$("$BIN/nexmark-baseline" --query "$q" "${gen_args[@]}")
  job_sum=$(cat "$result"/part-* | awk '{ rows += $1; print $2 } END { print "rows", rows }' | {
    sum=0
    while read -r a b; do
      if [ "$a" = rows ]; then rows=$b; else sum=$(((sum + 16#$a) & 0xFFFFFFFFFFFFFFFF)); fi
    done
    printf '%s %016x\n' "$rows" "$sum"
  })
  base_sum=$(awk '{ for (i = 1; i < NF; i++) { if ($i == "rows") r = $(i + 1); if ($i == "checksum") c = $(i + 1) } } END { print r, c }' <<<"$base")
  base_rate=$(awk '{ for (i = 1; i < NF; i++) if ($i == "events_per_s") print $(i + 1) }' <<<"$base")
  ok=false
  [ "$job_sum" = "$base_sum" ] && ok=true
  line=$(awk -v q="$q" -v n="$EVENTS" -v ms="$ms" -v t="$((after - before))" -v hz="$TICKS" -v b="$base_rate" -v ok="$ok" 'BEGIN {
    s = ms / 1000; cpu = t / hz; rate = s > 0 ? n / s : 0; core = cpu > 0 ? n / cpu : 0
    ratio = b > 0 ? core / b : 0
    printf "%s %d %.3f %.0f %.2f %.0f %.0f %.3f %s", q, n, s, rate, cpu, core, b, ratio, ok }')
  echo "$line"
  [ "$ok" = true ] || { echo "  checksum mismatch for $q: job $job_sum, baseline $base_sum" >&2; mismatches=$((mismatches + 1)); }
  read -r f1 f2 f3 f4 f5 f6 f7 f8 f9 <<<"$line"
  rows_json+=("{\"query\": \"$f1\", \"events\": $f2, \"seconds\": $f3, \"events_per_s\": $f4, \"cpu_s\": $f5, \"events_per_core_s\": $f6, \"baseline_events_per_s\": $f7, \"ratio_to_baseline\": $f8, \"checksum_ok\": $f9}")
done

[ -n "$OUT" ] || OUT=$BUILD/bench/nexmark/results-$(date +%Y%m%d-%H%M%S).json
{
  echo "{"
  echo "  \"events\": $EVENTS, \"parallelism\": $PARALLELISM, \"state\": \"$STATE\", \"checkpoint_interval_ms\": $CHECKPOINT_MS, \"cores\": $(nproc),"
  echo "  \"generator\": \"${gen_args[*]}\","
  echo "  \"job_configuration\": \"${JOB_CONF[*]+${JOB_CONF[*]}}\","
  echo "  \"results\": ["
  for i in "${!rows_json[@]}"; do
    sep=,; [ "$i" -eq $((${#rows_json[@]} - 1)) ] && sep=
    echo "    ${rows_json[$i]}$sep"
  done
  echo "  ]"
  echo "}"
} >"$OUT"
echo "# JSON: $OUT"
# A checksum that differs from the baseline's is a failure of the run.
[ "$mismatches" -eq 0 ] || { echo "run.sh: $mismatches queries disagree with their baselines" >&2; exit 1; }
