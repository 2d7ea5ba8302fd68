// TlsChannel (service/net/tls_channel.h) against a real OpenSSL server on the other end of a
// socket pair. Both ends are non-blocking; the tests step each side and wait for readiness with
// poll() and a timeout (never a sleep). The certificate and key are made with OpenSSL when the
// test runs: a self-signed P-256 certificate for "localhost" and 127.0.0.1, which the client's
// store trusts.
#include "service/net/tls_channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace wsgate::net {
namespace {

using Status = TlsChannel::Step::Status;

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;

// A self-signed certificate with SANs DNS:localhost and IP:127.0.0.1, and its key.
struct Identity {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  Identity() {
    key = EVP_EC_gen("P-256");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* san =
        X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    X509_add_ext(cert, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(cert, key, EVP_sha256());
  }
  ~Identity() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

const Identity& identity() {
  static const Identity id;
  return id;
}

CtxPtr client_context(bool trust, int min_version = TLS1_2_VERSION) {
  CtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), min_version);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (trust) X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx.get()), identity().cert);
  return ctx;
}

CtxPtr server_context(int max_version = 0) {
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  SSL_CTX_use_certificate(ctx.get(), identity().cert);
  SSL_CTX_use_PrivateKey(ctx.get(), identity().key);
  if (max_version != 0) SSL_CTX_set_max_proto_version(ctx.get(), max_version);
  return ctx;
}

// Waits until `fd` is readable (or writable); false after the timeout.
bool wait_for(int fd, short events, int timeout_ms = 5000) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, timeout_ms) == 1;
}

class TlsChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    client_fd_ = fds[0];
    server_fd_ = fds[1];
    for (int fd : fds) ASSERT_EQ(::fcntl(fd, F_SETFL, O_NONBLOCK), 0);
    server_ctx_ = server_context();
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    if (client_fd_ >= 0) ::close(client_fd_);
    if (server_fd_ >= 0) ::close(server_fd_);
  }

  void make(SSL_CTX* client_ctx, const std::string& name, bool verify = true) {
    std::string error;
    client_ = TlsChannel::create(client_ctx, client_fd_, name, verify, &error);
    ASSERT_NE(client_, nullptr) << error;
    server_.reset(SSL_new(server_ctx_.get()));
    SSL_set_fd(server_.get(), server_fd_);
    SSL_set_accept_state(server_.get());
  }

  // A client that trusts the server's certificate, connected to "localhost": the start of the
  // tests of what comes after the handshake.
  void connect() {
    CtxPtr ctx = client_context(true);
    make(ctx.get(), "localhost");
    ASSERT_EQ(handshake().status, Status::done);
  }

  // Steps both handshakes until the client's is over (done or failed); returns its last step.
  TlsChannel::Step handshake() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    bool server_done = false;
    for (;;) {
      TlsChannel::Step step = client_->handshake();
      if (!server_done) server_done = SSL_do_handshake(server_.get()) == 1;
      if (step.status != Status::want_read && step.status != Status::want_write) {
        // Let the server finish its side too (TLS 1.3: it reads the client's Finished).
        for (int i = 0; i < 50 && !server_done && step.status == Status::done; ++i) {
          wait_for(server_fd_, POLLIN, 100);
          server_done = SSL_do_handshake(server_.get()) == 1;
        }
        return step;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "handshake did not finish";
        return step;
      }
      pollfd p[2] = {{client_fd_, POLLIN, 0}, {server_fd_, POLLIN, 0}};
      ::poll(p, 2, 100);
    }
  }

  // The client's read once it stops waiting for the socket (the server ended or failed).
  TlsChannel::Step client_read_end() {
    char buf[16];
    TlsChannel::Step step = client_->read(buf, sizeof buf);
    while (step.status == Status::want_read && wait_for(client_fd_, POLLIN)) {
      step = client_->read(buf, sizeof buf);
    }
    return step;
  }

  // Reads what the server receives until `n` bytes came.
  std::string server_read(std::size_t n) {
    std::string out;
    char buf[65536];
    while (out.size() < n) {
      std::size_t got = 0;
      if (SSL_read_ex(server_.get(), buf, sizeof buf, &got) == 1) {
        out.append(buf, got);
        continue;
      }
      if (SSL_get_error(server_.get(), 0) != SSL_ERROR_WANT_READ) break;
      if (!wait_for(server_fd_, POLLIN)) break;
    }
    return out;
  }

  int client_fd_ = -1;
  int server_fd_ = -1;
  CtxPtr server_ctx_;
  std::unique_ptr<TlsChannel> client_;
  SslPtr server_;
};

