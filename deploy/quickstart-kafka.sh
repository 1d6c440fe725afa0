#!/usr/bin/env bash
# Quickstart, part two: the alerting pipeline on Kafka, on the cluster deploy/quickstart.sh left
# running. Builds sluice-kafka-dev (a mock Kafka cluster of librdkafka, on 127.0.0.1) and the
# kafka_alerting example, starts the mock with a `readings` and an `alerts` topic, writes sample
# readings into `readings` with kcat, runs kafka_alerting (bounded, exactly-once into `alerts`),
# and prints the alerts read back from `alerts` with kcat. The mock keeps running; the last lines
# say how to stop it.
#
# Usage: deploy/quickstart-kafka.sh [--skip-build]
# Environment: SLUICE_BUILD_DIR, SLUICE_QUICKSTART_DIR and SLUICE_JOB_TIMEOUT as for
# deploy/quickstart.sh.
set -eEuo pipefail

SKIP_BUILD=0
case "${1:-}" in
  --skip-build) SKIP_BUILD=1 ;;
  "") ;;
  -h | --help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "Unknown argument: $1" >&2; exit 2 ;;
esac

DEPLOY_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=deploy/config.sh
. "$DEPLOY_DIR/config.sh"
BUILD_DIR=$(sluice_abs_path "${SLUICE_BUILD_DIR:-$SLUICE_HOME/build}")
QS_DIR=$(sluice_abs_path "${SLUICE_QUICKSTART_DIR:-$SLUICE_LOG_DIR/quickstart}")
QS_CONF="$QS_DIR/conf"
KAFKA_DIR="$QS_DIR/kafka"
SLUICE="$BUILD_DIR/bin/sluice"
KAFKA_DEV="$BUILD_DIR/bin/sluice-kafka-dev"
EXAMPLE="$BUILD_DIR/examples/libkafka_alerting.so"
JOB_TIMEOUT=${SLUICE_JOB_TIMEOUT:-600}
THRESHOLD=80

STEP=""
step() {
  STEP=$1
  echo
  echo "==> $STEP"
}
die() {
  echo >&2
  echo "quickstart-kafka FAILED while: $STEP" >&2
  local line
  for line in "$@"; do echo "  $line" >&2; done
  exit 1
}
trap 'rc=$?; trap - ERR; die "this command failed with exit status $rc: $BASH_COMMAND"' ERR

step "Checking for the quickstart's cluster"
JM_PID=$(tail -n 1 "$SLUICE_PID_DIR/sluice-$SLUICE_IDENT_STRING-jobmanager.pid" 2>/dev/null || true)
if [ ! -f "$QS_CONF/config.yaml" ] || [ -z "$JM_PID" ] || ! sluice_pid_is_daemon "$JM_PID" jobmanager; then
  die "no cluster of deploy/quickstart.sh is running: run deploy/quickstart.sh first."
fi
echo "JobManager pid $JM_PID, configuration $QS_CONF"

if [ $SKIP_BUILD -eq 0 ]; then
  step "Building sluice-kafka-dev and the kafka_alerting example"
  cmake --build "$BUILD_DIR" -j"${SLUICE_BUILD_JOBS:-2}" --target sluice-kafka-dev kafka_alerting
fi
for f in "$KAFKA_DEV" "$EXAMPLE" "$SLUICE"; do
  [ -e "$f" ] || die "$f is missing: run without --skip-build."
done
command -v kcat >/dev/null || die "kcat is not installed: run deploy/install-deps.sh."

step "Starting a mock Kafka cluster (sluice-kafka-dev) with the topics readings (2 partitions) and alerts"
mkdir -p "$KAFKA_DIR"
# An earlier run's mock, when its pid still runs sluice-kafka-dev: start afresh.
OLD_PID=$(cat "$KAFKA_DIR/pid" 2>/dev/null || true)
if [ -n "$OLD_PID" ] && sluice_pid_is_daemon "$OLD_PID" kafka-dev; then
  kill "$OLD_PID" 2>/dev/null || true
  sleep 1
