#!/usr/bin/env bash
# fuzz-smoke.sh — CI's short fuzzing pass: builds build-fuzz/ (clang, libFuzzer, ASan,
# UBSan) and runs every fuzz target for FUZZ_SECONDS (default 30), two at a time, from the
# seed corpora in fuzz/corpus/. Fails when any target finds a crash, a leak, a timeout or
# an out-of-memory input, and prints its input's path and the command that replays it.
# Must never: change fuzz/corpus/ (what a run finds stays in build-fuzz/corpus-smoke/) or
# run as a ctest test (setup.sh test calls it before ctest). See docs/FUZZING.md.
set -euo pipefail
source "$(dirname "$0")/fuzz-lib.sh"

seconds=${FUZZ_SECONDS:-30}
parallel=${FUZZ_JOBS:-2}
start=$(date +%s)
fuzz_build_all
built=$(date +%s)
logs=$fuzz_build/logs-smoke
rm -rf "$logs"
mkdir -p "$logs"

run_one() { # NAME:MAX_LEN
  local name=${1%%:*} max_len=${1##*:}
  if fuzz_run "$name" "$max_len" "$seconds" "$fuzz_build/corpus-smoke/$name" "$logs/$name.log"; then
    echo ok >"$logs/$name.status"
  else
    echo fail >"$logs/$name.status"
  fi
}

for t in "${fuzz_targets[@]}"; do
  while (($(jobs -rp | wc -l) >= parallel)); do
    wait -n || true
  done
  run_one "$t" &
done
wait

failed=0
for t in "${fuzz_targets[@]}"; do
  name=${t%%:*}
  stat=$(grep -E '^#[0-9]+' "$logs/$name.log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
  if [ "$(cat "$logs/$name.status")" = ok ]; then
    printf 'fuzz-smoke: %-22s ok    %s\n' "$name" "$stat"
    continue
  fi
  failed=1
  art=$(fuzz_artifact "$logs/$name.log")
  printf 'fuzz-smoke: %-22s FAIL  %s\n' "$name" "$(grep -m1 -E 'ERROR: |SUMMARY: ' "$logs/$name.log" || true)"
  echo "  log:        $logs/$name.log"
  if [ -n "$art" ]; then
    echo "  input:      $art"
    echo "  reproduce:  $fuzz_build/fuzz/fuzz_$name $art"
  fi
done
end=$(date +%s)
echo "fuzz-smoke: ${#fuzz_targets[@]} targets x ${seconds}s, $parallel at a time;" \
  "build $((built - start))s, fuzzing $((end - built))s"
exit "$failed"
