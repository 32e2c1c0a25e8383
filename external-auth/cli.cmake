# cli.cmake — `mailferry`, the admin CLI: cli_main.cpp plus one cli_<command>.cpp per
# command (the table is in cli_command.hpp). The target is mailferry-cli because
# "mailferry" is the shared library; the program is still called mailferry.
file(GLOB mf_cli_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/cli_*.cpp)
add_executable(mailferry-cli ${mf_cli_srcs})
set_target_properties(mailferry-cli PROPERTIES
  OUTPUT_NAME mailferry
  RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/external-auth)
target_include_directories(mailferry-cli PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(mailferry-cli PRIVATE mailferry_core CLI11::CLI11 nlohmann_json::nlohmann_json)
target_compile_options(mailferry-cli PRIVATE ${MAILFERRY_WARNINGS})
target_compile_definitions(mailferry-cli PRIVATE MAILFERRY_VERSION="${PROJECT_VERSION}")
install(TARGETS mailferry-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
