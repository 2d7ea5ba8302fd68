#include "tests/support/blocking_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "service/ws/handshake.h"

namespace wsgate::test {
namespace {

using ws::Action;
using ws::ActionQueue;
using ws::Buffer;
using ws::BufferType;
using ws::HttpHeader;
using ws::Result;

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// HttpHeader views of (name, value) strings; the strings must outlive the views.
std::vector<HttpHeader> header_views(std::vector<std::pair<std::string, std::string>>& headers) {
  std::vector<HttpHeader> out;
  out.reserve(headers.size());
  for (auto& [name, value] : headers) {
    out.push_back(HttpHeader{name.data(), static_cast<std::uint32_t>(name.size()), value.data(),
                             static_cast<std::uint32_t>(value.size())});
  }
  return out;
}

}  // namespace

BlockingClient::BlockingClient(int fd, std::unique_ptr<ws::ProtocolHandle> handle, Options options)
    : fd_(fd), handle_(std::move(handle)), options_(std::move(options)) {}

BlockingClient::~BlockingClient() {
  if (fd_ >= 0) ::close(fd_);
}

std::unique_ptr<BlockingClient> BlockingClient::connect(std::uint16_t port, const Options& options,
                                                        std::string* error) {
  std::unique_ptr<ws::ProtocolHandle> handle;
  Result r = ws::ProtocolHandle::create(ws::Role::client, options.properties.data(),
                                        static_cast<std::uint32_t>(options.properties.size()),
                                        &handle);
  if (r != Result::ok) {
    *error = "create client handle: " + std::string(ws::symbol(r));
    return nullptr;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return nullptr;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return nullptr;
  }
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  std::unique_ptr<BlockingClient> client(new BlockingClient(fd, std::move(handle), options));
  if (!client->handshake(port, error)) return nullptr;
  return client;
}

bool BlockingClient::handshake(std::uint16_t port, std::string* error) {
  // The initial headers, as .NET passes them, plus the caller's.
  std::vector<std::pair<std::string, std::string>> initial = {{"Connection", "Upgrade"},
                                                              {"Upgrade", "websocket"}};
  for (const auto& h : options_.extra_headers) initial.push_back(h);
  std::vector<HttpHeader> initial_views = header_views(initial);
  std::vector<const char*> subprotocols;
  for (const auto& s : options_.subprotocols) subprotocols.push_back(s.c_str());

  HttpHeader* additional = nullptr;
  std::uint32_t additional_count = 0;
  Result r = handle_->begin_client_handshake(
      subprotocols.empty() ? nullptr : subprotocols.data(),
      static_cast<std::uint32_t>(subprotocols.size()), nullptr, 0, initial_views.data(),
      static_cast<std::uint32_t>(initial_views.size()), &additional, &additional_count);
  if (r != Result::ok) {
    *error = "begin_client_handshake: " + std::string(ws::symbol(r));
    return false;
  }
  auto merged = ws::merge_request_headers(initial_views.data(),
                                          static_cast<std::uint32_t>(initial_views.size()),
                                          additional, additional_count);

  std::string request = "GET " + options_.path + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                        std::to_string(port) + "\r\n";
  for (const auto& [name, value] : merged) {
    if (ws::iequals(name, "Host")) continue;
    request += name + ": " + value + "\r\n";
  }
  request += "\r\n";
  Buffer out{};
  out.data.buffer = reinterpret_cast<std::uint8_t*>(request.data());
  out.data.length = static_cast<std::uint32_t>(request.size());
  if (!write_all(&out, 1)) {
    *error = "writing the upgrade request failed";
    return false;
  }

  // The response's status line and headers, up to the size limit; what follows is frame data.
  std::string head;
  std::size_t end = std::string::npos;
  std::uint8_t chunk[4096];
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    if (head.size() > options_.max_response_header_bytes) {
      *error = "response headers exceed the size limit";
      return false;
    }
    std::uint32_t n = read_some(chunk, sizeof chunk);
    if (n == 0) {
      *error = timed_out_ ? "timed out reading the response" : "EOF before the response headers";
      return false;
    }
    head.append(reinterpret_cast<const char*>(chunk), n);
  }
  if (end + 4 > options_.max_response_header_bytes) {
    *error = "response headers exceed the size limit";
    return false;
  }
  pending_input_.assign(head.begin() + static_cast<std::ptrdiff_t>(end + 4), head.end());
  pending_offset_ = 0;
  head.resize(end + 2);  // keep each line's CRLF

