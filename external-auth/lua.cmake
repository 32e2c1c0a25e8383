# lua.cmake — mailferry.so, the Lua module (`require "mailferry"`) over libmailferry.so:
# Dovecot's Lua passdb/userdb loads it (examples/dovecot/mailferry.lua).
#
# A C module must be built for the Lua its host runs: a module for 5.4 cannot be loaded
# into a 5.3 state. MAILFERRY_LUA names the Lua by its pkg-config name; "auto" (the
# default) takes the one the installed Dovecot Lua library links (Debian 12's Dovecot
# 2.3.19 links Lua 5.4, upstream's 2.3 build looks for 5.3 first), else lua5.4. The module links that
# liblua too, so its Lua symbols resolve to the copy the host has already loaded (same
# soname), whether or not the host made them global.
set(MAILFERRY_LUA "auto" CACHE STRING
    "pkg-config name of the Lua mailferry.so is built for (lua5.4, lua5.3; auto: Dovecot's)")
set(mf_lua ${MAILFERRY_LUA})
if(mf_lua STREQUAL "auto")
  set(mf_lua lua5.4)
  file(GLOB mf_dovecot_lua_libs /usr/lib/dovecot/libdovecot-lua.so*
                                /usr/lib/dovecot/modules/auth/libauthdb_lua.so)
  foreach(lib IN LISTS mf_dovecot_lua_libs)
    execute_process(COMMAND readelf -d ${lib} OUTPUT_VARIABLE mf_dyn ERROR_QUIET)
    if(mf_dyn MATCHES "liblua(5\\.[0-9])")
      set(mf_lua lua${CMAKE_MATCH_1})
      break()
    endif()
  endforeach()
  message(STATUS "mailferry.so is built for ${mf_lua} (MAILFERRY_LUA=auto)")
endif()
pkg_check_modules(LUA REQUIRED IMPORTED_TARGET GLOBAL ${mf_lua})

add_library(mailferry_lua MODULE ${CMAKE_CURRENT_LIST_DIR}/lua_mailferry.c)
set_target_properties(mailferry_lua PROPERTIES
  OUTPUT_NAME mailferry PREFIX "" C_STANDARD 11 C_EXTENSIONS OFF
  LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/external-auth)
target_include_directories(mailferry_lua PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(mailferry_lua PRIVATE mailferry PkgConfig::LUA)
target_compile_options(mailferry_lua PRIVATE -Wall -Wextra -Wpedantic -Werror)
# Not installed by `cmake --install`, like libmailferry.so and pam_mailferry.so, which it
# needs: docs/ARCHITECTURE.md ("The Lua door") says where to put it.
