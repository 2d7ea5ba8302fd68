// Interop: the engine's client handle, driven over a real TCP socket by the test BlockingClient,
// against an independent implementation (Debian's python3-websockets 10.4, see
// python_echo_server.py). Messages go out and come back echoed; the Python side checks our
// framing, masking and handshake, we check theirs.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "service/ws/protocol_handle.h"
#include "tests/support/blocking_client.h"
#include "tests/support/python_server.h"

#ifndef WSGATE_ECHO_SERVER_SCRIPT
#error "WSGATE_ECHO_SERVER_SCRIPT must name python_echo_server.py"
#endif

namespace wsgate::test {
namespace {

using ws::BufferType;
using ws::Result;

class WsInteropTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string error;
    // The server exits by itself after 300 s even if this process dies without cleaning up.
    server_ = PythonServer::start(WSGATE_ECHO_SERVER_SCRIPT, {"300"}, 20000, &error).release();
    if (server_ == nullptr) start_error_ = new std::string(error);
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete start_error_;
    start_error_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr) << (start_error_ ? *start_error_ : std::string("no server"));
  }

  std::unique_ptr<BlockingClient> Connect(BlockingClient::Options options = {}) {
    std::string error;
    auto client = BlockingClient::connect(server_->port(), options, &error);
    EXPECT_NE(client, nullptr) << error;
    return client;
  }

  static std::vector<std::uint8_t> Pattern(std::size_t n, unsigned seed) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i)
      v[i] = static_cast<std::uint8_t>((i * 131u + seed * 17u + (i >> 9)) & 0xFF);
    return v;
  }
  static std::string Text(std::size_t n) {
    std::string s(n, 'a');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 % 26));
    // A few multi-byte characters where they fit, so UTF-8 crosses chunk boundaries.
    for (std::size_t i = 100; i + 3 <= n; i += 4093) s.replace(i, 3, "\xE2\x82\xAC");  // U+20AC
    return s;
  }

  // Closes cleanly: our close, the server's echo with the same code and reason.
  static void CloseCleanly(BlockingClient& client, std::uint16_t code, const std::string& reason) {
    ASSERT_EQ(client.send_close(code, reason), Result::ok);
    BlockingClient::Message m = client.receive_message();
    EXPECT_EQ(m.type, BufferType::close);
    EXPECT_EQ(m.close_status, code);
    EXPECT_EQ(m.text(), reason);
    EXPECT_FALSE(client.timed_out());
  }

  static PythonServer* server_;
  static std::string* start_error_;
};

PythonServer* WsInteropTest::server_ = nullptr;
std::string* WsInteropTest::start_error_ = nullptr;

constexpr std::size_t kSizes[] = {0, 1, 125, 126, 65536, 1u << 20};

TEST_F(WsInteropTest, HandshakeResponse) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(client->status_code(), 101);
  EXPECT_EQ(client->handle().state(), ws::State::open);
  CloseCleanly(*client, 1000, "");
}

TEST_F(WsInteropTest, TextEchoZeroCopy) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  for (std::size_t size : kSizes) {
    SCOPED_TRACE("text size " + std::to_string(size));
    std::string text = Text(size);
    ASSERT_EQ(client->send(BufferType::utf8_message, text), Result::ok);
    BlockingClient::Message m = client->receive_message();
    ASSERT_EQ(m.type, BufferType::utf8_message) << ws::symbol(client->last_error());
    EXPECT_EQ(m.data.size(), size);
    EXPECT_TRUE(m.text() == text);
    // Zero-copy chunks are at most the receive buffer size (4096 by default).
    EXPECT_GE(m.chunks, size / ws::kDefaultReceiveBufferSize);
  }
  CloseCleanly(*client, 1000, "done");
}

TEST_F(WsInteropTest, BinaryEchoIntoAppBuffer) {
  std::uint32_t receive_size = 1024, send_size = 256;
  BlockingClient::Options options;
  options.properties = {
      {ws::PropertyType::receive_buffer_size, &receive_size, 4},
      {ws::PropertyType::send_buffer_size, &send_size, 4},
  };
  auto client = Connect(options);
  ASSERT_NE(client, nullptr);
  for (std::size_t size : kSizes) {
    SCOPED_TRACE("binary size " + std::to_string(size));
    std::vector<std::uint8_t> data = Pattern(size, static_cast<unsigned>(size));
    ASSERT_EQ(client->send(BufferType::binary_message, data.data(), data.size()), Result::ok);
    BlockingClient::Message m = client->receive_message(/*app_buffer_size=*/777);
    ASSERT_EQ(m.type, BufferType::binary_message) << ws::symbol(client->last_error());
    EXPECT_EQ(m.data.size(), size);
    EXPECT_TRUE(m.data == data);
    EXPECT_GE(m.chunks, size / 777);
  }
  CloseCleanly(*client, 1000, "");
}

