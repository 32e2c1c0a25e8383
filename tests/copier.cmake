# tests/copier.cmake — the copier's tests see its private headers (parser, client, state)
# and the ones that run mailferry-copy need it built first.
file(GLOB copier_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/copier_*_test.cpp)
foreach(src IN LISTS copier_tests)
  get_filename_component(name ${src} NAME_WE)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/copier)
  target_link_libraries(${name} PRIVATE OpenSSL::SSL OpenSSL::Crypto SQLite::SQLite3
                                        nlohmann_json::nlohmann_json)
  if(TARGET mailferry-copy)
    add_dependencies(${name} mailferry-copy mailferry-courier-to-dovecot)
  endif()
endforeach()
