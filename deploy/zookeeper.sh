#!/usr/bin/env bash
# Runs a local single-node ZooKeeper (Debian's zookeeper package, on its JVM) for high
# availability in development and the quickstart: high-availability.zookeeper.quorum then is
# 127.0.0.1:<port>. Not for production: one node is no quorum.
#
# Usage: zookeeper.sh (start|stop|status) [port]
#   port  the client port, on 127.0.0.1 (default $SLUICE_ZOOKEEPER_PORT, else 2181)
#
# Its configuration and data live in $SLUICE_ZOOKEEPER_DIR (default $SLUICE_HOME/.zookeeper),
# its log in $SLUICE_LOG_DIR/sluice-zookeeper-<host>.log, its pid in
# $SLUICE_PID_DIR/sluice-$SLUICE_IDENT_STRING-zookeeper.pid; it is stopped by that pid only.
# $SLUICE_JAVA names the java binary (default: java on PATH); $SLUICE_ZOOKEEPER_CLASSPATH the
# server's classpath (default /usr/share/java/zookeeper.jar, whose manifest lists the rest).
set -euo pipefail

# shellcheck source=deploy/config.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/config.sh"

usage() {
  echo "Usage: $(basename "$0") (start|stop|status) [port]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
ACTION=$1
PORT=${2:-${SLUICE_ZOOKEEPER_PORT:-2181}}
case "$PORT" in
  '' | *[!0-9]*) echo "zookeeper: '$PORT' is not a port" >&2; exit 2 ;;
esac
if [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then
  echo "zookeeper: '$PORT' is not a port" >&2
  exit 2
fi

ZK_DIR=$(sluice_abs_path "${SLUICE_ZOOKEEPER_DIR:-$SLUICE_HOME/.zookeeper}")
PID_FILE="$SLUICE_PID_DIR/sluice-$SLUICE_IDENT_STRING-zookeeper.pid"
LOG_FILE="$SLUICE_LOG_DIR/sluice-zookeeper-$(sluice_hostname).log"
JAVA=${SLUICE_JAVA:-$(command -v java || true)}
CLASSPATH_ZK=${SLUICE_ZOOKEEPER_CLASSPATH:-/usr/share/java/zookeeper.jar}
if [ -z "${SLUICE_ZOOKEEPER_CLASSPATH:-}" ] && [ -r /usr/share/java/slf4j-simple.jar ]; then
  CLASSPATH_ZK="$CLASSPATH_ZK:/usr/share/java/slf4j-simple.jar"  # so warnings reach the log
fi

# The recorded pid, when it is still a ZooKeeper server.
running_pid() {
  local pid args
  [ -r "$PID_FILE" ] || return 1
  pid=$(head -n 1 "$PID_FILE")
  sluice_pid_alive "$pid" || return 1
  args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
  [ -z "$args" ] || [[ "$args" == *ZooKeeperServerMain* ]] || return 1
  echo "$pid"
}

answers() {
  # shellcheck disable=SC2016  # expanded by the inner shell
  timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" && printf ruok >&3 && head -c 4 <&3' "$1" \
    2>/dev/null | grep -q imok
}

start() {
  local pid
  if pid=$(running_pid); then
    echo "zookeeper: already running (pid $pid)"
    return 0
  fi
  if [ -z "$JAVA" ] || [ ! -r "${CLASSPATH_ZK%%:*}" ]; then
    echo "zookeeper: needs java and ${CLASSPATH_ZK%%:*}: run deploy/install-deps.sh" \
      "(Debian packages zookeeper and a JRE)" >&2
    exit 1
  fi
  if sluice_port_in_use 127.0.0.1 "$PORT"; then
    echo "zookeeper: port $PORT is in use by $(sluice_port_owner "$PORT")" \
      "(give another: zookeeper.sh start <port>)" >&2
    exit 1
  fi
  mkdir -p "$ZK_DIR/data" "$SLUICE_LOG_DIR" "$SLUICE_PID_DIR"
  # tickTime 500 ms allows sessions down to 1 s; no admin HTTP server (it would take port 8080).
  cat >"$ZK_DIR/zoo.cfg" <<CFG
tickTime=500
minSessionTimeout=1000
maxSessionTimeout=60000
dataDir=$ZK_DIR/data
clientPort=$PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat
CFG
  nohup "$JAVA" -Xmx256m -XX:+UseSerialGC -Dzookeeper.admin.enableServer=false \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$CLASSPATH_ZK" \
    org.apache.zookeeper.server.ZooKeeperServerMain "$ZK_DIR/zoo.cfg" \
    >>"$LOG_FILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  for _ in $(seq 1 300); do
    if answers "$PORT"; then
      echo "zookeeper: running on 127.0.0.1:$PORT (pid $pid, data $ZK_DIR/data, log $LOG_FILE)"
      return 0
    fi
    if ! sluice_pid_alive "$pid"; then
      rm -f "$PID_FILE"
      echo "zookeeper: exited at start; its log ($LOG_FILE):" >&2
      tail -n 20 "$LOG_FILE" >&2
      exit 1
    fi
    sleep 0.2
  done
  echo "zookeeper: pid $pid does not answer on 127.0.0.1:$PORT after 60 s; see $LOG_FILE" >&2
  exit 1
}

stop() {
  local pid
  if ! pid=$(running_pid); then
    echo "zookeeper: not running"
    rm -f "$PID_FILE"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    sluice_pid_alive "$pid" || break
    sleep 0.1
  done
  if sluice_pid_alive "$pid"; then
    echo "zookeeper: pid $pid did not stop within 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  echo "zookeeper: stopped (pid $pid)"
}

case "$ACTION" in
  start) start ;;
  stop) stop ;;
  status)
    if pid=$(running_pid); then echo "zookeeper: running (pid $pid)"; else echo "zookeeper: not running"; exit 1; fi
    ;;
  *) usage ;;
esac