TEST_F(WsInteropTest, BinaryEchoZeroCopyMaskingDisabled) {
  // DISABLE_MASKING on a client keeps the MASK bit with a zero key: Python still sees masked
  // frames and must accept them.
  int disable = 1;
  BlockingClient::Options options;
  options.properties = {{ws::PropertyType::disable_masking, &disable, 4}};
  auto client = Connect(options);
  ASSERT_NE(client, nullptr);
  std::vector<std::uint8_t> data = Pattern(70000, 3);
  ASSERT_EQ(client->send(BufferType::binary_message, data.data(), data.size()), Result::ok);
  BlockingClient::Message m = client->receive_message();
  ASSERT_EQ(m.type, BufferType::binary_message) << ws::symbol(client->last_error());
  EXPECT_TRUE(m.data == data);
  CloseCleanly(*client, 1000, "");
}

TEST_F(WsInteropTest, FragmentedMessagesAreReassembledByThePeer) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  // Text, with a 3-byte character split across fragments, and an empty middle fragment.
  ASSERT_EQ(client->send(BufferType::utf8_fragment, std::string("price: \xE2\x82")), Result::ok);
  ASSERT_EQ(client->send(BufferType::utf8_fragment, std::string()), Result::ok);
  ASSERT_EQ(client->send(BufferType::utf8_fragment, std::string("\xAC")), Result::ok);
  ASSERT_EQ(client->send(BufferType::utf8_message, std::string(" 5")), Result::ok);
  BlockingClient::Message m = client->receive_message();
  ASSERT_EQ(m.type, BufferType::utf8_message) << ws::symbol(client->last_error());
  EXPECT_EQ(m.text(), "price: \xE2\x82\xAC 5");

  // Binary, large fragments, with a ping between them (control frames may interleave).
  std::vector<std::uint8_t> data = Pattern(200000, 9);
  ASSERT_EQ(client->send(BufferType::binary_fragment, data.data(), 100000), Result::ok);
  ASSERT_EQ(client->send_control(BufferType::ping_pong), Result::ok);
  ASSERT_EQ(client->send(BufferType::binary_message, data.data() + 100000, 100000), Result::ok);
  // The pong to our ping arrives before the echo (the server answers the ping as it reads it).
  m = client->receive_message();
  EXPECT_EQ(m.type, BufferType::ping_pong);
  EXPECT_TRUE(m.data.empty());
  m = client->receive_message();
  ASSERT_EQ(m.type, BufferType::binary_message) << ws::symbol(client->last_error());
  EXPECT_TRUE(m.data == data);
  CloseCleanly(*client, 1000, "");
}

TEST_F(WsInteropTest, PingIsAnsweredWithPong) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_EQ(client->send_control(BufferType::ping_pong), Result::ok);
  BlockingClient::Message m = client->receive_message();
  EXPECT_EQ(m.type, BufferType::ping_pong);
  EXPECT_TRUE(m.data.empty());
  // An unsolicited pong (the keepalive) is ignored by the server: the next message is the echo.
  ASSERT_EQ(client->send_control(BufferType::unsolicited_pong), Result::ok);
  ASSERT_EQ(client->send(BufferType::utf8_message, std::string("after pong")), Result::ok);
  m = client->receive_message();
  ASSERT_EQ(m.type, BufferType::utf8_message);
  EXPECT_EQ(m.text(), "after pong");
  CloseCleanly(*client, 1000, "");
}

TEST_F(WsInteropTest, ServerPingIsAnsweredAutomatically) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_EQ(client->send(BufferType::utf8_message, std::string("ping-me")), Result::ok);
  // The server's ping is not indicated; our automatic pong lets it send its confirmation.
  BlockingClient::Message m = client->receive_message();
  ASSERT_EQ(m.type, BufferType::utf8_message) << ws::symbol(client->last_error());
  EXPECT_EQ(m.text(), "pong-received");
  CloseCleanly(*client, 1000, "");
}

TEST_F(WsInteropTest, CloseCodeAndReasonAreEchoed) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  CloseCleanly(*client, 4321, "client says bye \xC3\xA9");
  EXPECT_EQ(client->handle().state(), ws::State::closed);
  // Nothing more to receive, nothing more to send.
  BlockingClient::Chunk c;
  EXPECT_EQ(client->receive(&c), Result::invalid_protocol_operation);
  EXPECT_EQ(client->send(BufferType::utf8_message, std::string("x")),
            Result::invalid_protocol_operation);
}

TEST_F(WsInteropTest, EmptyCloseIsIndicatedAs1005) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_EQ(client->send_close(0, ""), Result::ok);  // Send(CLOSE, NULL): no status on the wire
  BlockingClient::Message m = client->receive_message();
  EXPECT_EQ(m.type, BufferType::close);
  EXPECT_EQ(m.close_status, 1005);
  EXPECT_TRUE(m.data.empty());
}

TEST_F(WsInteropTest, CloseStartedByTheServer) {
  auto client = Connect();
  ASSERT_NE(client, nullptr);
  ASSERT_EQ(client->send(BufferType::utf8_message, std::string("close-me")), Result::ok);
  BlockingClient::Message m = client->receive_message();
  ASSERT_EQ(m.type, BufferType::close) << ws::symbol(client->last_error());
  EXPECT_EQ(m.close_status, 4000);
  EXPECT_EQ(m.text(), "server closing");
  EXPECT_EQ(client->handle().state(), ws::State::close_received);
  ASSERT_EQ(client->send_close(4000, "server closing"), Result::ok);
  EXPECT_EQ(client->handle().state(), ws::State::closed);
}

}  // namespace
}  // namespace wsgate::test
