#!/usr/bin/env bash
# fuzz-report.sh — prints what the last scripts/fuzz-smoke.sh run found, one line per
# target, and for a failure its log, input and the command that replays it.
# Exit: 0 every target ok, 1 a target failed, 77 no smoke run to report on (ctest: skipped).
# ctest runs it as the test fuzz_smoke_report (tests/fuzz.cmake), so a fuzzing failure
# shows in ctest's summary at the end of `./setup.sh test`, not only above the build log.
# Must never: run a fuzzer or change anything.
set -euo pipefail
source "$(dirname "$0")/fuzz-lib.sh"

logs=$fuzz_build/logs-smoke
if [ ! -f "$logs/done" ]; then
  echo "fuzz-report: no finished smoke run in $logs (scripts/fuzz-smoke.sh makes one)"
  exit 77
fi

failed=0
for t in "${fuzz_targets[@]}"; do
  name=${t%%:*}
  stat=$(grep -E '^#[0-9]+' "$logs/$name.log" 2>/dev/null | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  if [ "$(cat "$logs/$name.status" 2>/dev/null)" = ok ]; then
    printf 'fuzz-smoke: %-22s ok    %s\n' "$name" "$stat"
    continue
  fi
  failed=1
  art=$(fuzz_artifact "$logs/$name.log" 2>/dev/null || true)
  printf 'fuzz-smoke: %-22s FAIL  %s\n' "$name" \
    "$(grep -m1 -E 'ERROR: |SUMMARY: ' "$logs/$name.log" 2>/dev/null || echo 'no status: the run did not finish')"
  echo "  log:        $logs/$name.log"
  if [ -n "$art" ]; then
    echo "  input:      $art ($(wc -c <"$art") bytes, base64 below)"
    base64 -w 76 "$art" | head -n 60 | sed 's/^/    /'
    echo "  reproduce:  $fuzz_build/fuzz/fuzz_$name $art"
  fi
  # The fuzzer's own account of the failure: the stack is what a fix needs.
  grep -E -A 25 'ERROR: |runtime error' "$logs/$name.log" 2>/dev/null | head -n 40 | sed 's/^/    | /' || true
done
cat "$logs/done"
exit "$failed"
