# copier/copier.cmake — the mailbox copier: mf_copier (the library the worker links) and
# the program mailferry-copy (main_copy.cpp, a thin CLI over it).
file(GLOB mf_copier_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/*.cpp)
list(FILTER mf_copier_srcs EXCLUDE REGEX "/main_[a-z_]*\\.cpp$")
add_library(mf_copier STATIC ${mf_copier_srcs})
target_include_directories(mf_copier PUBLIC ${PROJECT_SOURCE_DIR}/include
                                     PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/plugin)
target_compile_options(mf_copier PRIVATE ${MAILFERRY_WARNINGS})
target_link_libraries(mf_copier PUBLIC mf_base
                      PRIVATE OpenSSL::SSL OpenSSL::Crypto SQLite::SQLite3
                              nlohmann_json::nlohmann_json Threads::Threads)

if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/main_copy.cpp)
  add_executable(mailferry-copy ${CMAKE_CURRENT_LIST_DIR}/main_copy.cpp)
  target_include_directories(mailferry-copy PRIVATE ${CMAKE_CURRENT_LIST_DIR} ${PROJECT_SOURCE_DIR}/plugin)
  target_compile_options(mailferry-copy PRIVATE ${MAILFERRY_WARNINGS})
  target_link_libraries(mailferry-copy PRIVATE mf_copier CLI11::CLI11 nlohmann_json::nlohmann_json)
  install(TARGETS mailferry-copy RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()

# mailferry-courier-to-dovecot (main_convert.cpp): Courier's Maildir metadata as Dovecot's.
if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/main_convert.cpp)
  add_executable(mailferry-courier-to-dovecot ${CMAKE_CURRENT_LIST_DIR}/main_convert.cpp)
  target_include_directories(mailferry-courier-to-dovecot PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_compile_options(mailferry-courier-to-dovecot PRIVATE ${MAILFERRY_WARNINGS})
  target_link_libraries(mailferry-courier-to-dovecot PRIVATE mf_copier CLI11::CLI11)
  install(TARGETS mailferry-courier-to-dovecot RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
