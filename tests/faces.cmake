# faces.cmake — what the faces' tests need besides mf_faces + mf_testsupport: the
# programs they run, the engine (to look into the store), libpam, liblua, the ASan runtime.

# Tests that run a face program need it built first, and the store to check results.
foreach(pair IN ITEMS "faces_checkpassword_test:mailferry-checkpassword"
                      "faces_cgpauth_test:mailferry-cgpauth"
                      "faces_pam_test:pam_mailferry"
                      "faces_examples_test:capi_example"
                      "faces_lua_test:mailferry_lua")
  string(REPLACE ":" ";" pair "${pair}")
  list(GET pair 0 test)
  list(GET pair 1 prog)
  if(TARGET ${test} AND TARGET ${prog})
    add_dependencies(${test} ${prog})
    target_link_libraries(${test} PRIVATE mailferry_core)
    set_tests_properties(${test} PROPERTIES LABELS "servers")
  endif()
endforeach()

if(TARGET faces_pam_test)
  target_link_libraries(faces_pam_test PRIVATE ${PAM_LIBRARY})
endif()
# faces_lua_test runs the module in a Lua state of its own, too.
if(TARGET faces_lua_test)
  target_link_libraries(faces_lua_test PRIVATE PkgConfig::LUA)
endif()
if(MAILFERRY_SANITIZE)
  # An ASan-built module (pam_mailferry.so, mailferry.so) needs the ASan runtime preloaded
  # into the uninstrumented program that loads it: pamtester, Dovecot.
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                  OUTPUT_VARIABLE mf_asan_runtime OUTPUT_STRIP_TRAILING_WHITESPACE)
  foreach(test faces_pam_test faces_lua_test)
    if(TARGET ${test})
      target_compile_definitions(${test} PRIVATE MF_ASAN_RUNTIME="${mf_asan_runtime}")
    endif()
  endforeach()
endif()
