// local_listener.h on Windows: an AF_UNIX socket that gRPC binds and accepts itself, in a
// directory whose ACL decides who may connect.
#include "service/daemon/local_listener.h"

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <winsock2.h>
#include <windows.h>
// After windows.h, which they need.
#include <afunix.h>
#include <sddl.h>

#include <asio/local/stream_protocol.hpp>
#include <filesystem>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

namespace wsgate::daemon {
namespace {

// Protected (P: not inheriting the parent's entries), inherited by what is created inside
// (OICI): full access for SYSTEM (SY), the Administrators group (BA) and the directory's owner
// (OW: the account that created it, i.e. the service's account). Nobody else may open the
// socket; an operator grants a user or group with icacls (docs/operations.md).
constexpr wchar_t kSocketDirSddl[] = L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;OW)";

std::string last_error_text(DWORD error) {
  char* text = nullptr;
  const DWORD n = ::FormatMessageA(
      FORMAT_MESSAGE_ALLOCATE_BUFFER | FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
      nullptr, error, 0, reinterpret_cast<char*>(&text), 0, nullptr);
  std::string out = n > 0 ? std::string(text, n) : "error " + std::to_string(error);
  if (text != nullptr) ::LocalFree(text);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == '.')) out.pop_back();
  return out;
}

// Creates `dir` (its parents as usual) with kSocketDirSddl. An existing directory is left as
// it is: its ACL is the operator's (deploy/windows/install-service.ps1 sets the same one).
std::string create_private_directory(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::is_directory(dir, ec)) return "";
  if (dir.has_parent_path()) std::filesystem::create_directories(dir.parent_path(), ec);
  PSECURITY_DESCRIPTOR sd = nullptr;
  if (!::ConvertStringSecurityDescriptorToSecurityDescriptorW(kSocketDirSddl, SDDL_REVISION_1,
                                                              &sd, nullptr)) {
    return "cannot build the socket directory's ACL: " + last_error_text(::GetLastError());
  }
  SECURITY_ATTRIBUTES attributes{sizeof attributes, sd, FALSE};
  const BOOL created = ::CreateDirectoryW(dir.wstring().c_str(), &attributes);
  const DWORD error = created ? 0 : ::GetLastError();
  ::LocalFree(sd);
  if (!created && error != ERROR_ALREADY_EXISTS) {
    return "cannot create the socket directory " + dir.string() + ": " + last_error_text(error);
  }
  return "";
}

// Is something accepting connections on this AF_UNIX path? (Asio has AF_UNIX on Windows.)
bool socket_in_use(const std::string& path) {
  asio::io_context io;
  asio::local::stream_protocol::socket probe(io);
  asio::error_code ec;
  probe.connect(asio::local::stream_protocol::endpoint(path), ec);
  return !ec;
}

}  // namespace

struct LocalListener::Impl {
  std::string path;
  int port = 0;  // gRPC's answer for the "unix:" port: 0 when it could not bind it
  bool owns_path = false;
};

LocalListener::LocalListener() : impl_(std::make_unique<Impl>()) {}
LocalListener::~LocalListener() = default;

std::string LocalListener::prepare(ListenConfig& listen) {
  const std::string& path = listen.unix_socket;
  impl_->path = path;
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return "listen.unix_socket: the path is longer than a unix socket path may be: " + path;
  }
  if (std::string error = create_private_directory(std::filesystem::path(path).parent_path());
      !error.empty()) {
    return error;
  }
  std::error_code ec;
  if (std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
    if (socket_in_use(path)) return "another process is already listening on " + path;
    std::filesystem::remove(path, ec);  // a stale socket from an earlier run
  }
  return "";
}

void LocalListener::add_to(grpc::ServerBuilder& builder) {
  builder.AddListeningPort("unix:" + impl_->path, grpc::InsecureServerCredentials(), &impl_->port);
}

std::string LocalListener::start(asio::io_context& /*io*/, grpc::Server& /*server*/,
                                 rpc::PeerDirectory& /*peers*/, rpc::FdBudget& /*budget*/) {
  if (impl_->port == 0) {
    return "cannot listen on unix:" + impl_->path +
           " (AF_UNIX needs Windows 10 1803 or later and a gRPC built with it)";
  }
  impl_->owns_path = true;
  return "";  // gRPC accepts (and counts nothing in the fd budget: no fd limit here)
}

void LocalListener::close() {}  // gRPC's own listener stops in grpc::Server::Shutdown

void LocalListener::remove_path() {
  if (!impl_->owns_path) return;
  std::error_code ec;
  std::filesystem::remove(impl_->path, ec);
  impl_->owns_path = false;
}

std::string LocalListener::description() const {
  return "unix:" + impl_->path + " (access: the directory's ACL)";
}

}  // namespace wsgate::daemon
