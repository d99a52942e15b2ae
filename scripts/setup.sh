#!/usr/bin/env bash
# Installs the Debian packages the project needs (only the missing ones, so re-running is cheap),
# configures and builds the default preset, then makes the project's virtual environment (.venv) with
# the Python package `pe` built against that build. Run as root on a fresh Debian machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# clang and libclang-rt-dev: libFuzzer (-fsanitize=fuzzer) for the fuzz tests; the main build stays g++.
packages=(cmake ninja-build g++ make git
          libboost-dev libnlopt-cxx-dev nlohmann-json3-dev libcli11-dev
          libopenblas-dev liblapacke-dev libgtest-dev libgmock-dev libbenchmark-dev
          clang libclang-rt-dev)
# A python3 with venv and headers for the Python package: the one on PATH when it has them, else Debian's.
if ! python3 -c 'import ensurepip, os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
  packages+=(python3 python3-venv python3-dev)
fi
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

# The Python package, into .venv: NumPy, scikit-learn (the examples' data set), pytest and the build
# tools come from PyPI once; the package links the runtime this build just compiled (an install into
# build/pe-prefix, then only the nanobind module is compiled, in the persistent build/python).
venv_python=.venv/bin/python
[[ -x $venv_python ]] || python3 -m venv .venv
if ! "$venv_python" -c 'import numpy, sklearn, pytest, scikit_build_core, nanobind' 2>/dev/null; then
  echo "setup: installing the Python packages into .venv"
  "$venv_python" -m pip install -q numpy scikit-learn pytest scikit-build-core nanobind
fi
cmake --install build/default --prefix build/pe-prefix >/dev/null
"$venv_python" -m pip install -q --no-build-isolation --no-deps . \
  -Ccmake.define.PE_PREBUILT_PREFIX="$PWD/build/pe-prefix"
