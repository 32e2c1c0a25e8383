# Tests named worker_*_test run the built `mailferry` (worker, keys) and the new server's
# login helper mailferry-checkpassword: build them first.
get_property(mf_worker_test_targets DIRECTORY PROPERTY BUILDSYSTEM_TARGETS)
foreach(t IN LISTS mf_worker_test_targets)
  if(t MATCHES "^worker_.*_test$")
    add_dependencies(${t} mailferry-cli mailferry-checkpassword)
    set_tests_properties(${t} PROPERTIES LABELS servers)
  endif()
endforeach()
