#!/usr/bin/env bash
# Quickstart: from a fresh checkout to a running local Sluice cluster in one command. Installs the
# build dependencies, builds what it runs (the daemons, the CLI and the word count example; not the
# tests), starts a JobManager and two TaskManagers (two slots each) with a configuration of their
# own (conf/ is left as it is), runs the word count example with parallelism 4 on a text file,
# prints the most frequent words and how to go on. The cluster is left running.
#
# Usage: deploy/quickstart.sh [--input FILE] [--skip-deps] [--skip-build]
#   --input FILE   count the words of FILE (default: a generated sample text)
#   --skip-deps    do not run deploy/install-deps.sh
#   --skip-build   do not configure and build (use the existing build)
# Environment:
#   SLUICE_CMAKE_ARGS  configure flags (default: -G Ninja -DCMAKE_BUILD_TYPE=Release
#                      -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
#   SLUICE_BUILD_JOBS  parallel build jobs (default 2)
#   SLUICE_BUILD_DIR   the build directory (default $SLUICE_HOME/build)
#   SLUICE_QUICKSTART_DIR  configuration, sample input and output (default $SLUICE_LOG_DIR/quickstart)
#   SLUICE_JOB_TIMEOUT seconds to wait for the job (default 600)
set -eEuo pipefail

usage() {
  sed -n '8,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

INPUT=""
SKIP_DEPS=0
SKIP_BUILD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --input)
      [ $# -ge 2 ] || { usage >&2; exit 2; }
      INPUT=$2
      shift 2
      ;;
    --input=*) INPUT=${1#--input=}; shift ;;
    --skip-deps) SKIP_DEPS=1; shift ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "Unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -n "$INPUT" ]; then
  if [ ! -f "$INPUT" ] || [ ! -r "$INPUT" ]; then echo "Cannot read the input file '$INPUT'." >&2; exit 2; fi
  INPUT=$(cd -- "$(dirname -- "$INPUT")" && pwd -P)/$(basename -- "$INPUT")
fi

DEPLOY_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# The cluster gets its own configuration directory; the user's conf/ is only read.
USER_CONF_DIR=${SLUICE_CONF_DIR:-$(cd -- "$DEPLOY_DIR/.." && pwd -P)/conf}
# shellcheck source=deploy/config.sh
. "$DEPLOY_DIR/config.sh"
USER_CONF_DIR=$(sluice_abs_path "$USER_CONF_DIR")

BUILD_DIR=$(sluice_abs_path "${SLUICE_BUILD_DIR:-$SLUICE_HOME/build}")
export SLUICE_BIN_DIR="$BUILD_DIR/bin"
CMAKE_ARGS=${SLUICE_CMAKE_ARGS:--G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache}
BUILD_JOBS=${SLUICE_BUILD_JOBS:-2}
BUILD_TARGETS=(sluice-jobmanager sluice-taskmanager sluice wordcount)
JOB_TIMEOUT=${SLUICE_JOB_TIMEOUT:-600}
QS_DIR=$(sluice_abs_path "${SLUICE_QUICKSTART_DIR:-$SLUICE_LOG_DIR/quickstart}")
QS_CONF="$QS_DIR/conf"
OUTPUT_DIR="$QS_DIR/wordcount-output"
SLUICE="$SLUICE_BIN_DIR/sluice"
EXAMPLE="$BUILD_DIR/examples/libwordcount.so"

ORIG_PWD=$PWD
cd "$SLUICE_HOME"

# ---- reporting ---------------------------------------------------------------------------------
STEP=""
step() {
  STEP=$1
  echo
  echo "==> $STEP"
}
die() {
  echo >&2
  echo "quickstart FAILED while: $STEP" >&2
  local line
  for line in "$@"; do echo "  $line" >&2; done
  exit 1
}
on_error() {
  local rc=$1 cmd=$2
  trap - ERR
  die "this command failed with exit status $rc:" "  $cmd"
}
trap 'on_error $? "$BASH_COMMAND"' ERR

