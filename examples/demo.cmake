# mailferry-demo: the migration story on loopback (./setup.sh demo runs it).
add_executable(mailferry-demo ${CMAKE_CURRENT_LIST_DIR}/demo/demo.cpp)
target_link_libraries(mailferry-demo PRIVATE mailferry_core mf_copier mf_testsupport)
target_compile_options(mailferry-demo PRIVATE ${MAILFERRY_WARNINGS})
add_dependencies(mailferry-demo mailferry-checkpassword mailferry-cli)
