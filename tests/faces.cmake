# faces.cmake — what the faces' tests need besides mf_faces + mf_testsupport: the
# programs they run, the engine (to look into the store), libpam, the ASan runtime.

# Tests that run a face program need it built first, and the store to check results.
foreach(pair IN ITEMS "faces_checkpassword_test:mailferry-checkpassword"
                      "faces_cgpauth_test:mailferry-cgpauth"
                      "faces_pam_test:pam_mailferry"
                      "faces_examples_test:capi_example")
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
  if(MAILFERRY_SANITIZE)
    # An ASan-built pam_mailferry.so needs the ASan runtime preloaded into pamtester.
    execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
                    OUTPUT_VARIABLE mf_asan_runtime OUTPUT_STRIP_TRAILING_WHITESPACE)
    target_compile_definitions(faces_pam_test PRIVATE MF_ASAN_RUNTIME="${mf_asan_runtime}")
  endif()
endif()