# Shell-quotes a command for display, so that it can be copied.
show_cmd() {
  local out="" a
  for a in "$@"; do out+="$(printf '%q' "$a") "; done
  printf '%s\n' "${out% }"
}

# For printing: the path relative to the repository root when it lies inside it and the
# quickstart was started from there (so that printed commands can be pasted as they are).
rel() {
  case "$1" in
    "$SLUICE_HOME"/*) if [ "$ORIG_PWD" -ef "$SLUICE_HOME" ]; then printf '%s\n' "${1#"$SLUICE_HOME"/}"; return; fi ;;
  esac
  printf '%s\n' "$1"
}

# How to stop this cluster later (the pid directory too, when it is not the default).
STOP_CMD="SLUICE_CONF_DIR=$(printf '%q' "$(rel "$QS_CONF")")"
[ "$SLUICE_PID_DIR" = /tmp ] || STOP_CMD+=" SLUICE_PID_DIR=$(printf '%q' "$SLUICE_PID_DIR")"
STOP_CMD+=" $(rel "$DEPLOY_DIR/stop-cluster.sh")"

# ---- 1. dependencies ---------------------------------------------------------------------------
if [ $SKIP_DEPS -eq 0 ]; then
  step "Installing build dependencies (deploy/install-deps.sh)"
  "$DEPLOY_DIR/install-deps.sh" || die "deploy/install-deps.sh failed (see its output above)." \
    "It installs Debian packages with apt-get and needs root (or sudo)."
fi

# ---- 2. build ----------------------------------------------------------------------------------
if [ $SKIP_BUILD -eq 0 ]; then
  step "Configuring the build"
  # shellcheck disable=SC2086  # CMAKE_ARGS holds several flags
  echo "+ cmake -S . -B $(rel "$BUILD_DIR") $CMAKE_ARGS"
  # shellcheck disable=SC2086
  cmake -S "$SLUICE_HOME" -B "$BUILD_DIR" $CMAKE_ARGS ||
    die "cmake could not configure the build (see its messages above)." \
      "If $(rel "$BUILD_DIR") was configured before with other settings (e.g. another generator)," \
      "remove it and run the quickstart again: rm -rf $(rel "$BUILD_DIR")"
  # Only what the quickstart runs: the tests and benchmarks take most of a full build's time
  # (deploy/test.sh builds everything, in the same build directory).
  step "Building the daemons, the CLI and the word count example (this takes a while the first time)"
  echo "+ cmake --build $(rel "$BUILD_DIR") -j$BUILD_JOBS --target ${BUILD_TARGETS[*]}"
  cmake --build "$BUILD_DIR" -j"$BUILD_JOBS" --target "${BUILD_TARGETS[@]}" ||
    die "the build failed (see the compiler's messages above)."
fi
step "Checking the build"
if [ $SKIP_BUILD -eq 1 ]; then MISSING="run the quickstart without --skip-build"; else MISSING="the build did not produce it"; fi
for f in "$SLUICE_BIN_DIR/sluice-jobmanager" "$SLUICE_BIN_DIR/sluice-taskmanager" "$SLUICE"; do
  [ -x "$f" ] || die "$f is missing: $MISSING."
done
[ -f "$EXAMPLE" ] || die "$EXAMPLE (the word count example) is missing: $MISSING."
echo "Binaries in $(rel "$SLUICE_BIN_DIR"), example job $(rel "$EXAMPLE")"

# ---- 3. input ----------------------------------------------------------------------------------
STEP="creating $QS_DIR"
mkdir -p "$QS_DIR"
if [ -z "$INPUT" ]; then
  step "Generating a sample text"
  INPUT="$QS_DIR/words.txt"
  # 30000 lines of 3 to 12 words from a small word list; the choice is pseudo-random (a
  # Park-Miller generator, exact in awk's floating point) but the same on every run, and skewed
  # so that some words are far more frequent than others.
  awk -v lines=30000 'BEGIN {
    n = split("the stream of events flows through operators and windows to sinks while " \
              "state keys time records data job task slot manager checkpoint source map " \
              "filter reduce count word parallel network buffer watermark latency " \
              "throughput cluster river sluice gate water lock", w, " ")
    x = 20240611
    for (i = 0; i < lines; i++) {
      x = (x * 16807) % 2147483647
      k = 3 + x % 10
      line = ""
      for (j = 0; j < k; j++) {
        x = (x * 16807) % 2147483647
        u = x / 2147483647
        line = line (j ? " " : "") w[1 + int(n * u * u)]
      }
      print line
    }
  }' >"$INPUT.tmp"
  mv -f "$INPUT.tmp" "$INPUT"
fi
echo "Input: $(rel "$INPUT") ($(wc -l <"$INPUT") lines, $(wc -c <"$INPUT") bytes)"

# ---- 4. cluster --------------------------------------------------------------------------------
step "Checking that the cluster's ports are free"
[ -f "$USER_CONF_DIR/config.yaml" ] || die "$USER_CONF_DIR/config.yaml does not exist."
JM_ADDRESS=$(sluice_config_get jobmanager.rpc.address localhost "$USER_CONF_DIR/config.yaml")
JM_PORT=$(sluice_config_get jobmanager.rpc.port 6123 "$USER_CONF_DIR/config.yaml")
REST_PORT=$(sluice_config_get rest.port 8081 "$USER_CONF_DIR/config.yaml")
REST_SCHEME=http
case "$(sluice_config_get security.ssl.rest.enabled false "$USER_CONF_DIR/config.yaml" |
  tr '[:upper:]' '[:lower:]')" in
  true | yes | 1) REST_SCHEME=https ;;
esac

# The configuration directory of a running JobManager of ours, when there is one.
running_jobmanager_conf() {
  local pid_file="$SLUICE_PID_DIR/sluice-$SLUICE_IDENT_STRING-jobmanager.pid" pid
  [ -f "$pid_file" ] || return 1
  while IFS= read -r pid; do
    if sluice_pid_is_daemon "$pid" jobmanager; then
      if [ -r "/proc/$pid/cmdline" ]; then
        tr '\0' '\n' <"/proc/$pid/cmdline" | awk 'prev == "--config-dir" { print; exit } { prev = $0 }'
      fi
      echo "pid $pid"
      return 0
    fi
  done <"$pid_file"
  return 1
}

for entry in "jobmanager.rpc.port:$JM_PORT" "rest.port:$REST_PORT"; do
  key=${entry%%:*}
  port=${entry#*:}
  [ "$port" -gt 0 ] 2>/dev/null || continue
  if sluice_port_in_use 127.0.0.1 "$port" || sluice_port_in_use "$JM_ADDRESS" "$port"; then
    if info=$(running_jobmanager_conf); then
      conf=$(printf '%s\n' "$info" | sed -n '1{/^pid /!p}')
      pid=$(printf '%s\n' "$info" | sed -n 's/^pid //p')
      if [ -n "$conf" ]; then
        stop="SLUICE_CONF_DIR=$(printf '%q' "$(rel "$conf")") $(rel "$DEPLOY_DIR/stop-cluster.sh")"
      else
        stop=$(rel "$DEPLOY_DIR/stop-cluster.sh")
      fi
      die "Port $port ($key) is taken: a Sluice cluster is already running here" \
        "(JobManager pid $pid${conf:+, configuration $conf}), perhaps from an earlier quickstart." \
        "Use it as it is, or stop it and run the quickstart again:" "  $stop"
    fi
    owner=$(sluice_port_owner "$port")
    die "Port $port ($key) is already in use by another program${owner:+ ($owner)}." \
      "Stop that program, or choose other ports for Sluice in $(rel "$USER_CONF_DIR")/config.yaml" \
      "(jobmanager.rpc.port, rest.port) and run the quickstart again."
  fi
done
echo "Ports $JM_PORT (JobManager) and $REST_PORT (REST) are free."

step "Writing the cluster's configuration to $(rel "$QS_CONF")"
rm -rf -- "$QS_CONF"
mkdir -p "$QS_CONF"
cp -- "$USER_CONF_DIR"/config.yaml "$QS_CONF/"
[ -f "$USER_CONF_DIR/masters" ] && cp -- "$USER_CONF_DIR/masters" "$QS_CONF/"
sluice_config_set "$QS_CONF/config.yaml" taskmanager.numberOfTaskSlots 2
cat >"$QS_CONF/workers" <<'EOF'
# Written by deploy/quickstart.sh: two TaskManagers on this host.
localhost
localhost
EOF
echo "Two TaskManagers with 2 slots each (taskmanager.numberOfTaskSlots: 2); other settings from $(rel "$USER_CONF_DIR")/config.yaml."

step "Starting a local cluster: a JobManager and two TaskManagers"
if ! SLUICE_CONF_DIR="$QS_CONF" "$DEPLOY_DIR/start-cluster.sh"; then
  echo "Stopping what did start..." >&2
  SLUICE_CONF_DIR="$QS_CONF" "$DEPLOY_DIR/stop-cluster.sh" >&2 || true
  die "the cluster did not start (see the messages above; logs in $(rel "$SLUICE_LOG_DIR"))."
fi
export SLUICE_CONF_DIR="$QS_CONF"

# The JobManager's log: its standard error (the newest JobManager in the pid file).
JM_PID=$(tail -n 1 "$SLUICE_PID_DIR/sluice-$SLUICE_IDENT_STRING-jobmanager.pid" 2>/dev/null || true)
JM_LOG=$(readlink "/proc/$JM_PID/fd/2" 2>/dev/null || true)
[ -n "$JM_LOG" ] && [ -f "$JM_LOG" ] || JM_LOG="$SLUICE_LOG_DIR/sluice-jobmanager-0-$(sluice_hostname).log"

# The job is refused unless its 4 slots are registered, so wait for the TaskManagers to register;
# the JobManager logs "TaskManager <id> registered from <address> with <n> slots" for each.
registered_slots() {
  awk '/TaskManager .* registered from .* with [0-9]+ slots/ {
         for (i = 1; i < NF; i++) {
           if ($i == "TaskManager") id = $(i + 1)
           if ($i == "with") n = $(i + 1)
         }
         slots[id] = n
       }
       END { for (id in slots) s += slots[id]; print s + 0 }' "$JM_LOG" 2>/dev/null || echo 0
}
step "Waiting for the TaskManagers to register their 4 slots"
for ((i = 0; i < 300; i++)); do
  [ "$(registered_slots)" -ge 4 ] && break
  sleep 0.1
done
if [ "$(registered_slots)" -ge 4 ]; then
  echo "4 slots registered."
else
  echo "[WARN] the JobManager's log ($(rel "$JM_LOG")) does not show 4 registered slots after 30 s; submitting anyway." >&2
fi

# ---- 5. the job --------------------------------------------------------------------------------
step "Running the word count example with parallelism 4"
rm -rf -- "$OUTPUT_DIR"
RUN=("$SLUICE" run --config-dir "$QS_CONF" -p 4 "$EXAMPLE" -- --input "$INPUT" --output "$OUTPUT_DIR")
echo "+ $(show_cmd "${RUN[@]}")"
rc=0
timeout "$JOB_TIMEOUT" "${RUN[@]}" || rc=$?
if [ $rc -ne 0 ]; then
  if [ $rc -eq 124 ]; then why="did not finish within $JOB_TIMEOUT s"; else why="failed (exit status $rc)"; fi
  die "the job $why. The cluster is still running, for a look at it:" \
    "logs: $(rel "$JM_LOG") and the TaskManagers' $(rel "$SLUICE_LOG_DIR")/sluice-taskmanager-*.log" \
    "jobs: $(rel "$SLUICE") list --config-dir $(rel "$QS_CONF")" \
    "stop: $STOP_CMD"
fi

# ---- 6. results --------------------------------------------------------------------------------
step "Reading the results from $(rel "$OUTPUT_DIR")"
shopt -s nullglob
parts=("$OUTPUT_DIR"/part-*)
shopt -u nullglob
[ ${#parts[@]} -gt 0 ] || die "the job finished but wrote no part-* files to $OUTPUT_DIR."
# Each line is `word,count`, a rolling update: a word's total is its largest count. The count is
# after the last comma, so words containing commas survive.
COUNTS="$QS_DIR/counts.tsv"
LC_ALL=C awk '
  match($0, /,[0-9]+$/) {
    w = substr($0, 1, RSTART - 1); c = substr($0, RSTART + 1) + 0
    if (!(w in max) || c > max[w]) max[w] = c
  }
  END { for (w in max) printf "%s\t%d\n", w, max[w] }' "${parts[@]}" | LC_ALL=C sort >"$COUNTS"
[ -s "$COUNTS" ] || die "the job's output in $OUTPUT_DIR holds no word counts."

# The same count done directly, as a check of the cluster's answer.
EXPECTED="$QS_DIR/expected.tsv"
LC_ALL=C awk -F'[ \t\r]+' '
  { for (i = 1; i <= NF; i++) if ($i != "") n[$i]++ }
  END { for (w in n) printf "%s\t%d\n", w, n[w] }' "$INPUT" | LC_ALL=C sort >"$EXPECTED"
distinct=$(wc -l <"$COUNTS")
total=$(awk -F'\t' '{ s += $2 } END { printf "%d", s }' "$COUNTS")
if ! cmp -s "$COUNTS" "$EXPECTED"; then
  differ=$(LC_ALL=C join -t "$(printf '\t')" -a1 -a2 -e MISSING -o 0,1.2,2.2 "$COUNTS" "$EXPECTED" |
    awk -F'\t' '$2 != $3' | wc -l)
  die "the job's counts differ from a direct count of the input for $differ word(s):" \
    "job: $COUNTS  direct: $EXPECTED  (diff them to see which)."
fi
echo "$total words, $distinct distinct; the counts agree with a direct count of the input."
echo
echo "Top 10 words:"
LC_ALL=C sort -t "$(printf '\t')" -k2,2nr -k1,1 "$COUNTS" | head -n 10 |
  awk -F'\t' '{ printf "  %8d  %s\n", $2, $1 }'

# ---- 7. what next ------------------------------------------------------------------------------
trap - ERR
CONF_REL=$(printf '%q' "$(rel "$QS_CONF")")
SLUICE_REL=$(rel "$SLUICE")
echo
echo "The cluster is still running (JobManager and two TaskManagers, 4 slots in all)."
echo
if [ "$REST_PORT" -gt 0 ] 2>/dev/null; then
  if sluice_port_in_use localhost "$REST_PORT"; then
    echo "  Dashboard / REST API:  $REST_SCHEME://localhost:$REST_PORT/"
  else
    echo "  Dashboard / REST API:  $REST_SCHEME://localhost:$REST_PORT/ (rest.port; not answering yet: see the JobManager log)"
  fi
elif [ "$REST_PORT" = 0 ]; then
  echo "  Dashboard / REST API:  on a free port (rest.port: 0), see the JobManager's log"
else
  echo "  Dashboard / REST API:  off (rest.port: $REST_PORT)"
fi
echo "  Submit a job:          $SLUICE_REL run --config-dir $CONF_REL -p 4 $(rel "$EXAMPLE") -- --input FILE --output DIR"
echo "                         (detached: add -d; jobs' print() output goes to the TaskManagers' .out files)"
echo "  List jobs:             $SLUICE_REL list -a --config-dir $CONF_REL   (-a: finished ones too)"
echo "  Cancel a job:          $SLUICE_REL cancel --config-dir $CONF_REL JOBID"
echo "                         (or export SLUICE_CONF_DIR=$CONF_REL and leave out --config-dir)"
echo "  Logs:                  $(rel "$SLUICE_LOG_DIR")/sluice-{jobmanager,taskmanager}-<n>-$(sluice_hostname).{log,out}"
echo "  Results of this run:   $(rel "$OUTPUT_DIR")/part-*"
echo "  Stop the cluster:      $STOP_CMD"
