# bench/login — first-login and local-login latency against a real old Dovecot.
# Links the test support library only to start Dovecot; it is not a test.
add_executable(login_bench ${CMAKE_CURRENT_SOURCE_DIR}/login/login_bench.cpp)
target_link_libraries(login_bench PRIVATE mailferry_core mf_testsupport OpenSSL::SSL
                      nlohmann_json::nlohmann_json fmt::fmt)
target_compile_options(login_bench PRIVATE ${MAILFERRY_WARNINGS})
target_include_directories(login_bench PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
add_dependencies(login_bench mailferry-checkpassword pam_mailferry mailferry_lua)
