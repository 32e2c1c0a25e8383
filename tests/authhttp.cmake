# authhttp.cmake — the auth-http tests run the built `mailferry` program (auth-http) and
# real servers (Dovecot, nginx).
foreach(t authhttp_nginx_test authhttp_requests_test)
  if(TARGET ${t})
    add_dependencies(${t} mailferry-cli)
    set_tests_properties(${t} PROPERTIES LABELS servers)
  endif()
endforeach()
