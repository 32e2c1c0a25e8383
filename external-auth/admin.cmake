# admin.cmake — mf_cli: the admin commands' logic (external-auth/admin_*.cpp), a library
# so tests/cli_*_test.cpp can unit-test parsers without running the program. The
# `mailferry` program (cli.cmake, included after this file) links it; the link is
# deferred to the end of this directory because that target does not exist yet here.
# zlib reads gzip'd log rotations (never-logged-in); GLOBAL so the tests linking mf_cli
# see the imported target too. Debian: zlib1g-dev. SQLite reads the copier's per-account
# state files read-only (status: copy progress). libcurl: dry-run's provisioner probe.
find_package(ZLIB REQUIRED GLOBAL)
file(GLOB mf_admin_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/admin_*.cpp)
add_library(mf_cli STATIC ${mf_admin_srcs})
# plugin/ privately for spool_io.hpp's encode_name (the copier state file's name, status).
target_include_directories(mf_cli PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}
                                  PRIVATE ${PROJECT_SOURCE_DIR}/plugin)
target_link_libraries(mf_cli PUBLIC mailferry_core mf_import CLI11::CLI11
                      nlohmann_json::nlohmann_json
                      PRIVATE OpenSSL::SSL OpenSSL::Crypto ZLIB::ZLIB SQLite::SQLite3
                              CURL::libcurl)
target_compile_options(mf_cli PRIVATE ${MAILFERRY_WARNINGS})
cmake_language(DEFER CALL target_link_libraries mailferry-cli PRIVATE mf_cli)
