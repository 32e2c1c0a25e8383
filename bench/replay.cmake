# bench/replay — `mailferry replay` against a real old Dovecot: is the rate bounded by the
# provider's max_concurrent? (not a test; run by hand: build-rel/bench/replay_bench).
# Runs this build's `mailferry`; uses the test support's Dovecot and IMAP client.
if(TARGET mf_testsupport)
  add_executable(replay_bench ${CMAKE_CURRENT_LIST_DIR}/replay/replay_bench.cpp)
  target_link_libraries(replay_bench PRIVATE mailferry_core mf_testsupport
                        nlohmann_json::nlohmann_json fmt::fmt)
  target_compile_options(replay_bench PRIVATE ${MAILFERRY_WARNINGS})
  add_dependencies(replay_bench mailferry-cli)
endif()
