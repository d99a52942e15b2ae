#!/usr/bin/env bash
# Sets everything up, then runs the whole test suite: the C++ suite (ctest) and the Python package's
# (pytest). GPU tests, and Python tests for frameworks that are not installed, skip themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
ctest --preset default -j "$(nproc)" || status=$?
# pe-run is the C++ reference that the Python results must equal bit for bit.
PE_RUN=build/default/tools/pe-run/pe-run .venv/bin/python -m pytest -q python/tests || status=$?
exit "$status"