TEST_F(TlsChannelTest, HandshakeThenBothDirections) {
  CtxPtr ctx = client_context(true);
  make(ctx.get(), "localhost");
  const TlsChannel::Step step = handshake();
  ASSERT_EQ(step.status, Status::done) << step.message;
  EXPECT_EQ(SSL_get_verify_result(client_->native_handle()), X509_V_OK);
  // SNI carried the host name.
  const char* sni = SSL_get_servername(server_.get(), TLSEXT_NAMETYPE_host_name);
  ASSERT_NE(sni, nullptr);
  EXPECT_STREQ(sni, "localhost");

  const TlsChannel::Step wrote = client_->write("hello", 5);
  ASSERT_EQ(wrote.status, Status::done);
  EXPECT_EQ(wrote.bytes, 5u);
  EXPECT_EQ(server_read(5), "hello");

  ASSERT_EQ(SSL_write(server_.get(), "world", 5), 5);
  char buf[16];
  TlsChannel::Step read = client_->read(buf, sizeof buf);
  while (read.status == Status::want_read && wait_for(client_fd_, POLLIN)) {
    read = client_->read(buf, sizeof buf);
  }
  ASSERT_EQ(read.status, Status::done) << read.message;
  EXPECT_EQ(std::string(buf, read.bytes), "world");
}

TEST_F(TlsChannelTest, IpAddressIsVerifiedWithoutSni) {
  CtxPtr ctx = client_context(true);
  make(ctx.get(), "127.0.0.1");
  const TlsChannel::Step step = handshake();
  ASSERT_EQ(step.status, Status::done) << step.message;
  EXPECT_EQ(SSL_get_servername(server_.get(), TLSEXT_NAMETYPE_host_name), nullptr);
}

// The contract the owner relies on: bytes OpenSSL decrypted beyond the caller's buffer are not
// visible as socket readiness, and the next read returns them without waiting.
TEST_F(TlsChannelTest, BytesBeyondTheBufferStayInOpenSsl) {
  ASSERT_NO_FATAL_FAILURE(connect());
  const std::string sent(1000, 'x');
  ASSERT_EQ(SSL_write(server_.get(), sent.data(), static_cast<int>(sent.size())), 1000);

  char small[10];
  TlsChannel::Step first = client_->read(small, sizeof small);
  while (first.status == Status::want_read && wait_for(client_fd_, POLLIN)) {
    first = client_->read(small, sizeof small);
  }
  ASSERT_EQ(first.status, Status::done);
  EXPECT_EQ(first.bytes, 10u);
  EXPECT_FALSE(wait_for(client_fd_, POLLIN, 0)) << "the socket has nothing left to read";
  EXPECT_TRUE(client_->has_pending());

  std::string rest(1000, '\0');
  const TlsChannel::Step second = client_->read(rest.data(), rest.size());
  ASSERT_EQ(second.status, Status::done);
  EXPECT_EQ(second.bytes, 990u);
  EXPECT_FALSE(client_->has_pending());
  EXPECT_TRUE(client_->release_buffers());
  // The channel works on after its buffers went: OpenSSL makes them again.
  ASSERT_EQ(client_->write("again", 5).status, Status::done);
  EXPECT_EQ(server_read(5), "again");
}

