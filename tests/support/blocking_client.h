// BlockingClient: a WebSocket client for tests, made of the engine's ProtocolHandle (client role)
// and one blocking TCP socket (POSIX, no Asio). The test-side twin of the daemon's driver: it runs
// the HTTP/1.1 upgrade and then the action loop of service/ws/README.md.
//
//   std::string error;
//   auto client = BlockingClient::connect(port, {}, &error);
//   client->send(BufferType::binary_message, bytes);
//   Message m = client->receive_message();
//
// Every read waits at most `Options::io_timeout_ms`; a timeout ends the connection (reported as a
// receive EOF, so the engine indicates CLOSE 1006) and sets timed_out(), so a test never hangs.
//
// Thread safety: none; one thread per client. The object owns the socket and the handle.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "service/ws/protocol_handle.h"

namespace wsgate::test {

class BlockingClient {
 public:
  struct Options {
    std::string path = "/";
    std::vector<ws::Property> properties;  // passed to ProtocolHandle::create (client role)
    std::vector<std::string> subprotocols;
    std::vector<std::pair<std::string, std::string>> extra_headers;  // added to the initial ones
    int io_timeout_ms = 10000;
    std::size_t max_response_header_bytes = 16 * 1024;
  };

  // One Receive's result (INDICATE_RECEIVE_COMPLETE).
  struct Chunk {
    ws::BufferType type = ws::BufferType::binary_message;
    std::vector<std::uint8_t> data;  // data, pong payload or close reason
    std::uint16_t close_status = 0;  // CLOSE only
  };

  // A whole message: the chunks up to and including a *_MESSAGE, or one CLOSE / PING_PONG.
  struct Message {
    ws::BufferType type = ws::BufferType::binary_message;  // the last chunk's type
    std::vector<std::uint8_t> data;
    std::uint16_t close_status = 0;
    std::size_t chunks = 0;
    std::string text() const { return {data.begin(), data.end()}; }
  };

  // Connects to 127.0.0.1:port and performs the upgrade. nullptr on failure, with *error set.
  static std::unique_ptr<BlockingClient> connect(std::uint16_t port, const Options& options,
                                                 std::string* error);
  ~BlockingClient();
  BlockingClient(const BlockingClient&) = delete;
  BlockingClient& operator=(const BlockingClient&) = delete;

  // Queues one Send and pumps until its INDICATE_SEND_COMPLETE. Returns Send's result (ok when
  // queued) or the first failure of the action loop.
  ws::Result send(ws::BufferType type, const void* data, std::size_t length);
  ws::Result send(ws::BufferType type, std::string_view text) {
    return send(type, text.data(), text.size());
  }
  ws::Result send_close(std::uint16_t status, std::string_view reason);  // status 0: empty close
  ws::Result send_control(ws::BufferType type);  // PING_PONG or UNSOLICITED_PONG (no payload)

  // Queues one Receive (zero-copy when app_buffer_size is 0) and pumps until it is indicated.
  ws::Result receive(Chunk* out, std::size_t app_buffer_size = 0);
  // Receives chunks until a whole message (see Message). Failures end up in last_error().
  Message receive_message(std::size_t app_buffer_size = 0);

  ws::ProtocolHandle& handle() { return *handle_; }
  // The HTTP response (status line and headers) of the upgrade.
  int status_code() const { return status_code_; }
  const std::vector<std::pair<std::string, std::string>>& response_headers() const {
    return response_headers_;
  }
  bool timed_out() const { return timed_out_; }
  ws::Result last_error() const { return last_error_; }
  // Closes the socket's write side (the peer reads EOF).
  void shutdown_write();

 private:
  BlockingClient(int fd, std::unique_ptr<ws::ProtocolHandle> handle, Options options);

  bool handshake(std::uint16_t port, std::string* error);
  // Runs the action loop until `done` is set or the engine has nothing to do (NO_ACTION).
  ws::Result pump(const bool& done);
  bool write_all(const ws::Buffer* buffers, std::uint32_t count);
  std::uint32_t read_some(std::uint8_t* buffer, std::uint32_t length);  // 0: EOF, error, timeout

  int fd_;
  std::unique_ptr<ws::ProtocolHandle> handle_;
  Options options_;
  std::vector<std::uint8_t> pending_input_;  // bytes read past the response headers
  std::size_t pending_offset_ = 0;
  int status_code_ = 0;
  std::vector<std::pair<std::string, std::string>> response_headers_;
  bool timed_out_ = false;
  ws::Result last_error_ = ws::Result::ok;

  // What the loop saw for the operation being waited for.
  void* wait_context_ = nullptr;
  bool wait_done_ = false;
  Chunk* wait_chunk_ = nullptr;
  std::uintptr_t next_context_ = 1;
};

}  // namespace wsgate::test