fi
rm -f "$KAFKA_DIR/bootstrap"
nohup "$KAFKA_DEV" --brokers 1 --topic readings:2 --topic alerts:1 \
  --bootstrap-file "$KAFKA_DIR/bootstrap" </dev/null >"$KAFKA_DIR/kafka-dev.out" 2>&1 &
echo $! >"$KAFKA_DIR/pid"
for ((i = 0; i < 100; i++)); do
  [ -s "$KAFKA_DIR/bootstrap" ] && break
  sleep 0.1
done
[ -s "$KAFKA_DIR/bootstrap" ] || die "sluice-kafka-dev did not start (see $KAFKA_DIR/kafka-dev.out)."
BOOTSTRAP=$(head -n 1 "$KAFKA_DIR/bootstrap")
echo "Bootstrap servers: $BOOTSTRAP (pid $(cat "$KAFKA_DIR/pid"))"

step "Writing sample readings to the topic readings with kcat"
# Three minutes of one reading per second for two hosts: cpu of web-1 runs hot in the second
# minute, cpu of web-2 in the third. Lines `timestamp_ms,host,metric,value`, keyed by host.
awk 'BEGIN {
  t0 = 1767225600000
  for (s = 0; s < 180; s++) {
    v1 = (s >= 60 && s < 120) ? 90 + s % 10 : 40 + s % 20
    v2 = (s >= 120) ? 85 + s % 10 : 30 + s % 25
    printf "web-1|%.0f,web-1,cpu,%d\n", t0 + s * 1000, v1
    printf "web-2|%.0f,web-2,cpu,%d\n", t0 + s * 1000, v2
  }
}' >"$KAFKA_DIR/readings.txt"
kcat -P -b "$BOOTSTRAP" -t readings -K '|' -l "$KAFKA_DIR/readings.txt"
echo "$(wc -l <"$KAFKA_DIR/readings.txt") readings written."

step "Running kafka_alerting: one-minute windows, alerts above $THRESHOLD, exactly once into alerts"
# The mock stores no offsets committed in a transaction: the sink's commit markers are also
# committed outside it, so that a restart of the job does not commit its batches again.
RUN=("$SLUICE" run --config-dir "$QS_CONF" -p 2 -D execution.checkpointing.interval=1s "$EXAMPLE" --
  --bootstrap-servers "$BOOTSTRAP" --topic readings --bounded --threshold "$THRESHOLD"
  --window-ms 60000 --out-of-orderness-ms 1000 --output-topic alerts
  --delivery-guarantee exactly-once
  --producer-properties sluice.marker.commit-outside-transaction=true)
echo "+ ${RUN[*]}"
rc=0
timeout "$JOB_TIMEOUT" "${RUN[@]}" || rc=$?
[ $rc -eq 0 ] || die "the job failed (exit status $rc); logs in $SLUICE_LOG_DIR."

step "Reading the alerts back from the topic alerts with kcat"
kcat -C -b "$BOOTSTRAP" -t alerts -o beginning -e -q >"$KAFKA_DIR/alerts.txt"
grep '^ALERT,' "$KAFKA_DIR/alerts.txt" | sort || true
got=$(grep -c '^ALERT,' "$KAFKA_DIR/alerts.txt" || true)
windows=$(grep -vc '^ALERT,' "$KAFKA_DIR/alerts.txt" || true)
# The windows whose average is above the threshold, counted directly.
want=$(awk -F'[|,]' '{ k = $3 "," int($2 / 60000); s[k] += $5; n[k]++ }
  END { for (k in s) if (s[k] / n[k] > '"$THRESHOLD"') c++; print c + 0 }' "$KAFKA_DIR/readings.txt")
echo "$windows window reports and $got alerts (a direct count of the readings expects $want)."
[ "$got" -eq "$want" ] || die "the alerts differ from a direct count of the readings."

trap - ERR
echo
echo "The mock Kafka cluster is still running at $BOOTSTRAP:"
echo "  Read a topic:   kcat -C -b $BOOTSTRAP -t alerts -o beginning -e"
echo "  Write readings: kcat -P -b $BOOTSTRAP -t readings   (lines timestamp_ms,host,metric,value)"
echo "  Stop it:        kill $(cat "$KAFKA_DIR/pid")"