// A write the socket cannot take says want_write; the retry passes the same bytes from another
// address (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), and the server receives the stream intact.
TEST_F(TlsChannelTest, FullSocketThenRetryFromAnotherAddress) {
  ASSERT_NO_FATAL_FAILURE(connect());
  std::string data(4 << 20, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + (i >> 12));

  std::size_t offset = 0;
  int waits = 0;
  std::string received;
  while (offset < data.size()) {
    // A fresh copy of what is left each time: the bytes move in memory between retries.
    const std::vector<char> rest(data.begin() + static_cast<std::ptrdiff_t>(offset), data.end());
    const TlsChannel::Step step = client_->write(rest.data(), rest.size());
    if (step.status == Status::done) {
      ASSERT_GT(step.bytes, 0u);
      offset += step.bytes;
      continue;
    }
    ASSERT_EQ(step.status, Status::want_write) << step.message;
    ++waits;
    // A record waits in OpenSSL's write buffer for the retry: it must not be freed.
    EXPECT_FALSE(client_->release_buffers());
    // The server drains what is there, which makes room.
    char buf[65536];
    std::size_t got = 0;
    while (SSL_read_ex(server_.get(), buf, sizeof buf, &got) == 1) received.append(buf, got);
    ASSERT_TRUE(wait_for(client_fd_, POLLOUT));
  }
  EXPECT_GT(waits, 0) << "4 MiB should not fit into a socket pair's buffers";
  received += server_read(data.size() - received.size());
  EXPECT_TRUE(received == data) << "received " << received.size() << " bytes";
}

TEST_F(TlsChannelTest, PeerHangingUpOnTheClientHelloIsTruncatedWithNothingReceived) {
  CtxPtr ctx = client_context(true);
  make(ctx.get(), "localhost");
  ASSERT_EQ(client_->handshake().status, Status::want_read);  // the ClientHello went out
  // The server reads it and hangs up (closing with unread bytes would be a reset instead).
  ASSERT_TRUE(wait_for(server_fd_, POLLIN));
  char hello[4096];
  ASSERT_GT(::read(server_fd_, hello, sizeof hello), 0);
  ::close(server_fd_);
  server_fd_ = -1;
  server_.reset();
  ASSERT_TRUE(wait_for(client_fd_, POLLIN));
  const TlsChannel::Step step = client_->handshake();
  EXPECT_EQ(step.status, Status::failed);
  EXPECT_TRUE(step.truncated);
  EXPECT_TRUE(step.nothing_received);
  EXPECT_EQ(step.message, "stream truncated");
}

TEST_F(TlsChannelTest, CloseNotifyReadsAsClosed) {
  ASSERT_NO_FATAL_FAILURE(connect());
  SSL_shutdown(server_.get());
  const TlsChannel::Step step = client_read_end();
  EXPECT_EQ(step.status, Status::closed);
}

TEST_F(TlsChannelTest, EndWithoutCloseNotifyIsTruncated) {
  ASSERT_NO_FATAL_FAILURE(connect());
  ::shutdown(server_fd_, SHUT_WR);
  const TlsChannel::Step step = client_read_end();
  EXPECT_EQ(step.status, Status::failed);
  EXPECT_TRUE(step.truncated);
  EXPECT_FALSE(step.nothing_received);
}

// What the server's SSL_read ends with once the client is done: SSL_ERROR_ZERO_RETURN for a
// close_notify, SSL_ERROR_SSL (unexpected EOF) for a stream cut short.
int server_read_end(SSL* server, int fd) {
  char buf[64];
  for (;;) {
    const int ret = SSL_read(server, buf, sizeof buf);
    const int error = SSL_get_error(server, ret);
    if (error != SSL_ERROR_WANT_READ) return error;
    if (!wait_for(fd, POLLIN)) return SSL_ERROR_WANT_READ;
  }
}

