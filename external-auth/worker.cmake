# worker.cmake — mf_worker: `mailferry worker` and the key commands' helpers
# (worker*.cpp). Links the engine (store, config, spool) and the copier library; the
# admin CLI links it for `mailferry worker` and `mailferry keys`. tests/worker_*_test.cpp
# link it by name.
file(GLOB mf_worker_srcs CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/worker*.cpp)
add_library(mf_worker STATIC ${mf_worker_srcs})
target_include_directories(mf_worker PUBLIC ${CMAKE_CURRENT_LIST_DIR}
                                     PRIVATE ${PROJECT_SOURCE_DIR}/plugin)
target_link_libraries(mf_worker PUBLIC mailferry_core mf_copier)
target_compile_options(mf_worker PRIVATE ${MAILFERRY_WARNINGS})

# Deferred to the end of this directory, like admin.cmake: the program's target may be
# defined after this file.
cmake_language(DEFER CALL target_link_libraries mailferry-cli PRIVATE mf_worker)
