# Tests named cli_*_test run the built `mailferry` program: build it first.
get_property(mf_test_targets DIRECTORY PROPERTY BUILDSYSTEM_TARGETS)
foreach(t IN LISTS mf_test_targets)
  if(t MATCHES "^cli_.*_test$")
    add_dependencies(${t} mailferry-cli)
  endif()
endforeach()
# cli_status_test runs a whole migration (migration_world.hpp): the new server's login
# helper too, and real servers.
if(TARGET cli_status_test)
  add_dependencies(cli_status_test mailferry-checkpassword)
  set_tests_properties(cli_status_test PROPERTIES LABELS servers)
endif()
