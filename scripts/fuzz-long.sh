#!/usr/bin/env bash
# fuzz-long.sh — the long fuzzing run: every target (or those named as arguments) for
# FUZZ_SECONDS each (default 3600, one CPU-hour), FUZZ_JOBS at a time (default 1), on a
# corpus kept between runs in build-fuzz/corpus-long/. Writes the figures to
# bench/results/fuzz-<date>.txt (FUZZ_RESULTS overrides; FUZZ_LABEL adds a note line):
# per target the seconds run, executions, exec/s, corpus size, coverage (cov: and ft: of
# libFuzzer's last stat line) and crashes with their input files in build-fuzz/artifacts/.
# Must never: change fuzz/corpus/ (the seeds), or stop at the first target that crashes.
# Exit 1 when any target crashed. See docs/FUZZING.md.
set -euo pipefail
source "$(dirname "$0")/fuzz-lib.sh"

seconds=${FUZZ_SECONDS:-3600}
parallel=${FUZZ_JOBS:-1}
results=${FUZZ_RESULTS:-$fuzz_top/bench/results/fuzz-$(date +%Y-%m-%d).txt}
logs=$fuzz_build/logs-long
selected=("$@")

fuzz_build_all
mkdir -p "$logs" "$(dirname "$results")"

wanted() { # NAME: true when no target was named or this one was
  ((${#selected[@]} == 0)) && return 0
  local s
  for s in "${selected[@]}"; do [ "$s" = "$1" ] && return 0; done
  return 1
}

run_one() { # NAME:MAX_LEN
  local name=${1%%:*} max_len=${1##*:} t0 rc=0
  t0=$(date +%s)
  fuzz_run "$name" "$max_len" "$seconds" "$fuzz_build/corpus-long/$name" "$logs/$name.log" || rc=$?
  echo "$rc $(($(date +%s) - t0))" >"$logs/$name.status"
}

run=()
for t in "${fuzz_targets[@]}"; do
  wanted "${t%%:*}" || continue
  run+=("$t")
  while (($(jobs -rp | wc -l) >= parallel)); do
    wait -n || true
  done
  run_one "$t" &
done
wait

# One row per target from its log: libFuzzer's final stats and its last "#N … cov:" line.
row() { # NAME
  local name=$1 log=$logs/$1.log rc secs execs eps last cov ft corpus crash
  read -r rc secs <"$logs/$name.status"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$last")
  corpus=$(find "$fuzz_build/corpus-long/$name" -type f | wc -l)
  crash=none
  if [ "$rc" != 0 ]; then
    crash="$(fuzz_artifact "$log")"
    crash=${crash:-"exit $rc, see $log"}
  fi
  printf '%-20s %7s %12s %8s %7s %6s %7s  %s\n' "$name" "$secs" "${execs:-?}" "${eps:-?}" \
    "$corpus" "${cov:-?}" "${ft:-?}" "$crash"
}

{
  echo "# fuzz-long.sh $(date -u +%Y-%m-%dT%H:%MZ) on $(hostname): FUZZ_SECONDS=$seconds per target," \
    "$parallel at a time, $(nproc) CPUs"
  echo "# commit $(git -C "$fuzz_top" rev-parse --short HEAD 2>/dev/null || echo unknown);" \
    "clang $(clang --version | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -n 1)," \
    "-fsanitize=fuzzer,address,undefined"
  if [ -n "${FUZZ_LABEL:-}" ]; then echo "# $FUZZ_LABEL"; fi
  echo "# cov/ft: libFuzzer's last stat line; corpus: files in build-fuzz/corpus-long/<target>"
  printf '%-20s %7s %12s %8s %7s %6s %7s  %s\n' target seconds executions exec/s corpus cov ft crashes
  for t in "${run[@]}"; do row "${t%%:*}"; done
} >"$results"
cat "$results"
! grep -qvE '^#|  none$|^target ' "$results"
