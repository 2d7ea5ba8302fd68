# Runs inside `cmake --install` (component daemon, deploy/CMakeLists.txt), where
# CMAKE_INSTALL_PREFIX is the prefix of this install (--prefix, or /usr under CPack) and
# file(INSTALL) honours DESTDIR. Installs:
#   PREFIX/lib/systemd/system/wsgated.{service,socket}   configured with the prefix's paths
#   PREFIX/lib/sysusers.d/wsgate.conf                    (systemd reads /usr/local/lib too)
#   /etc/wsgate/wsgated.toml    the example with every default; an existing, different file is
#                               kept and the new default goes beside it as wsgated.toml.dist
# Inputs (set by the caller): WSGATE_SOURCE_DIR (deploy/), WSGATE_WORK_DIR (a build directory),
# WSGATE_BINDIR_REL and WSGATE_DOCDIR_REL (GNUInstallDirs' relative bin and doc dirs).
set(prefix "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/+$" "" prefix "${prefix}")
foreach(var BINDIR DOCDIR)
  if(IS_ABSOLUTE "${WSGATE_${var}_REL}")
    set(WSGATE_${var} "${WSGATE_${var}_REL}")
  else()
    set(WSGATE_${var} "${prefix}/${WSGATE_${var}_REL}")
  endif()
endforeach()
set(WSGATE_CONFIG_FILE /etc/wsgate/wsgated.toml)

foreach(unit wsgated.service wsgated.socket)
  configure_file("${WSGATE_SOURCE_DIR}/systemd/${unit}.in" "${WSGATE_WORK_DIR}/${unit}" @ONLY)
endforeach()
file(INSTALL "${WSGATE_WORK_DIR}/wsgated.service" "${WSGATE_WORK_DIR}/wsgated.socket"
     DESTINATION "${prefix}/lib/systemd/system"
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL "${WSGATE_SOURCE_DIR}/systemd/wsgate.sysusers.conf"
     DESTINATION "${prefix}/lib/sysusers.d" RENAME wsgate.conf
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)

set(example "${WSGATE_SOURCE_DIR}/config/wsgated.example.toml")
set(existing "$ENV{DESTDIR}${WSGATE_CONFIG_FILE}")
set(name wsgated.toml)
if(EXISTS "${existing}")
  file(SHA256 "${existing}" old)
  file(SHA256 "${example}" new)
  if(NOT old STREQUAL new)
    set(name wsgated.toml.dist)
    message(STATUS "Kept the existing ${WSGATE_CONFIG_FILE} (new default: ${name})")
  endif()
endif()
file(INSTALL "${example}" DESTINATION /etc/wsgate RENAME ${name}
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
