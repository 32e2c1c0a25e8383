# faces_harden.cmake — faces_harden_test runs every program that holds a password.
if(TARGET faces_harden_test)
  foreach(prog mailferry-checkpassword mailferry-cgpauth mailferry-cli mailferry-copy)
    if(TARGET ${prog})
      add_dependencies(faces_harden_test ${prog})
    endif()
  endforeach()
endif()
