# bench/copy.cmake — the copy benchmark's ceiling program (bench/copy/raw_copy.cpp).
# The benchmark itself is bench/copy/run.py; it is not a test and not run by ctest.
if(TARGET mf_copier)
  add_executable(mf-bench-raw-copy ${CMAKE_CURRENT_LIST_DIR}/copy/raw_copy.cpp)
  target_include_directories(mf-bench-raw-copy PRIVATE ${PROJECT_SOURCE_DIR}/copier)
  target_compile_options(mf-bench-raw-copy PRIVATE ${MAILFERRY_WARNINGS})
  target_link_libraries(mf-bench-raw-copy PRIVATE mf_copier)
endif()
