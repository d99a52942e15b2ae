#!/usr/bin/env bash
# baseline_test.sh PE_SYNTH SOURCE_DIR GOLDEN WORK_DIR: regenerates the default table set from its config
# and fails when the result differs from the checked-in schedules/ (generation is byte-deterministic) or
# when any certified bound is worse than in the frozen baseline GOLDEN.
set -uo pipefail
synth=$1 source=$2 golden=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
start=$(date +%s)
"$synth" generate --config "$source/schedules/pe_synth_config.json" --out "$work/tables" --threads 2 >"$work/generate.log" \
  || fail "generate: $(tail -3 "$work/generate.log")"
echo "regenerated the default set in $(( $(date +%s) - start )) s"
"$synth" diff "$golden" "$work/tables" >"$work/diff.log"
rc=$?
cat "$work/diff.log" | tail -20
[[ $rc -eq 0 ]] || fail "bounds worse than the frozen baseline $golden (see above)"
cmp "$work/tables/pe_schedules.json" "$source/schedules/pe_schedules.json" \
  || fail "schedules/pe_schedules.json is not what its config generates: regenerate it with pe-synth generate"
cmp "$work/tables/pe_schedules.hpp" "$source/schedules/pe_schedules.hpp" \
  || fail "schedules/pe_schedules.hpp is not what its config generates: regenerate it with pe-synth generate"
echo "ok: regenerated tables are identical to schedules/ and no bound is worse than the baseline"
