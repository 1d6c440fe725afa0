#!/usr/bin/env bash
# Shared settings of the operator scripts; sourced, not run. Resolves the installation's
# directories (each overridable from the environment) and provides small helpers for reading
# conf/config.yaml and the workers file and for inspecting processes by pid.
#
#   SLUICE_HOME      the repository root (the parent of deploy/)
#   SLUICE_BIN_DIR   where the binaries are            (default $SLUICE_HOME/build/bin)
#   SLUICE_CONF_DIR  config.yaml, workers, masters     (default $SLUICE_HOME/conf)
#   SLUICE_LOG_DIR   the daemons' .log and .out files  (default env.log.dir, else $SLUICE_HOME/log)
#   SLUICE_PID_DIR   the daemons' pid files            (default env.pid.dir, else /tmp)
#   SLUICE_SSH_OPTS  extra options for ssh to workers  (default env.ssh.opts, else none)
#   SLUICE_IDENT_STRING  names the pid and log files   (default the user name)

# Paths must be absolute: the daemons and remote shells do not share our working directory.
sluice_abs_path() {
  local p=$1
  case "$p" in
    /*) printf '%s\n' "$p" ;;
    *) printf '%s\n' "$PWD/$p" ;;
  esac
}

SLUICE_HOME=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
SLUICE_BIN_DIR=$(sluice_abs_path "${SLUICE_BIN_DIR:-$SLUICE_HOME/build/bin}")
SLUICE_CONF_DIR=$(sluice_abs_path "${SLUICE_CONF_DIR:-$SLUICE_HOME/conf}")
SLUICE_CONF_FILE="$SLUICE_CONF_DIR/config.yaml"

# This host's name, as used in log file names.
sluice_hostname() {
  hostname 2>/dev/null || uname -n
}

# sluice_config_get KEY DEFAULT [FILE]: the value KEY is set to in config.yaml (FILE defaults to
# $SLUICE_CONF_FILE), or DEFAULT when the key or the file is absent. With the sluice binary built,
# it reads the file as the daemons do (`sluice config get`: flat or nested YAML, Flink 1 and 2
# names of a key); without it, or when the binary cannot read the file, a fallback reads flat
# `key: value` lines only.
sluice_config_get() {
  local key=$1 default=$2 file=${3:-$SLUICE_CONF_FILE} value=""
  if [ -r "$file" ]; then
    if [ "$file" = "$SLUICE_CONF_FILE" ] && [ "$SLUICE_CONFIG_READER" = flat ] ||
      [ ! -x "$SLUICE_BIN_DIR/sluice" ] || [ "$(basename -- "$file")" != config.yaml ] ||
      ! value=$("$SLUICE_BIN_DIR/sluice" config get --config-dir "$(dirname -- "$file")" \
        "$key" 2>/dev/null); then
      value=$(sluice_config_get_flat "$key" "$file")
    fi
  fi
  if [ -n "$value" ]; then
    printf '%s\n' "$value"
  else
    printf '%s\n' "$default"
  fi
}

# Whether the binary reads $SLUICE_CONF_FILE, checked once here, in the shell that sources this
# file (the readers run in subshells): a malformed file (the daemons will refuse it too, naming
# the problem) or an older binary gets one warning, and the flat reader from then on.
SLUICE_CONFIG_READER=binary
if [ -x "$SLUICE_BIN_DIR/sluice" ] && [ -r "$SLUICE_CONF_FILE" ] &&
  ! sluice_config_error=$("$SLUICE_BIN_DIR/sluice" config get --config-dir "$SLUICE_CONF_DIR" \
    jobmanager.rpc.port 2>&1 >/dev/null); then
  echo "WARNING: cannot read $SLUICE_CONF_FILE as the daemons do (${sluice_config_error%%$'\n'*}); the scripts read its flat 'key: value' lines only" >&2
  SLUICE_CONFIG_READER=flat
fi

# sluice_config_get_flat KEY FILE: the fallback of sluice_config_get: the last uncommented flat
# `KEY: value` line of FILE, without comments and surrounding quotes.
sluice_config_get_flat() {
  awk -v key="$1" '
    {
      line = $0
      sub(/\r$/, "", line)
      sub(/^[ \t]+/, "", line)
      if (substr(line, 1, length(key)) != key) next
      rest = substr(line, length(key) + 1)
      if (rest !~ /^[ \t]*:/) next
      sub(/^[ \t]*:/, "", rest)
      sub(/^[ \t]+/, "", rest)
      if (rest ~ /^#/) rest = ""
      sub(/[ \t]+#.*$/, "", rest)
      sub(/[ \t]+$/, "", rest)
      if (rest ~ /^".*"$/ || rest ~ /^\047.*\047$/) rest = substr(rest, 2, length(rest) - 2)
      found = 1
      value = rest
    }
    END { if (found) print value }' "$2"
}

# The daemons' log and pid folders and the options of ssh: the environment, else Flink's
# env.log.dir, env.pid.dir and env.ssh.opts from config.yaml, else the defaults.
SLUICE_LOG_DIR=$(sluice_abs_path "${SLUICE_LOG_DIR:-$(sluice_config_get env.log.dir "$SLUICE_HOME/log")}")
SLUICE_PID_DIR=$(sluice_abs_path "${SLUICE_PID_DIR:-$(sluice_config_get env.pid.dir /tmp)}")
SLUICE_SSH_OPTS=${SLUICE_SSH_OPTS:-$(sluice_config_get env.ssh.opts "")}
SLUICE_IDENT_STRING=${SLUICE_IDENT_STRING:-${USER:-$(id -un 2>/dev/null || echo sluice)}}
export SLUICE_HOME SLUICE_BIN_DIR SLUICE_CONF_DIR SLUICE_LOG_DIR SLUICE_PID_DIR SLUICE_SSH_OPTS \
  SLUICE_IDENT_STRING

# sluice_config_set FILE KEY VALUE: replaces every uncommented `KEY:` line of FILE with one
# `KEY: VALUE` line (appended at the end when the key was not there).
sluice_config_set() {
  local file=$1 key=$2 value=$3 tmp
  tmp=$(mktemp "${file}.XXXXXX")
  awk -v key="$key" -v value="$value" '
    {
      line = $0
      sub(/^[ \t]+/, "", line)
      if (substr(line, 1, length(key)) == key && substr(line, length(key) + 1) ~ /^[ \t]*:/) {
        if (!done) print key ": " value
        done = 1
        next
      }
      print
    }
    END { if (!done) print key ": " value }' "$file" >"$tmp" && mv -f -- "$tmp" "$file"
}

# sluice_read_hosts FILE: the host names of a workers or masters file, one per line, with
# comments, blank lines, surrounding blanks and a `:port` suffix (masters) removed.
sluice_read_hosts() {
  local file=$1
  [ -r "$file" ] || return 0
  awk '
    {
      sub(/\r$/, "")
      sub(/#.*/, "")
      gsub(/^[ \t]+|[ \t]+$/, "")
      if ($0 == "") next
      host = $1
      if (host ~ /^\[/) { sub(/^\[/, "", host); sub(/\].*$/, "", host) }   # [ipv6]:port
      else if (gsub(/:/, ":", host) == 1) sub(/:[^:]*$/, "", host)          # host:port
      print host
    }' "$file"
}

