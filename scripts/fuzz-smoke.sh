#!/usr/bin/env bash
# fuzz-smoke.sh — CI's short fuzzing pass: builds build-fuzz/ (clang, libFuzzer, ASan,
# UBSan) and runs every fuzz target for FUZZ_SECONDS (default 30), two at a time, from the
# seed corpora in fuzz/corpus/. Fails when any target finds a crash, a leak, a timeout or
# an out-of-memory input, and prints its input's path and the command that replays it.
# Must never: change fuzz/corpus/ (what a run finds stays in build-fuzz/corpus-smoke/) or
# run as a ctest test (setup.sh test calls it before ctest; ctest's fuzz_smoke_report only
# reports on it, through scripts/fuzz-report.sh). See docs/FUZZING.md.
set -euo pipefail
source "$(dirname "$0")/fuzz-lib.sh"

seconds=${FUZZ_SECONDS:-30}
parallel=${FUZZ_JOBS:-2}
start=$(date +%s)
# Old results go first, so a failed build cannot leave an earlier run's report behind.
logs=$fuzz_build/logs-smoke
rm -rf "$logs"
mkdir -p "$logs"
if ! fuzz_build_all; then
  echo "fuzz-smoke: the fuzz targets did not build (log: $fuzz_build/fuzz-build.log)" >"$logs/done"
  exec "$(dirname "$0")/fuzz-report.sh"
fi
built=$(date +%s)

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

end=$(date +%s)
echo "fuzz-smoke: ${#fuzz_targets[@]} targets x ${seconds}s, $parallel at a time;" \
  "build $((built - start))s, fuzzing $((end - built))s" >"$logs/done"
exec "$(dirname "$0")/fuzz-report.sh"