  std::string_view rest(head);
  std::size_t eol = rest.find("\r\n");
  std::string_view status_line = rest.substr(0, eol);
  rest.remove_prefix(eol + 2);
  if (status_line.size() < 12 || status_line.substr(0, 9) != "HTTP/1.1 ") {
    *error = "bad status line: " + std::string(status_line);
    return false;
  }
  status_code_ = std::atoi(std::string(status_line.substr(9, 3)).c_str());
  while (!rest.empty()) {
    eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest.remove_prefix(eol + 2);
    std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      *error = "bad header line: " + std::string(line);
      return false;
    }
    response_headers_.emplace_back(std::string(line.substr(0, colon)),
                                   std::string(trim_ows(line.substr(colon + 1))));
  }
  if (status_code_ != 101) {
    *error = "status " + std::to_string(status_code_) + " instead of 101";
    return false;
  }
  auto response_copy = response_headers_;
  std::vector<HttpHeader> response_views = header_views(response_copy);
  std::uint32_t selected_subprotocol = 0;
  r = handle_->end_client_handshake(response_views.data(),
                                    static_cast<std::uint32_t>(response_views.size()), nullptr,
                                    nullptr, subprotocols.empty() ? nullptr : &selected_subprotocol);
  if (r != Result::ok) {
    *error = "end_client_handshake: " + std::string(ws::symbol(r));
    return false;
  }
  return true;
}

bool BlockingClient::write_all(const Buffer* buffers, std::uint32_t count) {
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::uint8_t* p = buffers[i].data.buffer;
    std::size_t left = buffers[i].data.length;
    while (left > 0) {
      ssize_t n = ::send(fd_, p, left, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }
  return true;
}

std::uint32_t BlockingClient::read_some(std::uint8_t* buffer, std::uint32_t length) {
  if (pending_offset_ < pending_input_.size()) {
    std::size_t n = std::min<std::size_t>(length, pending_input_.size() - pending_offset_);
    std::memcpy(buffer, pending_input_.data() + pending_offset_, n);
    pending_offset_ += n;
    return static_cast<std::uint32_t>(n);
  }
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    int ready = ::poll(&p, 1, options_.io_timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) timed_out_ = true;
    if (ready <= 0) return 0;
    ssize_t n = ::recv(fd_, buffer, length, 0);
    if (n < 0 && errno == EINTR) continue;
    return n < 0 ? 0 : static_cast<std::uint32_t>(n);
  }
}

Result BlockingClient::pump(const bool& done) {
  while (!done) {
    Buffer buffers[2]{};
    std::uint32_t count = 2;
    Action action = Action::no_action;
    BufferType type = BufferType::binary_message;
    void* app_context = nullptr;
    void* action_context = nullptr;
    Result r = handle_->get_action(ActionQueue::all, buffers, &count, &action, &type, &app_context,
                                   &action_context);
    if (r != Result::ok) return r;
    switch (action) {
      case Action::no_action:
        return Result::ok;
      case Action::send_to_network: {
        std::uint32_t total = 0;
        for (std::uint32_t i = 0; i < count; ++i) total += buffers[i].data.length;
        // A failed write reports 0 bytes: the engine drops the frame (README: CompleteAction).
        handle_->complete_action(action_context, write_all(buffers, count) ? total : 0);
        break;
      }
      case Action::indicate_send_complete:
        if (app_context == wait_context_) wait_done_ = true;
        handle_->complete_action(action_context, 0);
        break;
      case Action::receive_from_network:
        handle_->complete_action(action_context,
                                 read_some(buffers[0].data.buffer, buffers[0].data.length));
        break;
      case Action::indicate_receive_complete:
        if (app_context == wait_context_ && wait_chunk_ != nullptr) {
          Chunk& c = *wait_chunk_;
          c.type = type;
          const std::uint8_t* p;
          std::uint32_t n;
          if (type == BufferType::close) {
            p = buffers[0].close_status.reason;
            n = buffers[0].close_status.reason_length;
            c.close_status = buffers[0].close_status.status;
          } else {
            p = buffers[0].data.buffer;
            n = buffers[0].data.length;
          }
          c.data.assign(p, p + (p == nullptr ? 0 : n));
          wait_done_ = true;
        }
        handle_->complete_action(action_context, 0);
        break;
    }
  }
  return Result::ok;
}

