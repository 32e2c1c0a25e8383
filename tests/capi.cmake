# The C ABI test goes through libmailferry.so only.
if(TARGET capi_abi_test)
  target_link_libraries(capi_abi_test PRIVATE mailferry)
endif()
