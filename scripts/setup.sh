#!/usr/bin/env bash
# Installs the Debian packages the project needs (only the missing ones, so re-running is cheap),
# then configures and builds the default preset. Run as root on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# clang and libclang-rt-dev: libFuzzer (-fsanitize=fuzzer) for the fuzz tests; the main build stays g++.
packages=(cmake ninja-build g++ make git
          libboost-dev libnlopt-cxx-dev nlohmann-json3-dev libcli11-dev
          libopenblas-dev liblapacke-dev libgtest-dev libgmock-dev libbenchmark-dev
          clang libclang-rt-dev)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
cmake --preset default >/dev/null
cmake --build --preset default -j "$jobs"