# sluice_read_masters FILE: "host port" for each `host:webui-port` line of a masters file
# (comments and blank lines skipped; [ipv6]:port accepted). A line that is not host:port with a
# port of 0 to 65535 is an error naming the file and line (status 1, nothing printed).
sluice_read_masters() {
  local file=$1
  [ -r "$file" ] || { echo "ERROR: cannot read $file" >&2; return 1; }
  awk -v file="$file" '
    {
      line = $0
      sub(/\r$/, "", line)
      sub(/#.*/, "", line)
      gsub(/^[ \t]+|[ \t]+$/, "", line)
      if (line == "") next
      host = line; port = ""
      if (line ~ /^\[[^]]+\]:[0-9]+$/) { host = line; sub(/\]:[0-9]+$/, "", host); sub(/^\[/, "", host); port = line; sub(/^.*\]:/, "", port) }
      else if (line ~ /^[^:[:space:]]+:[0-9]+$/) { host = line; sub(/:[0-9]+$/, "", host); port = line; sub(/^.*:/, "", port) }
      if (port == "" || port + 0 > 65535) {
        printf "ERROR: %s line %d: '"'"'%s'"'"' is not host:webui-port\n", file, NR, $0 > "/dev/stderr"
        bad = 1
        next
      }
      out[++n] = host " " port
    }
    END {
      if (bad) exit 1
      for (i = 1; i <= n; i++) print out[i]
    }' "$file"
}

# sluice_is_local_host HOST: true when HOST names this machine.
sluice_is_local_host() {
  local h=$1 n
  case "$h" in
    localhost | localhost.localdomain | 127.0.0.1 | ::1) return 0 ;;
  esac
  for n in "$(hostname 2>/dev/null)" "$(hostname -f 2>/dev/null)" "$(hostname -s 2>/dev/null)" \
    "$(uname -n)"; do
    [ -n "$n" ] && [ "$h" = "$n" ] && return 0
  done
  return 1
}

# sluice_pid_alive PID: true when PID is a live (not zombie) process.
sluice_pid_alive() {
  local pid=$1 state
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  kill -0 "$pid" 2>/dev/null || {
    # kill -0 also fails with EPERM for another user's live process.
    [ -d "/proc/$pid" ] || ps -p "$pid" >/dev/null 2>&1 || return 1
  }
  if [ -r "/proc/$pid/stat" ]; then
    # Field 3 of /proc/PID/stat, after the parenthesised command name.
    state=$(sed -e 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  else
    state=$(ps -o stat= -p "$pid" 2>/dev/null)
  fi
  case "$state" in
    Z* | X* | x*) return 1 ;;
    '') [ -d "/proc/$pid" ] || ps -p "$pid" >/dev/null 2>&1 ;;
    *) return 0 ;;
  esac
}

# sluice_pid_is_daemon PID DAEMON: true when PID is alive and runs sluice-DAEMON (guards
# against a pid that the system has handed to another program since it was recorded).
sluice_pid_is_daemon() {
  local pid=$1 daemon=$2 args
  sluice_pid_alive "$pid" || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)
  else
    args=$(ps -o args= -p "$pid" 2>/dev/null)
  fi
  # An empty command line (unreadable) gives the benefit of the doubt.
  [ -z "$args" ] && return 0
  [[ "$args" == *"sluice-$daemon"* ]]
}

# sluice_port_in_use HOST PORT: true when something accepts TCP connections on HOST:PORT.
sluice_port_in_use() {
  local host=$1 port=$2
  if command -v timeout >/dev/null 2>&1; then
    # shellcheck disable=SC2016  # expanded by the inner shell
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
  else
    bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$host" "$port" 2>/dev/null
  fi
}

# sluice_port_owner PORT: a short description of the program listening on PORT, when ss can tell.
sluice_port_owner() {
  local port=$1
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n 1
}
