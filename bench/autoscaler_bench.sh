#!/usr/bin/env bash
# The autoscaler's step response: a local cluster (a JobManager and --tms TaskManagers of --slots
# slots on 127.0.0.1, ports chosen here, stopped by pid) runs tests/jobs/autoscale_job.cc
#   Source: Paced Sequences (p 1) -> Fast Map (p 1) -> Slow Count (keyed, --cost-us a record) -> Sink
# with job.autoscaler.enabled and checkpoints every 500 ms. The source starts at --start rate
# (records/s); once the job is steady, the rate file steps through --steps, one after the other.
# After each step the bench polls the REST API every 0.5 s until Slow Count's parallelism has not
# changed for --quiet seconds (and, after a rise, the source is not back-pressured), and prints:
#   rate           the step (records/s, from -> to)
#   needed         ceil(rate * cost / 1e6 / target utilization 0.7): what the per-record cost asks
#   settled p      Slow Count's parallelism at the end of the step
#   p path         Slow Count's parallelism after each rescale (e.g. 1>3>5)
#   rescales       rescales the autoscaler started after the step (its decisions "rescaling")
#   1st dec s      from the step to the autoscaler's first decision
#   bp gone s      from the step to the start of the first run of >= 3 polls with the source's
#                  back-pressured ratio under 0.1 since it was last 0.1 or more (GET
#                  .../vertices/0/backpressure), every task RUNNING; "-" when the source was never
#                  back-pressured (ratio > 0.5) after the step, ">T" when it still was at the
#                  --timeout (T s, default 240)
#   settled s      from the step to Slow Count's last parallelism change (every task RUNNING);
#                  ">T" when the step did not settle within --timeout
#   (+n waiting)   after rescales: decisions that wait for task slots the cluster lacks
#   cost us        the per-record cost the autoscaler measured: parallelism / its true
#                  processing rate (REST job view, autoscaler.vertices), in microseconds
#   mean cost us   the same from the subtasks' mean busy time and mean input rate (REST
#                  .../vertices/2/subtasks/metrics), where the autoscaler takes the busiest subtask's
#   busy max/mean  the busiest Slow Count subtask's busy time over the mean (the keys' spread)
#   util           the autoscaler's newest utilization of Slow Count (target rate / true rate)
#   bp max         the source's highest back-pressured ratio after the step
#   bench/autoscaler_bench.sh [--build DIR] [--cost-us C] [--start R] [--steps "600 100 1500 100"]
#     [--stabilization 5s] [--window 10s] [--keys K] [--tms N] [--slots S] [--quiet SECONDS]
#     [--timeout SECONDS] [--keep-dir]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$REPO/build
COST_US=2000
START=100
STEPS="600 100 1500 100"
STAB=5s
WINDOW=10s
KEYS=1000
TMS=2
SLOTS=4
QUIET=
TIMEOUT=240
KEEP=false
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --cost-us) COST_US=$2; shift 2 ;;
    --start) START=$2; shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    --stabilization) STAB=$2; shift 2 ;;
    --window) WINDOW=$2; shift 2 ;;
    --keys) KEYS=$2; shift 2 ;;
    --tms) TMS=$2; shift 2 ;;
    --slots) SLOTS=$2; shift 2 ;;
    --quiet) QUIET=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --keep-dir) KEEP=true; shift ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "autoscaler_bench: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
BIN=$BUILD/bin
JOB=$BUILD/tests/jobs/libautoscale_job.so
[ -x "$BIN/sluice-jobmanager" ] || { echo "autoscaler_bench: no $BIN/sluice-jobmanager (build first)" >&2; exit 1; }
[ -f "$JOB" ] || { echo "autoscaler_bench: no $JOB (configure with -DSLUICE_BUILD_TESTS=ON)" >&2; exit 1; }
seconds() {  # "5s", "500ms", "2min" or a number of seconds -> seconds
  case $1 in
    *ms) awk -v x="${1%ms}" 'BEGIN { print x / 1000 }' ;;
    *min) awk -v x="${1%min}" 'BEGIN { print x * 60 }' ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}
