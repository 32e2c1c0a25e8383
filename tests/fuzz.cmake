# fuzz_smoke_report: the verdict of the last scripts/fuzz-smoke.sh run (setup.sh test runs
# it before the build), so a fuzzing failure is counted in ctest's summary with its input
# and stack. Skipped (77) when no smoke run has finished, e.g. a plain developer build.
add_test(NAME fuzz_smoke_report COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/fuzz-report.sh)
set_tests_properties(fuzz_smoke_report PROPERTIES SKIP_RETURN_CODE 77 LABELS fuzz TIMEOUT 60)
