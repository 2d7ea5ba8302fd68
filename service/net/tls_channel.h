// TlsChannel: the client side of one TLS connection: OpenSSL on a connected, non-blocking socket
// (a socket BIO of our own on its descriptor, which writes with MSG_NOSIGNAL: no SIGPIPE), without
// Asio's ssl::stream. Each call is one non-blocking step: it does what the socket allows now and
// otherwise says what it waits for; the owner then waits until the socket is readable (or
// writable) and calls again. That lets the owner run a TLS session like a plain TCP one: from
// whichever thread holds the session, with no strand and no completion handler when the socket
// is ready (service/net/upstream_connection.h).
//
// Why not asio::ssl::stream: it keeps two 17 KiB buffers per connection from the start and a BIO
// pair with two more (bench/README.md, "Idle wss:// memory"), and its composed operations must
// run on one strand. Here OpenSSL reads and writes the socket itself, and with
// SSL_MODE_RELEASE_BUFFERS (set on the contexts, tls_context.cc) an idle connection holds no
// record buffers at all (with release_buffers(), see there).
//
// Object lifetime: owned by one connection. It does not own the socket, which must stay open
// while calls are made (closing it first and then destroying the channel is fine).
// Thread safety: none; one thread at a time (the owner serialises calls with its mutex).
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace wsgate::net {

class TlsChannel {
 public:
  // The socket's native descriptor.
#ifdef _WIN32
  using NativeSocket = std::uintptr_t;  // SOCKET
#else
  using NativeSocket = int;
#endif

  struct Step {
    enum class Status {
      done,        // the step finished: `bytes` were read or written (the handshake: complete)
      want_read,   // nothing more now: call again once the socket is readable
      want_write,  // nothing more now: call again once the socket is writable
      closed,      // read: the peer ended TLS cleanly (close_notify)
      failed,      // see message, reason and the flags
    };
    Status status = Status::done;
    std::size_t bytes = 0;
    // failed: what OpenSSL or the system said, as one line; OpenSSL's reason code (0 if the
    // failure was the system's); the stream ended without a close_notify; no byte at all came
    // back from the peer (the handshake: the server hung up on our ClientHello).
    std::string message;
    int reason = 0;
    bool truncated = false;
    bool nothing_received = false;
  };

  // Sets up a client connection on `socket` with `context`'s settings: SNI (unless `server_name`
  // is an IP address) and, when `verify` is true, the name or address the peer's certificate
  // must hold. Returns nullptr with `*error` set when OpenSSL cannot make the connection object.
  static std::unique_ptr<TlsChannel> create(SSL_CTX* context, NativeSocket socket,
                                            const std::string& server_name, bool verify,
                                            std::string* error);
  ~TlsChannel();
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  Step handshake();
  // Reads up to `size` bytes. Decrypted bytes OpenSSL holds beyond `size` stay in it, where
  // the socket's readiness does not show them: call read again without waiting first.
  Step read(void* data, std::size_t size);
  // Writes up to `size` bytes (OpenSSL's partial writes: `bytes` may be less). After want_read
  // or want_write, call again with the same bytes (they may have moved in memory).
  Step write(const void* data, std::size_t size);

  // True when OpenSSL holds bytes a read would return (or a record to decrypt) without waiting
  // for the socket. When false, wait until the socket is readable before reading: a read that
  // finds nothing leaves OpenSSL's 17 KiB record buffer allocated (SSL_MODE_RELEASE_BUFFERS
  // frees it only once a record is consumed), which an idle session would then keep.
  bool has_pending() const { return SSL_has_pending(ssl_) == 1; }
  // Frees OpenSSL's record buffers (about 17 KiB each way) when nothing is buffered in them;
  // OpenSSL makes them again on the next read or write. SSL_MODE_RELEASE_BUFFERS alone leaves
  // one allocated after a TLS 1.3 handshake (measured: 34 KB of heap per idle connection
  // against 17.8 KB after this call); the owner calls it before waiting for the socket.
  // False (nothing freed) while a record is buffered: a partial write to retry, unread bytes.
  bool release_buffers() { return SSL_free_buffers(ssl_) == 1; }

  // Sends our close_notify (RFC 8446 6.1) once, without waiting for the peer's: the owner is
  // about to close the socket, and the peer learns that the stream ended where we meant it to
  // end, not cut short. One step: when the socket cannot take it now, nothing is sent (the
  // connection is being dropped anyway). Returns whether it was sent. Nothing is sent before
  // the handshake is complete or after a fatal error (OpenSSL forbids SSL_shutdown then).
  bool close_notify();

  SSL* native_handle() const noexcept { return ssl_; }

 private:
  explicit TlsChannel(SSL* ssl) : ssl_(ssl) {}
  // Turns an OpenSSL return value into a Step (reads the error queue and errno).
  Step outcome(int ret, std::size_t bytes);

  SSL* ssl_;
  bool broken_ = false;  // a step failed (SSL_ERROR_SSL or SYSCALL): no close_notify then
};

}  // namespace wsgate::net
