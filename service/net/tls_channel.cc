#include "service/net/tls_channel.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>

#ifdef _WIN32
#include <winsock2.h>
#else
#include <sys/socket.h>
#endif

namespace wsgate::net {
namespace {

int last_socket_error() {
#ifdef _WIN32
  return WSAGetLastError();
#else
  return errno;
#endif
}

void clear_socket_error() {
#ifdef _WIN32
  WSASetLastError(0);
#else
  errno = 0;
#endif
}

bool would_block(int error) {
#ifdef _WIN32
  return error == WSAEWOULDBLOCK || error == WSAEINTR;
#else
  return error == EAGAIN || error == EWOULDBLOCK || error == EINTR;
#endif
}

// OpenSSL's own socket BIO writes with write(), which raises SIGPIPE when the peer has reset the
// connection: that would kill a process that does not ignore the signal (Asio and gRPC send
// with MSG_NOSIGNAL, so wsgated never had to). This BIO is the same socket BIO with send(...,
// MSG_NOSIGNAL) and recv(); the descriptor is its data. SSL asks nothing else of it but a flush.
#ifdef _WIN32
constexpr int kSendFlags = 0;  // Windows has no SIGPIPE
using IoSize = int;
#else
constexpr int kSendFlags = MSG_NOSIGNAL;
using IoSize = std::size_t;
#endif

TlsChannel::NativeSocket bio_socket(BIO* bio) {
  return static_cast<TlsChannel::NativeSocket>(reinterpret_cast<std::uintptr_t>(BIO_get_data(bio)));
}

int bio_write(BIO* bio, const char* data, int size) {
  clear_socket_error();
  const auto n = ::send(bio_socket(bio), data, static_cast<IoSize>(size), kSendFlags);
  BIO_clear_retry_flags(bio);
  if (n < 0 && would_block(last_socket_error())) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

int bio_read(BIO* bio, char* data, int size) {
  clear_socket_error();
  const auto n = ::recv(bio_socket(bio), data, static_cast<IoSize>(size), 0);
  BIO_clear_retry_flags(bio);
  if (n < 0 && would_block(last_socket_error())) BIO_set_retry_read(bio);
  return static_cast<int>(n);  // 0: the peer ended the stream
}

int bio_puts(BIO* bio, const char* text) {
  return bio_write(bio, text, static_cast<int>(std::strlen(text)));
}

long bio_ctrl(BIO*, int command, long, void*) {
  // Writes go straight to the socket: nothing to flush. Everything else (the kernel TLS and
  // datagram queries) is "not supported" for this BIO, as for the socket BIO on this system.
  return command == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* socket_method() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "wsgate socket");
    if (m == nullptr) return static_cast<BIO_METHOD*>(nullptr);
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_puts(m, bio_puts);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    return m;
  }();  // made once, kept for the process's lifetime
  return method;
}

bool is_ip_address(const std::string& name) {
  ASN1_OCTET_STRING* ip = a2i_IPADDRESS(name.c_str());
  if (ip == nullptr) return false;
  ASN1_OCTET_STRING_free(ip);
  return true;
}

// "certificate verify failed (SSL routines)": the reason and the library, the way Asio worded
// OpenSSL's errors before (clients and logs read these).
std::string describe(unsigned long e) {
  const char* reason = ERR_reason_error_string(e);
  const char* lib = ERR_lib_error_string(e);
  std::string out = reason != nullptr ? reason : "OpenSSL error " + std::to_string(e);
  if (lib != nullptr) out += std::string(" (") + lib + ")";
  return out;
}

}  // namespace

