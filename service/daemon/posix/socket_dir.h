// The unix socket's directory must not let another user replace the socket: whoever can rename
// or remove entries there can put their own socket in its place and read the clients' Open
// messages (headers, PEM keys). So before binding, wsgated checks the directory:
//
//   The default directory without XDG_RUNTIME_DIR (/tmp/wsgate-<uid>, private_dir): created
//   0700; if it exists it must be a real directory (not a symlink) owned by the daemon's uid and
//   writable by nobody else.
//   Any other socket directory (listen.unix_socket, --socket, XDG_RUNTIME_DIR): created when
//   missing; it must be owned by the daemon's uid or by root, and, if group- or world-writable,
//   have the sticky bit (like /tmp: others cannot remove or rename our entries) and either no
//   entry at the socket's path or one owned by the daemon's uid (an entry owned by someone else
//   is a squatter's, which we could not replace safely).
// A socket inherited from systemd is not checked (its unit decides).
//
// Thread safety: plain functions; prepare_socket_directory() creates directories (start-up only).
#pragma once

#include <sys/types.h>

#include <string>

namespace wsgate::daemon::posix {

struct PathFacts {
  bool exists = false;
  bool is_dir = false;
  bool is_symlink = false;
  uid_t owner = 0;
  mode_t mode = 0;  // permission bits incl. sticky (st_mode & 07777)
};

// The decision: "" when the directory is safe, else what is wrong, why it matters and the fix.
std::string judge_socket_directory(const std::string& dir, const PathFacts& dir_facts,
                                   const std::string& socket_path, const PathFacts& socket_facts,
                                   uid_t euid, bool private_dir);

// Creates the socket's directory when missing (0700 for a private one), reads the facts and
// judges them.
std::string prepare_socket_directory(const std::string& socket_path, bool private_dir);

}  // namespace wsgate::daemon::posix
