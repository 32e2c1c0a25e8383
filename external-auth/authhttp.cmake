# authhttp.cmake — mf_authhttp: `mailferry auth-http`, nginx's mail auth_http service
# (authhttp_*.cpp): the protocol (no engine, fuzzed by fuzz/fuzz_authhttp_request.cpp), the
# engine side and the Beast/Asio server. tests/authhttp_*_test.cpp link it by name; the
# admin CLI links it for the command (deferred: that target is defined after this file).
file(GLOB mf_authhttp_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/authhttp_*.cpp)
add_library(mf_authhttp STATIC ${mf_authhttp_srcs})
target_include_directories(mf_authhttp PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(mf_authhttp PUBLIC mailferry_core Boost::headers Threads::Threads)
target_compile_options(mf_authhttp PRIVATE ${MAILFERRY_WARNINGS})
cmake_language(DEFER CALL target_link_libraries mailferry-cli PRIVATE mf_authhttp)
