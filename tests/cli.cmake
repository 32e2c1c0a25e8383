# Tests named cli_*_test run the built `mailferry` program: build it first.
get_property(mf_test_targets DIRECTORY PROPERTY BUILDSYSTEM_TARGETS)
foreach(t IN LISTS mf_test_targets)
  if(t MATCHES "^cli_.*_test$")
    add_dependencies(${t} mailferry-cli)
  endif()
endforeach()
