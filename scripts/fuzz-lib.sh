# fuzz-lib.sh — what scripts/fuzz-smoke.sh and scripts/fuzz-long.sh share: the target list
# with each target's -max_len, building build-fuzz/, and running one target. Sourced, not
# run. Must never: write outside build-fuzz/ (and bench/results/, by fuzz-long.sh), or
# touch the seed corpora in fuzz/corpus/ (libFuzzer writes into a copy).

fuzz_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fuzz_build=${FUZZ_BUILD_DIR:-$fuzz_top/build-fuzz}

# target:max_len — the largest input worth trying: a little over the biggest thing the
# reader accepts in one go (fd 3 is 512 bytes, a CGP line 4096), else a few KB, enough for
# several responses, lines or messages.
fuzz_targets=(
  imap_response:4096 pop3_reply:4096 checkpassword_input:600 cgpauth_request:4200
  pam_input:512 config:4096 import_passwd_file:4096 import_communigate:4096
  import_modoboa:4096 import_fields:2048 mbox_from_date:256 mbox_split:4096
  maildir_name:1024 dovecot_uidlist:2048 policy_request:8192 socketmap_request:12000 authhttp_request:17000
)

# Configures (first time) and builds the fuzz targets only.
fuzz_build_all() {
  if [ ! -f "$fuzz_build/CMakeCache.txt" ]; then
    CC=clang CXX=clang++ cmake -S "$fuzz_top" -B "$fuzz_build" -DMAILFERRY_FUZZ=ON \
      -DMAILFERRY_TESTS=OFF -DMAILFERRY_BENCH=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  cmake --build "$fuzz_build" --target fuzzers -j"${FUZZ_BUILD_JOBS:-2}" >"$fuzz_build/fuzz-build.log" 2>&1 || {
    tail -n 40 "$fuzz_build/fuzz-build.log"
    echo "fuzz: build failed (log: $fuzz_build/fuzz-build.log)" >&2
    return 1
  }
}

# fuzz_run NAME MAX_LEN SECONDS CORPUS_DIR LOG — runs one target; returns its exit code
# (0: nothing found). Crash inputs land in build-fuzz/artifacts/NAME-<kind>-<sha1>.
fuzz_run() {
  local name=$1 max_len=$2 seconds=$3 corpus=$4 log=$5
  local extra=()
  if [ -f "$fuzz_top/fuzz/dict/${name%%_*}.dict" ]; then
    extra+=(-dict="$fuzz_top/fuzz/dict/${name%%_*}.dict")
  fi
  mkdir -p "$corpus" "$fuzz_build/artifacts"
  # Seeds are read from fuzz/corpus/NAME; new inputs go to CORPUS_DIR only.
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$fuzz_build/fuzz/fuzz_$name" -max_total_time="$seconds" -max_len="$max_len" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$fuzz_build/artifacts/$name-" "${extra[@]}" \
    "$corpus" "$fuzz_top/fuzz/corpus/$name" >"$log" 2>&1
}

# The artifact a failed run wrote (from its log), for the report.
fuzz_artifact() {
  sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$1" | tail -n 1
}
