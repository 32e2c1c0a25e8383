# verifier.cmake — the end-to-end refusal test drives the whole engine (guard, negative
# cache) against real servers, so it links the engine besides mf_verifier.
if(TARGET verifier_refusal_engine_test)
  target_link_libraries(verifier_refusal_engine_test PRIVATE mailferry_core)
  set_tests_properties(verifier_refusal_engine_test PROPERTIES LABELS servers)
endif()

# The table test includes the private header of the judge it tests.
if(TARGET verifier_refusal_test)
  target_include_directories(verifier_refusal_test PRIVATE ${PROJECT_SOURCE_DIR}/plugin)
endif()
