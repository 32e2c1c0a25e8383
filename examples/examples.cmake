# examples.cmake — build the C ABI example as C against the public header and
# libmailferry.so, so a change that breaks C callers breaks the build.
add_executable(capi_example ${CMAKE_CURRENT_LIST_DIR}/capi_example.c)
set_target_properties(capi_example PROPERTIES LINKER_LANGUAGE C C_STANDARD 11 C_EXTENSIONS OFF)
target_include_directories(capi_example PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(capi_example PRIVATE mailferry)
target_compile_options(capi_example PRIVATE -Wall -Wextra -Wpedantic -Werror)
