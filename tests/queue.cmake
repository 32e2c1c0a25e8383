# The queue test holds the store locked from a second raw SQLite connection.
if(TARGET queue_jobs_test)
  target_link_libraries(queue_jobs_test PRIVATE SQLite::SQLite3)
endif()
