# The store test opens a second raw SQLite connection to hold locks.
if(TARGET store_sqlite_test)
  target_link_libraries(store_sqlite_test PRIVATE SQLite::SQLite3)
endif()
