// e2e_echo_server: the WebSocket echo server of the end-to-end benchmark (bench/README.md, "e2e").
// Boost.Beast 1.74 over Boost.Asio, one thread, 127.0.0.1 on an ephemeral port. Prints
// "PORT <n>" on stdout once listening, then echoes every message with its type (text/binary),
// compressed when the client negotiated permessage-deflate, until
// SIGTERM/SIGINT or until stdin reaches end of file (so it dies with the driver).
#include <utility>  // before Boost 1.74 Asio: awaitable.hpp uses std::exchange
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdio>
#include <memory>

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : ws_(std::move(socket)) {}

  void start() {
    beast::error_code ec;
    ws_.next_layer().set_option(tcp::no_delay(true), ec);
    ws_.read_message_max(64u << 20);
    ws_.auto_fragment(false);
    // permessage-deflate when the client offers it (the e2e "deflate" case): every message
    // compressed, with context takeover. A client that does not offer it is unaffected.
    websocket::permessage_deflate pmd;
    pmd.server_enable = true;
    ws_.set_option(pmd);
    ws_.async_accept([self = shared_from_this()](beast::error_code e) {
      if (!e) self->read();
    });
  }

 private:
  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
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

  websocket::stream<tcp::socket> ws_;
  beast::flat_buffer buffer_;
};

void accept_loop(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](beast::error_code ec, tcp::socket socket) {
    if (!ec) std::make_shared<Session>(std::move(socket))->start();
    if (acceptor.is_open()) accept_loop(acceptor);
  });
}

}  // namespace

int main() {
  net::io_context ioc{1};
  tcp::acceptor acceptor(ioc);
  const tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), 0);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(net::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(4096);
  std::printf("PORT %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);

  net::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });
  // End of stdin (the driver's pipe closes when it exits): stop.
  net::posix::stream_descriptor in(ioc, ::dup(0));
  static char byte;
  in.async_read_some(net::buffer(&byte, 1), [&](beast::error_code, std::size_t) { ioc.stop(); });
  accept_loop(acceptor);
  ioc.run();
  return 0;
}