STAB_S=$(seconds "$STAB")
WINDOW_S=$(seconds "$WINDOW")
# Settled: no change for a whole decision cycle (stabilization, a window) and 5 s more.
[ -n "$QUIET" ] || QUIET=$(awk -v a="$STAB_S" -v b="$WINDOW_S" 'BEGIN { print a + b + 5 }')

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-autoscaler-bench.XXXXXX")
# shellcheck source=bench/daemons.sh
. "$REPO/bench/daemons.sh"
cleanup() {
  stop_cluster
  if [ "$KEEP" = true ]; then echo "autoscaler_bench: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

set_rate() { echo "$1" >"$TMP/rate.tmp" && mv "$TMP/rate.tmp" "$TMP/rate"; }

jm_port=$(free_port)
rest_port=$(free_port)
conf=(-D jobmanager.rpc.address=127.0.0.1 -D jobmanager.bind-host=127.0.0.1
  -D jobmanager.rpc.port="$jm_port" -D rest.port="$rest_port"
  -D taskmanager.host=127.0.0.1 -D taskmanager.bind-host=127.0.0.1
  -D taskmanager.numberOfTaskSlots="$SLOTS" -D metrics.fetcher.update-interval=500ms
  -D blob.storage.directory="$TMP")
"$BIN/sluice-jobmanager" "${conf[@]}" >"$TMP/jm.out" 2>"$TMP/jm.log" &
PIDS+=($!)
for i in $(seq 1 "$TMS"); do
  "$BIN/sluice-taskmanager" "${conf[@]}" >"$TMP/tm$i.out" 2>"$TMP/tm$i.log" &
  PIDS+=($!)
done
JM="127.0.0.1:$jm_port"
REST="127.0.0.1:$rest_port"
for _ in $(seq 1 300); do
  n=$(cat "$TMP"/tm*.log 2>/dev/null | grep -c "registered at JobManager" || true)
  [ "$n" -ge "$TMS" ] && break
  sleep 0.1
done
[ "$n" -ge "$TMS" ] || { echo "autoscaler_bench: the cluster did not start; see $TMP" >&2; KEEP=true; exit 1; }

set_rate "$START"
job=$("$BIN/sluice" run -m "$JM" -d \
  -D execution.checkpointing.interval=500ms -D state.checkpoints.dir="$TMP/checkpoints" \
  -D job.autoscaler.enabled=true -D job.autoscaler.stabilization.interval="$STAB" \
  -D job.autoscaler.metrics.window="$WINDOW" "$JOB" -- --keys "$KEYS" --rate-file "$TMP/rate" \
  --stop-file "$TMP/stop" --cost-us "$COST_US" --output "$TMP/out" |
  sed -n 's/.*JobID \([0-9a-f]\{32\}\).*/\1/p')
[ -n "$job" ] || { echo "autoscaler_bench: the job was not submitted; see $TMP/jm.log" >&2; KEEP=true; exit 1; }

echo "# $TMS TaskManagers x $SLOTS slots, metrics.fetcher.update-interval=500ms;" \
  "job.autoscaler.stabilization.interval=$STAB, job.autoscaler.metrics.window=$WINDOW," \
  "target utilization 0.7 +- 0.3 (defaults), checkpoints every 500 ms"
echo "# Slow Count --cost-us $COST_US (one subtask takes at most $((1000000 / COST_US)) records/s)," \
  "$KEYS keys; start at $START records/s, steps: $STEPS; settled = no change for $QUIET s"

# One step: sets the rate, polls until settled, prints one row (and its trace with --keep-dir).
step() {  # $1 from, $2 to, $3 mode (steady: wait for the start's steady state, no rate change)
  python3 - "$REST" "$job" "$TMP/rate" "$1" "$2" "$COST_US" "$QUIET" "$TIMEOUT" "$3" \
    "$TMP/trace-$1-$2.txt" <<'PY'
import json, math, sys, time, urllib.request, os
rest, job, rate_file, r_from, r_to, cost_us, quiet, timeout, mode, trace_path = sys.argv[1:]
r_from, r_to, cost_us = float(r_from), float(r_to), float(cost_us)
quiet, timeout = float(quiet), float(timeout)
SLOW = 2

def get(path):
    with urllib.request.urlopen(f"http://{rest}{path}", timeout=5) as r:
        return json.load(r)

def all_running(view):
    return view["state"] == "RUNNING" and all(
        v["tasks"].get("RUNNING", 0) == v["parallelism"] for v in view["vertices"])

t0 = time.time()
if mode != "steady":
    with open(rate_file + ".tmp", "w") as f:
        f.write(f"{int(r_to)}\n")
    os.replace(rate_file + ".tmp", rate_file)
t0_ms = t0 * 1000
trace = open(trace_path, "w")
path = []             # Slow Count's parallelism after each change (every task RUNNING)
last_change = None    # when the newest one was first seen
p_seen = None
bp_seen = False       # the source back-pressured (ratio > 0.5) after the step
bp_max = 0.0
streak_start, streak = None, 0
gone_at = None        # the start of the first run of >= 3 polls without back pressure since
                      # the source was last seen back-pressured
timed_out = False
first_decision = None
view = None
while True:
    now = time.time()
    try:
        view = get(f"/jobs/{job}")
        bp = get(f"/jobs/{job}/vertices/0/backpressure")
    except Exception as e:  # the JobManager is busy: poll again
        print(f"{now - t0:7.2f} error {e}", file=trace)
        time.sleep(0.5)
        continue
    if view["state"] in ("FAILED", "CANCELED", "FINISHED"):
        sys.exit(f"autoscaler_bench: the job is {view['state']}: {view.get('failure-cause')}")
    running = all_running(view)
    p = view["vertices"][SLOW]["parallelism"]
    sub = bp["subtasks"][0] if bp["subtasks"] else {}
    ratio = sub.get("ratio", 0.0)
    reported = sub.get("ratio", 0) + sub.get("busyRatio", 0) + sub.get("idleRatio", 0) > 0.5
    decisions = [d for d in (view.get("autoscaler") or {}).get("decisions", [])
                 if d["timestamp"] >= t0_ms]
    if decisions and first_decision is None:
        first_decision = min(d["timestamp"] for d in decisions) / 1000 - t0
    if running:
        if p_seen is None:
            p_seen = p
            path.append(p)
        elif p != p_seen:
            p_seen = p
            path.append(p)
            last_change = now - t0
    bp_max = max(bp_max, ratio) if running and reported else bp_max
    if running and reported and ratio > 0.5:
        bp_seen = True
    if running and reported and ratio < 0.1:
        if streak == 0:
            streak_start = now - t0
        streak += 1
        if streak == 3 and gone_at is None:
            gone_at = streak_start
    else:
        streak = 0
        if running and reported:
            gone_at = None  # back-pressured again
    print(f"{now - t0:7.2f} p={p} running={running} bp={ratio:.3f} reported={reported} "
          f"decisions={len(decisions)}", file=trace)
    since = (now - t0) - (last_change or 0)
    calm = streak >= 3 or (mode == "steady" and streak >= 1)
    if running and since >= quiet and calm:
        break
    if now - t0 > timeout:
        print(f"autoscaler_bench: step {r_from:.0f} -> {r_to:.0f} not settled in {timeout:.0f} s",
              file=sys.stderr)
        timed_out = True
        break
    time.sleep(max(0.0, 0.5 - (time.time() - now)))

if mode == "steady":
    print(f"# steady at {r_to:.0f} records/s after {time.time() - t0:.1f} s: Slow Count at "
          f"parallelism {p_seen}")
    sys.exit(0)
rescales = sum(1 for d in decisions if d["outcome"].startswith("rescaling"))
waiting = sum(1 for d in decisions if d["outcome"].startswith("waiting"))
needed = math.ceil(r_to * cost_us / 1e6 / 0.7 - 1e-9)
slow = [v for v in (view.get("autoscaler") or {}).get("vertices", []) if v["id"] == str(SLOW)]
cost = util = "-"
if slow and slow[0]["true-processing-rate"]:
    cost = f"{slow[0]['parallelism'] / slow[0]['true-processing-rate'] * 1e6:.0f}"
    util = f"{slow[0]['utilization']:.2f}"
# The same cost from every subtask's busy time (the mean, where the autoscaler takes the busiest
# subtask's), and how much busier the busiest subtask is than the mean (the keys' spread).
mean_cost = skew = "-"
try:
    aggs = {m["id"]: m for m in get(f"/jobs/{job}/vertices/{SLOW}/subtasks/metrics"
                                    "?get=busyTimeMsPerSecond,numRecordsInPerSecond&agg=max,avg")}
    busy, rin = aggs["busyTimeMsPerSecond"], aggs["numRecordsInPerSecond"]
    if rin["avg"] > 0 and busy["avg"] > 0:
        mean_cost = f"{busy['avg'] / 1000 / rin['avg'] * 1e6:.0f}"
        skew = f"{busy['max'] / busy['avg']:.2f}"
except Exception:
    pass
fmt = lambda x: "-" if x is None else f"{x:.1f}"
gone = fmt(gone_at) if gone_at is not None else f">{timeout:.0f}"
if not bp_seen:
    gone = "-"
settled = fmt(last_change) if not timed_out else f">{timeout:.0f}"
print(f"{r_from:.0f} -> {r_to:.0f} | {needed} | {p_seen} | {'>'.join(map(str, path))} | {rescales}"
      f"{f' (+{waiting} waiting)' if waiting else ''} | {fmt(first_decision)} | {gone} | "
      f"{settled} | {cost} | {mean_cost} | {skew} | {util} | {bp_max:.2f}")
for d in sorted(decisions, key=lambda d: d["timestamp"]):
    print(f"#   +{d['timestamp'] / 1000 - t0:.1f} s {d['description']}; {d['outcome']}")
PY
}

step "$START" "$START" steady
echo "rate | needed | settled p | p path | rescales | 1st dec s | bp gone s | settled s | cost us | mean cost us | busy max/mean | util | bp max"
prev=$START
for r in $STEPS; do
  step "$prev" "$r" step
  prev=$r
done
# The source ends its input: the job finishes, and every key must be counted once per record
# across the rescales (the sink's `key,count,violations` lines, violations = gaps or repeats).
touch "$TMP/stop"
python3 - "$REST" "$job" "$TMP/out" "$KEYS" <<'PY'
import glob, json, os, re, sys, time, urllib.request
rest, job, out, keys = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
state = None
for _ in range(240):
    with urllib.request.urlopen(f"http://{rest}/jobs/{job}", timeout=5) as r:
        state = json.load(r)["state"]
    if state in ("FINISHED", "FAILED", "CANCELED"):
        break
    time.sleep(0.5)
counts, bad = {}, 0
uncommitted = 0
for f in glob.glob(f"{out}/part-*"):
    if not re.fullmatch(r"part-\d+-\d+", os.path.basename(f)):
        uncommitted += 1
        continue
    for line in open(f):
        k, c, v = (int(x) for x in line.split(","))
        bad += v != 0 or k in counts
        counts[k] = c
ok = state == "FINISHED" and len(counts) == keys and bad == 0 and uncommitted == 0
print(f"# the job {state}; output: {len(counts)} of {keys} keys, "
      f"{min(counts.values()) if counts else 0} to {max(counts.values()) if counts else 0} "
      f"records a key, {bad} with gaps, repeats or twice, {uncommitted} uncommitted files: {'exactly once' if ok else 'CHECK FAILED'}")
sys.exit(0 if ok else 1)
PY
