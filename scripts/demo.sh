#!/usr/bin/env bash
# The main job: set everything up, synthesise the default schedule tables (printing their summary),
# check them, then run the runtime on a built-in example with the freshly generated tables, and the
# Python package on scikit-learn's digits (Shampoo with exact roots and with pe's roots).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=build/default
out="$build/demo-schedules"
"$build/tools/pe-synth/pe-synth" generate --config schedules/pe_synth_config.json --out "$out"
"$build/tools/pe-synth/pe-synth" verify "$out"
if cmp -s "$out/pe_schedules.json" schedules/pe_schedules.json; then
  echo "demo: the regenerated tables are byte-identical to the checked-in schedules/"
else
  echo "demo: note: the regenerated tables differ from the checked-in schedules/ (run pe-synth diff to compare)"
fi
"$build/tools/pe-run/pe-run" demo --schedules "$out/pe_schedules.json"
.venv/bin/python examples/python/shampoo_numpy.py
