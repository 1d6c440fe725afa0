#!/usr/bin/env bash
# Installs what Sluice needs to build and run, from Debian's packages only.
# Idempotent: packages already present are left alone and apt is not called at all.
set -euo pipefail

packages=(
  g++ clang clang-format libclang-rt-14-dev cmake ninja-build ccache pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libyaml-cpp-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  nlohmann-json3-dev libcli11-dev libcpp-httplib-dev libssl-dev
  # The REST server: Boost.Beast over Asio (header-only).
  libboost-dev
  librocksdb-dev
  # Kafka: the client library (connectors/kafka only) and kcat, an independent client for the
  # quickstart and the tests.
  librdkafka-dev kcat
  # Commands of the deploy scripts and tests that a minimal Debian (debootstrap minbase) lacks:
  # ps (procps), ss (iproute2), python3 (tests/integration/scripts_test.sh), hostname, and nc
  # for the socket word count example.
  procps iproute2 python3 hostname netcat-openbsd
  # The Prometheus Python client's parser, which tests/unit/metrics_test.cc reads the /metrics
  # text back with (it calls /usr/bin/python3, Debian's, which this package installs into).
  python3-prometheus-client
  # The dashboard's browser test (tests/integration/dashboard_test.cc): Node.js and npm, which
  # install its playwright-core (tests/browser/package-lock.json), and the browser it drives.
  nodejs npm chromium
  # High availability: ZooKeeper's C client (the HA module only, jobmanager/ha/) and Debian's
  # ZooKeeper server, which deploy/zookeeper.sh and the HA tests run (it needs a JVM, which the
  # package pulls in).
  libzookeeper-mt-dev zookeeper
)

# A package whose command another package already provides is not missing: a Node.js from
# elsewhere (one that bundles npm and conflicts with Debian's npm package) stays as it is.
declare -A provided_by_command=([nodejs]=node [npm]=npm [chromium]=chromium)

missing=()
for p in "${packages[@]}"; do
  if [ -n "${provided_by_command[$p]:-}" ] && command -v "${provided_by_command[$p]}" >/dev/null 2>&1; then
    continue
  fi
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