TEST_F(TlsChannelTest, CloseNotifyReachesThePeerAsACleanEnd) {
  ASSERT_NO_FATAL_FAILURE(connect());
  EXPECT_TRUE(client_->close_notify());
  EXPECT_EQ(server_read_end(server_.get(), server_fd_), SSL_ERROR_ZERO_RETURN);
}

TEST_F(TlsChannelTest, CloseNotifyAnswersThePeers) {
  ASSERT_NO_FATAL_FAILURE(connect());
  ASSERT_EQ(SSL_shutdown(server_.get()), 0);  // the server's close_notify, ours not seen yet
  const TlsChannel::Step step = client_read_end();
  ASSERT_EQ(step.status, Status::closed);
  EXPECT_TRUE(client_->close_notify());
  ASSERT_TRUE(wait_for(server_fd_, POLLIN));
  EXPECT_EQ(SSL_shutdown(server_.get()), 1);  // both sides have said it
}

TEST_F(TlsChannelTest, NoCloseNotifyBeforeTheHandshake) {
  CtxPtr ctx = client_context(true);
  make(ctx.get(), "localhost");
  EXPECT_FALSE(client_->close_notify());
  char byte;
  EXPECT_EQ(::recv(server_fd_, &byte, 1, MSG_DONTWAIT), -1);  // not a byte was sent
}

TEST_F(TlsChannelTest, NoCloseNotifyAfterAFailure) {
  ASSERT_NO_FATAL_FAILURE(connect());
  ::shutdown(server_fd_, SHUT_WR);
  const TlsChannel::Step step = client_read_end();
  ASSERT_EQ(step.status, Status::failed);
  EXPECT_FALSE(client_->close_notify());
  char byte;
  EXPECT_EQ(::recv(server_fd_, &byte, 1, MSG_DONTWAIT), -1);
}

// OpenSSL's own socket BIO would write() here and the process would die of SIGPIPE (this test
// binary does not ignore the signal, like any program that embeds the transport).
TEST_F(TlsChannelTest, WriteAfterThePeerIsGoneFailsWithoutSigpipe) {
  ASSERT_NO_FATAL_FAILURE(connect());
  server_.reset();
  ::close(server_fd_);
  server_fd_ = -1;
  const TlsChannel::Step step = client_->write("late", 4);
  EXPECT_EQ(step.status, Status::failed);
  EXPECT_NE(step.message.find("Broken pipe"), std::string::npos) << step.message;
}

TEST_F(TlsChannelTest, UntrustedCertificateFailsWithTheVerifyResult) {
  CtxPtr ctx = client_context(false);
  make(ctx.get(), "localhost");
  const TlsChannel::Step step = handshake();
  EXPECT_EQ(step.status, Status::failed);
  EXPECT_EQ(SSL_get_verify_result(client_->native_handle()),
            X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
}

TEST_F(TlsChannelTest, NameMismatchFailsVerification) {
  CtxPtr ctx = client_context(true);
  make(ctx.get(), "other.example");
  EXPECT_EQ(handshake().status, Status::failed);
  EXPECT_EQ(SSL_get_verify_result(client_->native_handle()), X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(TlsChannelTest, NameMismatchIsAcceptedWithoutVerification) {
  CtxPtr ctx = client_context(false);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  make(ctx.get(), "other.example", /*verify=*/false);
  EXPECT_EQ(handshake().status, Status::done);
}

TEST_F(TlsChannelTest, NoCommonVersionReportsTheAlertReason) {
  server_ctx_ = server_context(TLS1_2_VERSION);
  CtxPtr ctx = client_context(true, TLS1_3_VERSION);
  make(ctx.get(), "localhost");
  const TlsChannel::Step step = handshake();
  EXPECT_EQ(step.status, Status::failed);
  EXPECT_EQ(step.reason, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION) << step.message;
  EXPECT_NE(step.message.find("protocol version"), std::string::npos) << step.message;
}

}  // namespace
}  // namespace wsgate::net
