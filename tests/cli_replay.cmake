# cli_replay.cmake — the replay and dry-run tests run real Dovecots (migration_world.hpp:
# the new server authenticates through mailferry-checkpassword) and the `mailferry`
# program: build those first, and label the tests "servers".
foreach(t IN ITEMS cli_replay_test cli_dry_run_test)
  if(TARGET ${t})
    add_dependencies(${t} mailferry-cli mailferry-checkpassword)
    set_tests_properties(${t} PROPERTIES LABELS servers)
  endif()
endforeach()
