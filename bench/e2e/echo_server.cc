// e2e_echo_server: the WebSocket echo server of the end-to-end benchmark (bench/README.md, "e2e").
// Boost.Beast 1.74 over Boost.Asio, one thread, 127.0.0.1 on an ephemeral port. Prints
// "PORT <n>" on stdout once listening, then echoes every message with its type (text/binary),
// compressed when the client negotiated permessage-deflate, until
// SIGTERM/SIGINT or until stdin reaches end of file (so it dies with the driver).
// With `--tls CERT KEY` it also serves wss:// (TLS 1.3 only, the given PEM certificate and key)
// on a second port, printed as "TLSPORT <n>" after the first line. A TLS client that hangs up
// after its handshake (openssl s_time) just ends its session.
#include <utility>  // before Boost 1.74 Asio: awaitable.hpp uses std::exchange
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  explicit Session(tcp::socket socket) : ws_(std::move(socket)) {}
  Session(tcp::socket socket, net::ssl::context& tls) : ws_(std::move(socket), tls) {}

  void start() {
    beast::error_code ec;
    beast::get_lowest_layer(ws_).set_option(tcp::no_delay(true), ec);
    ws_.read_message_max(64u << 20);
    ws_.auto_fragment(false);
    // permessage-deflate when the client offers it (the e2e "deflate" case): every message
    // compressed, with context takeover. A client that does not offer it is unaffected.
    websocket::permessage_deflate pmd;
    pmd.server_enable = true;
    ws_.set_option(pmd);
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      accept();
    } else {
      ws_.next_layer().async_handshake(net::ssl::stream_base::server,
                                       [self = this->shared_from_this()](beast::error_code e) {
                                         if (!e) self->accept();
                                       });
    }
  }

 private:
  void accept() {
    ws_.async_accept([self = this->shared_from_this()](beast::error_code e) {
      if (!e) self->read();
    });
  }

  void read() {
    ws_.async_read(buffer_, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;  // closed, EOF or reset: the session ends with the last reference
      self->ws_.text(self->ws_.got_text());
      self->ws_.async_write(self->buffer_.data(),
                            [self](beast::error_code e, std::size_t) {
                              if (e) return;
                              self->buffer_.consume(self->buffer_.size());
                              self->read();
                            });
    });
  }

  websocket::stream<Stream> ws_;
  beast::flat_buffer buffer_;
};

void accept_loop(tcp::acceptor& acceptor, net::ssl::context* tls) {
  acceptor.async_accept([&acceptor, tls](beast::error_code ec, tcp::socket socket) {
    if (!ec && tls == nullptr) {
      std::make_shared<Session<tcp::socket>>(std::move(socket))->start();
    } else if (!ec) {
      std::make_shared<Session<beast::ssl_stream<tcp::socket>>>(std::move(socket), *tls)->start();
    }
    if (acceptor.is_open()) accept_loop(acceptor, tls);
  });
}

void listen(tcp::acceptor& acceptor) {
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(net::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(4096);
}

}  // namespace

int main(int argc, char** argv) {
  net::io_context ioc{1};
  tcp::acceptor acceptor(ioc);
  listen(acceptor);
  std::printf("PORT %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::optional<net::ssl::context> tls;
  tcp::acceptor tls_acceptor(ioc);
  if (argc == 4 && std::strcmp(argv[1], "--tls") == 0) {
    tls.emplace(net::ssl::context::tls_server);
    tls->set_options(net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 |
                     net::ssl::context::no_tlsv1_2);
    tls->use_certificate_chain_file(argv[2]);
    tls->use_private_key_file(argv[3], net::ssl::context::pem);
    listen(tls_acceptor);
    std::printf("TLSPORT %u\n", static_cast<unsigned>(tls_acceptor.local_endpoint().port()));
  }
  std::fflush(stdout);

  net::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
  // End of stdin (the driver's pipe closes when it exits): stop.
  net::posix::stream_descriptor in(ioc, ::dup(0));
  static char byte;
  in.async_read_some(net::buffer(&byte, 1), [&](beast::error_code, std::size_t) { ioc.stop(); });
  accept_loop(acceptor, nullptr);
  if (tls) accept_loop(tls_acceptor, &*tls);
  ioc.run();
  return 0;
}
