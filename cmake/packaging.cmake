# CPack: one Debian package "wsgate" with the components daemon, capi and sdk (deploy/ and
# client-sdk/ install rules). `cpack -G DEB` in the build directory, or
# tests/deploy/container/deb.sh, which also installs it into a clean container.
# - Depends: computed by dpkg-shlibdeps from the binaries, plus what the maintainer scripts run
#   (systemd-sysusers).
# - postinst: creates the user and group wsgate with systemd-sysusers; the units are installed
#   but neither enabled nor started (deploy/debian/postinst).
# - /etc/wsgate/wsgated.toml is a conffile: an upgrade keeps the operator's edits.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME wsgate)
set(CPACK_PACKAGE_VENDOR wsgate)
set(CPACK_PACKAGE_CONTACT "wsgate maintainers <dev@wsgate.invalid>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "WebSocket gateway daemon with a gRPC API over a unix socket")
set(CPACK_PACKAGE_DESCRIPTION
  "wsgated opens ws:// and wss:// connections for local clients and carries their messages over \
gRPC on a unix socket; it also serves its WebSocket protocol engine (the semantics of the \
Windows WebSocket Protocol Component API). Includes wsgate-health, the client wsgate, \
libwebsocket.so and the C++ client SDK.")
set(CPACK_COMPONENTS_ALL daemon capi sdk)
set(CPACK_DEB_COMPONENT_INSTALL OFF)  # one package with every component
# Install with DESTDIR and CMAKE_INSTALL_PREFIX=/usr, so that the units name /usr/bin/wsgated and
# /etc/wsgate lands in /etc.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_STRIP_FILES ON)  # the build tree keeps the debug info
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd | systemd-sysusers")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
  ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
  ${PROJECT_SOURCE_DIR}/deploy/debian/postrm
  ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles
  ${PROJECT_SOURCE_DIR}/deploy/debian/triggers)
include(CPack)
