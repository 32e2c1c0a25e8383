# bench/login_mailbox.cmake — first-login latency with a 10 MB and a 1 GB mailbox behind
# the account, with and without the background copy configured (not a test; run by hand:
# build-release/bench/first_login_mailbox_bench). Uses the worker tests' world
# (tests/support/migration_world.hpp) and this build's mailferry and mailferry-checkpassword.
if(TARGET mf_copier AND TARGET mf_testsupport)
  add_executable(first_login_mailbox_bench
                 ${CMAKE_CURRENT_LIST_DIR}/login/first_login_mailbox_bench.cpp)
  target_link_libraries(first_login_mailbox_bench PRIVATE mailferry_core mf_copier
                        mf_testsupport nlohmann_json::nlohmann_json fmt::fmt)
  target_compile_options(first_login_mailbox_bench PRIVATE ${MAILFERRY_WARNINGS})
  target_include_directories(first_login_mailbox_bench PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  add_dependencies(first_login_mailbox_bench mailferry-cli mailferry-checkpassword)
endif()
