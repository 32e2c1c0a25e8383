#!/usr/bin/env bash
# check-format.sh — fails when a C or C++ file differs from the repo's .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -- '*.cpp' '*.hpp' '*.c' '*.h' 2>/dev/null || true)
((${#files[@]})) || exit 0
clang-format --dry-run --Werror "${files[@]}"
echo "check-format: ${#files[@]} files clean"
