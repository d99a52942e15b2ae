#!/usr/bin/env bash
# baseline_test.sh PE_SYNTH CONFIG CHECKED_IN_DIR GOLDEN WORK_DIR: regenerates the table set of CONFIG and
# fails when the result differs from the checked-in pair in CHECKED_IN_DIR (generation is
# byte-deterministic) or when any certified bound is worse than in the frozen baseline GOLDEN.
set -uo pipefail
synth=$1 config=$2 checked_in=$3 golden=$4 work=$5
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
start=$(date +%s)
"$synth" generate --config "$config" --out "$work/tables" --threads 2 >"$work/generate.log" \
  || fail "generate: $(tail -3 "$work/generate.log")"
echo "regenerated $config in $(( $(date +%s) - start )) s"
"$synth" diff "$golden" "$work/tables" >"$work/diff.log"
rc=$?
tail -20 "$work/diff.log"
[[ $rc -eq 0 ]] || fail "bounds worse than the frozen baseline $golden (see above)"
for file in pe_schedules.json pe_schedules.hpp; do
  cmp "$work/tables/$file" "$checked_in/$file" \
    || fail "$checked_in/$file is not what $config generates: regenerate it with pe-synth generate"
done
echo "ok: the regenerated tables are identical to $checked_in and no bound is worse than the baseline"
