# bench/campaign — a whole campaign on loopback: the worker (IMAP target with and without a
# master user, Maildir target) against loops of mailferry-copy and doveadm backup.
# Links the test support library only to start Dovecot; it is not a test.
add_executable(campaign_bench
               ${CMAKE_CURRENT_LIST_DIR}/campaign/campaign_bench.cpp
               ${CMAKE_CURRENT_LIST_DIR}/campaign/campaign_worker.cpp
               ${CMAKE_CURRENT_LIST_DIR}/campaign/campaign_loops.cpp)
target_link_libraries(campaign_bench PRIVATE mailferry_core mf_copier mf_testsupport
                      nlohmann_json::nlohmann_json fmt::fmt)
target_compile_options(campaign_bench PRIVATE ${MAILFERRY_WARNINGS})
add_dependencies(campaign_bench mailferry-checkpassword mailferry-cli mailferry-copy)