Result BlockingClient::send(BufferType type, const void* data, std::size_t length) {
  Buffer b{};
  b.data.buffer = static_cast<std::uint8_t*>(const_cast<void*>(data));
  b.data.length = static_cast<std::uint32_t>(length);
  void* context = reinterpret_cast<void*>(next_context_++);
  Result r = handle_->send(type, &b, context);
  if (r != Result::ok) return r;
  wait_context_ = context;
  wait_chunk_ = nullptr;
  wait_done_ = false;
  r = pump(wait_done_);
  if (r == Result::ok && !wait_done_) r = Result::fail;  // the loop stopped before completion
  if (r != Result::ok) last_error_ = r;
  return r;
}

Result BlockingClient::send_close(std::uint16_t status, std::string_view reason) {
  Buffer b{};
  b.close_status.reason =
      reason.empty() ? nullptr
                     : reinterpret_cast<std::uint8_t*>(const_cast<char*>(reason.data()));
  b.close_status.reason_length = static_cast<std::uint32_t>(reason.size());
  b.close_status.status = status;
  void* context = reinterpret_cast<void*>(next_context_++);
  Result r = handle_->send(BufferType::close, status == 0 ? nullptr : &b, context);
  if (r != Result::ok) return r;
  wait_context_ = context;
  wait_chunk_ = nullptr;
  wait_done_ = false;
  r = pump(wait_done_);
  if (r == Result::ok && !wait_done_) r = Result::fail;
  if (r != Result::ok) last_error_ = r;
  return r;
}

Result BlockingClient::send_control(BufferType type) {
  void* context = reinterpret_cast<void*>(next_context_++);
  Result r = handle_->send(type, nullptr, context);
  if (r != Result::ok) return r;
  wait_context_ = context;
  wait_chunk_ = nullptr;
  wait_done_ = false;
  r = pump(wait_done_);
  if (r == Result::ok && !wait_done_) r = Result::fail;
  if (r != Result::ok) last_error_ = r;
  return r;
}

Result BlockingClient::receive(Chunk* out, std::size_t app_buffer_size) {
  std::vector<std::uint8_t> app(app_buffer_size);
  Buffer b{};
  b.data.buffer = app.data();
  b.data.length = static_cast<std::uint32_t>(app.size());
  void* context = reinterpret_cast<void*>(next_context_++);
  Result r = handle_->receive(app_buffer_size == 0 ? nullptr : &b, context);
  if (r != Result::ok) return r;
  wait_context_ = context;
  wait_chunk_ = out;
  wait_done_ = false;
  r = pump(wait_done_);
  wait_chunk_ = nullptr;
  if (r == Result::ok && !wait_done_) r = Result::fail;
  if (r != Result::ok) last_error_ = r;
  return r;
}

BlockingClient::Message BlockingClient::receive_message(std::size_t app_buffer_size) {
  Message m;
  for (;;) {
    Chunk c;
    Result r = receive(&c, app_buffer_size);
    if (r != Result::ok) {
      last_error_ = r;
      m.type = BufferType::close;
      return m;
    }
    ++m.chunks;
    m.data.insert(m.data.end(), c.data.begin(), c.data.end());
    m.type = c.type;
    m.close_status = c.close_status;
    if (!ws::is_fragment_type(c.type)) return m;
  }
}

void BlockingClient::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

}  // namespace wsgate::test
