#!/usr/bin/env bash
# Makes a certificate authority for one Sluice cluster and certificates signed by it, with
# openssl, for internal TLS (security.ssl.internal.*):
#
#   deploy/gen-certs.sh [--days N] DIR [NAME ...]
#
#   DIR/ca.pem, DIR/ca.key        the cluster's CA: security.ssl.internal.trust-cert is ca.pem.
#                                  ca.key signs more certificates later (run again with the same
#                                  DIR); keep it off the cluster's machines if you can.
#   DIR/internal.pem, .key         a certificate every daemon and CLI of the cluster may share
#                                  (security.ssl.internal.cert and .key), as Flink recommends for
#                                  internal connections.
#   DIR/NAME.pem, NAME.key         one more per NAME given (a host name, say), with NAME,
#                                  localhost and 127.0.0.1 in its subject alternative names.
#
# Keys are EC P-256, unencrypted, readable by their owner only. Existing files are kept: a CA is
# made only when DIR has none, a certificate only when its files are missing.
set -euo pipefail

usage() {
  echo "usage: deploy/gen-certs.sh [--days N] DIR [NAME ...]" >&2
  exit 1
}

days=825
while [ $# -gt 0 ]; do
  case "$1" in
    --days)
      [ $# -ge 2 ] || usage
      days="$2"
      shift 2
      ;;
    -h | --help) usage ;;
    -*)
      echo "gen-certs.sh: unknown option '$1'" >&2
      usage
      ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || usage
case "$days" in '' | *[!0-9]*) echo "gen-certs.sh: --days '$days' is not a number" >&2; exit 1 ;; esac
dir="$1"
shift
command -v openssl >/dev/null || { echo "gen-certs.sh: openssl is not installed" >&2; exit 1; }

# Names are checked before anything is made.
for name in "$@"; do
  case "$name" in
    '' | *[!A-Za-z0-9._:-]*)
      echo "gen-certs.sh: '$name' is not a host name or address" >&2
      exit 1
      ;;
  esac
done

umask 077
mkdir -p "$dir"

if [ -f "$dir/ca.key" ] && [ ! -f "$dir/ca.pem" ]; then
  # Never a new key over the old one: certificates it signed would stop verifying.
  echo "gen-certs.sh: $dir/ca.key exists without ca.pem; restore ca.pem or move ca.key away" >&2
  exit 1
fi
if [ ! -f "$dir/ca.pem" ]; then
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$dir/ca.key" -sha256 -days "$days" -subj "/CN=Sluice cluster CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$dir/ca.pem"
  chmod 644 "$dir/ca.pem"
  echo "made the CA: $dir/ca.pem (key $dir/ca.key)"
fi

# Signs a certificate for NAME with the CA.
issue() {
  local name="$1"
  if [ -f "$dir/$name.pem" ] && [ -f "$dir/$name.key" ] &&
    openssl verify -CAfile "$dir/ca.pem" "$dir/$name.pem" >/dev/null 2>&1; then
    echo "kept $dir/$name.pem"
    return
  fi
  local san="DNS:$name"
  case "$name" in
    *:* | [0-9]*.[0-9]*.[0-9]*.[0-9]*) san="IP:$name" ;;  # an address, not a name
  esac
  local ext
  ext="$(mktemp)"
  trap 'rm -f "$ext"' RETURN
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth,clientAuth" \
    "subjectAltName=$san,DNS:localhost,IP:127.0.0.1,IP:::1" >"$ext"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null
  openssl req -new -key "$dir/$name.key" -subj "/CN=$name" -out "$dir/$name.csr"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -days "$days" -sha256 -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null
  rm -f "$dir/$name.csr"
  chmod 644 "$dir/$name.pem"
  echo "made $dir/$name.pem (key $dir/$name.key)"
}

issue internal
for name in "$@"; do
  issue "$name"
done

cat <<EOF

Internal TLS for every daemon and CLI of the cluster (config.yaml):
  security.ssl.internal.enabled: true
  security.ssl.internal.key: $(cd "$dir" && pwd)/internal.key
  security.ssl.internal.cert: $(cd "$dir" && pwd)/internal.pem
  security.ssl.internal.trust-cert: $(cd "$dir" && pwd)/ca.pem
EOF