std::unique_ptr<TlsChannel> TlsChannel::create(SSL_CTX* context, NativeSocket socket,
                                               const std::string& server_name, bool verify,
                                               std::string* error) {
  ERR_clear_error();
  SSL* ssl = SSL_new(context);
  if (ssl == nullptr) {
    *error = "cannot create a TLS connection: " + describe(ERR_get_error());
    return nullptr;
  }
  std::unique_ptr<TlsChannel> channel(new TlsChannel(ssl));
  // Partial writes: a write returns what one step put on the socket, like a socket's send; and
  // a retried write may pass the same bytes from another address (the owner's buffers move).
  SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  BIO* bio = socket_method() != nullptr ? BIO_new(socket_method()) : nullptr;
  if (bio == nullptr) {
    *error = "cannot attach TLS to the socket: " + describe(ERR_get_error());
    return nullptr;
  }
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::uintptr_t>(socket)));
  SSL_set_bio(ssl, bio, bio);  // the connection owns it
  SSL_set_connect_state(ssl);
  const bool ip = is_ip_address(server_name);
  // SNI carries host names only (RFC 6066, section 3).
  if (!ip && SSL_set_tlsext_host_name(ssl, server_name.c_str()) != 1) {
    *error = "cannot set the TLS server name: " + describe(ERR_get_error());
    return nullptr;
  }
  if (verify) {
    const int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_name.c_str())
                       : (SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS),
                          SSL_set1_host(ssl, server_name.c_str()));
    if (set != 1) {
      *error = "cannot set the name to verify: " + describe(ERR_get_error());
      return nullptr;
    }
  }
  return channel;
}

TlsChannel::~TlsChannel() { SSL_free(ssl_); }

TlsChannel::Step TlsChannel::handshake() {
  ERR_clear_error();
  clear_socket_error();
  return outcome(SSL_do_handshake(ssl_), 0);
}

TlsChannel::Step TlsChannel::read(void* data, std::size_t size) {
  ERR_clear_error();
  clear_socket_error();
  std::size_t n = 0;
  const int ret = SSL_read_ex(ssl_, data, size, &n);  // before n is read
  return outcome(ret, n);
}

TlsChannel::Step TlsChannel::write(const void* data, std::size_t size) {
  ERR_clear_error();
  clear_socket_error();
  std::size_t n = 0;
  const int ret = SSL_write_ex(ssl_, data, size, &n);  // before n is read
  return outcome(ret, n);
}

bool TlsChannel::close_notify() {
  if (broken_ || SSL_is_init_finished(ssl_) != 1) return false;
  // 0: ours is sent, the peer's not seen yet; 1: both. Below 0: the socket is full or gone.
  const int ret = SSL_shutdown(ssl_);
  if (ret >= 0) return true;
  ERR_clear_error();
  return false;
}

TlsChannel::Step TlsChannel::outcome(int ret, std::size_t bytes) {
  Step step;
  if (ret == 1) {
    step.bytes = bytes;
    return step;
  }
  const int socket_error = last_socket_error();
  switch (SSL_get_error(ssl_, ret)) {
    case SSL_ERROR_WANT_READ:
      step.status = Step::Status::want_read;
      return step;
    case SSL_ERROR_WANT_WRITE:
      step.status = Step::Status::want_write;
      return step;
    case SSL_ERROR_ZERO_RETURN:
      step.status = Step::Status::closed;
      step.message = "the peer ended TLS (close_notify)";
      return step;
    default:
      break;
  }
  step.status = Step::Status::failed;
  broken_ = true;
  BIO* rbio = SSL_get_rbio(ssl_);
  step.nothing_received = rbio != nullptr && BIO_number_read(rbio) == 0;
  if (const unsigned long e = ERR_peek_error(); e != 0) {
    step.reason = ERR_GET_REASON(e);
    // OpenSSL 3 reports an end of stream without close_notify as this reason.
    step.truncated = step.reason == SSL_R_UNEXPECTED_EOF_WHILE_READING;
    step.message = step.truncated ? "stream truncated" : describe(e);
    ERR_clear_error();
  } else if (socket_error != 0) {
    step.message = std::error_code(socket_error, std::system_category()).message();
  } else {
    step.truncated = true;
    step.message = "stream truncated";
  }
  return step;
}

}  // namespace wsgate::net
