# faces.cmake — the login faces: mailferry-checkpassword and mailferry-cgpauth.
#
#   mf_faces       protocol parsing and I/O of every face, no engine (unit-testable alone;
#                  tests/faces_*_test.cpp link it)
#   mf_face_main   the shared skeleton (options, logging, signals, opening the engine)
#   programs       one small main per face over the two

add_library(mf_faces STATIC
  ${CMAKE_CURRENT_LIST_DIR}/face_io.cpp
  ${CMAKE_CURRENT_LIST_DIR}/checkpassword_proto.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cgpauth_proto.cpp
  ${CMAKE_CURRENT_LIST_DIR}/cgpauth_server.cpp)
target_include_directories(mf_faces PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(mf_faces PUBLIC mf_base mf_probe)
target_compile_options(mf_faces PRIVATE ${MAILFERRY_WARNINGS})

add_library(mf_face_main STATIC ${CMAKE_CURRENT_LIST_DIR}/face_skeleton.cpp)
target_link_libraries(mf_face_main PUBLIC mf_faces mailferry_core)
target_compile_options(mf_face_main PRIVATE ${MAILFERRY_WARNINGS})
target_compile_definitions(mf_face_main PRIVATE MF_VERSION="${PROJECT_VERSION}")

foreach(face checkpassword cgpauth)
  add_executable(mailferry-${face} ${CMAKE_CURRENT_LIST_DIR}/${face}_main.cpp)
  target_link_libraries(mailferry-${face} PRIVATE mf_face_main)
  target_compile_options(mailferry-${face} PRIVATE ${MAILFERRY_WARNINGS})
  install(TARGETS mailferry-${face} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endforeach()
