#include "service/session/session_machine.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "service/net/http_response.h"
#include "service/ws/handshake.h"

namespace wsgate::session {
namespace {


ws::BufferType buffer_type_for(OutgoingMessage::Kind kind, bool final) {
  switch (kind) {
    case OutgoingMessage::Kind::text: return ws::BufferType::utf8_message;
    case OutgoingMessage::Kind::binary: return ws::BufferType::binary_message;
    case OutgoingMessage::Kind::text_fragment:
      return final ? ws::BufferType::utf8_message : ws::BufferType::utf8_fragment;
    case OutgoingMessage::Kind::binary_fragment:
      return final ? ws::BufferType::binary_message : ws::BufferType::binary_fragment;
    case OutgoingMessage::Kind::ping: return ws::BufferType::ping_pong;
    case OutgoingMessage::Kind::pong: return ws::BufferType::unsolicited_pong;
    case OutgoingMessage::Kind::close: return ws::BufferType::close;
  }
  return ws::BufferType::binary_message;
}

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; }

// Trace level: the frame whose header starts the engine's first buffer (it always does).
void trace_frame_out(SessionTrace& trace, const ws::Buffer& first) {
  const ws::ParseResult p = ws::parse_frame_header(first.data.buffer, first.data.length);
  if (p.status == ws::ParseStatus::complete) {
    trace.frame(Direction::out, p.header.opcode, p.header.payload_length, p.header.fin);
  }
}

// Trace level: what the engine indicated (the message's opcode; a close's length counts its code).
void trace_frame_in(SessionTrace& trace, ws::BufferType type, const ws::Buffer& b) {
  if (type == ws::BufferType::close) {
    const bool status = b.close_status.status != close_code(ws::CloseStatus::empty);
    return trace.frame(Direction::in, ws::Opcode::close,
                       status ? b.close_status.reason_length + 2u : 0u, true);
  }
  const ws::Opcode op = ws::is_data_type(type) ? (ws::is_text_type(type) ? ws::Opcode::text
                                                                         : ws::Opcode::binary)
                                               : ws::Opcode::pong;
  trace.frame(Direction::in, op, b.data.length, !ws::is_fragment_type(type));
}

}  // namespace

const char* to_string(Cause cause) {
  switch (cause) {
    case Cause::none: return "none";
    case Cause::bad_request: return "bad_request";
    case Cause::destination_denied: return "destination_denied";
    case Cause::dns_failure: return "dns_failure";
    case Cause::connection_refused: return "connection_refused";
    case Cause::connect_timeout: return "connect_timeout";
    case Cause::network_error: return "network_error";
    case Cause::tls_error: return "tls_error";
    case Cause::tls_handshake_failed: return "tls_handshake_failed";
    case Cause::handshake_timeout: return "handshake_timeout";
    case Cause::upgrade_refused: return "upgrade_refused";
    case Cause::handshake_rejected: return "handshake_rejected";
    case Cause::protocol_violation: return "protocol_violation";
    case Cause::message_too_big: return "message_too_big";
    case Cause::memory_budget: return "memory_budget";
    case Cause::session_limit: return "session_limit";
    case Cause::tls_version_mismatch: return "tls_version_mismatch";
    case Cause::connection_lost: return "connection_lost";
    case Cause::ping_timeout: return "ping_timeout";
    case Cause::close_timeout: return "close_timeout";
    case Cause::shutdown: return "shutdown";
    case Cause::fd_limit: return "fd_limit";
    case Cause::proxy_refused: return "proxy_refused";
    case Cause::proxy_auth_required: return "proxy_auth_required";
    case Cause::proxy_connect_failed: return "proxy_connect_failed";
    case Cause::proxy_timeout: return "proxy_timeout";
  }
  return "unknown";
}

SessionMachine::SessionMachine(Settings settings)
    : settings_(std::move(settings)),
      trace_(trace_or_none(settings_.trace)),
      message_charge_(settings_.budget) {}

SessionMachine::~SessionMachine() = default;

std::optional<ws::State> SessionMachine::engine_state() const {
  if (!engine_) return std::nullopt;
  return engine_->state();
}

bool SessionMachine::close_received() const noexcept {
  if (!engine_) return false;
  const ws::State s = engine_->state();
  return s == ws::State::close_received || s == ws::State::closed;
}

Actions SessionMachine::take() {
  Actions a = std::move(out_);
  out_ = Actions{};
  return a;
}

void SessionMachine::arm(TimePoint deadline) {
  deadline_ = deadline;
  out_.timer = deadline;
}

// ---------------------------------------------------------------------------------------------
// Connect and upgrade.

Actions SessionMachine::start(TimePoint now) {
  if (phase_ != Phase::idle) return take();
  phase_ = Phase::connecting;
  started_at_ = now;
  arm(now + settings_.connect_timeout);
  return take();
}

Actions SessionMachine::tunnel_requested(TimePoint) {
  if (phase_ == Phase::connecting) tunnel_requested_ = true;
  return take();
}

Actions SessionMachine::transport_connected(TimePoint now) {
  if (phase_ != Phase::connecting) return take();
  phase_ = Phase::handshaking;
  connected_at_ = now;
  arm(now + settings_.handshake_timeout);
  return take();
}

Actions SessionMachine::transport_failed(Failure failure) {
  fail(std::move(failure));
  return take();
}

Actions SessionMachine::transport_ready(TimePoint) {
  if (phase_ != Phase::handshaking) return take();
  ws::Property props[2];
  std::uint32_t receive_size = kReceiveBufferSize;
  std::uint32_t send_size = kSendBufferSize;
  props[0] = {ws::PropertyType::receive_buffer_size, &receive_size, sizeof receive_size};
  props[1] = {ws::PropertyType::send_buffer_size, &send_size, sizeof send_size};
  if (ws::ProtocolHandle::create(ws::Role::client, props, 2, &engine_) != ws::Result::ok) {
    fail({Cause::network_error, "cannot create the protocol handle"});
    return take();
  }
  std::vector<const char*> subprotocols, extensions;
  for (const std::string& s : settings_.subprotocols) subprotocols.push_back(s.c_str());
  for (const std::string& s : settings_.extensions) extensions.push_back(s.c_str());
  // permessage-deflate is offered last (after any extension the caller named).
  const std::string deflate_offered =
      settings_.compression.enabled ? deflate_offer(settings_.compression) : std::string();
  if (!deflate_offered.empty()) extensions.push_back(deflate_offered.c_str());
  std::vector<ws::HttpHeader> initial;
  for (auto& [name, value] : settings_.headers) {
    initial.push_back({name.data(), static_cast<std::uint32_t>(name.size()), value.data(),
                       static_cast<std::uint32_t>(value.size())});
  }
  ws::HttpHeader* additional = nullptr;
  std::uint32_t additional_count = 0;
  const ws::Result r = engine_->begin_client_handshake(
      subprotocols.data(), static_cast<std::uint32_t>(subprotocols.size()), extensions.data(),
      static_cast<std::uint32_t>(extensions.size()), initial.data(),
      static_cast<std::uint32_t>(initial.size()), &additional, &additional_count);
  if (r != ws::Result::ok) {
    Failure f{Cause::bad_request, "the request's subprotocols, extensions or headers are invalid: " +
                                      std::string(ws::symbol(r))};
    f.engine_result = r;
    fail(std::move(f));
    return take();
  }
  request_text_ = "GET " + settings_.url.target + " HTTP/1.1\r\nHost: " +
                  settings_.url.host_header + "\r\n";
  bool has_user_agent = false;
  for (const auto& [name, value] :
       ws::merge_request_headers(initial.data(), static_cast<std::uint32_t>(initial.size()),
                                 additional, additional_count)) {
    has_user_agent |= ws::iequals(name, "user-agent");
    request_text_ += name + ": " + value + "\r\n";
  }
  if (!has_user_agent) request_text_ += "User-Agent: wsgate\r\n";
  request_text_ += "\r\n";
  phase_ = Phase::upgrading;
  if (trace_.debug()) trace_.upgrade_sent(settings_.url.target, request_text_.size());
  write_ = {Io::request, nullptr};
  out_.write.push_back({request_text_.data(), request_text_.size()});
  return take();
}

void SessionMachine::read_response() {
  constexpr std::size_t kChunk = 4096;
  response_buffer_.resize(response_used_ + kChunk);
  read_ = {Io::response, nullptr};
  out_.read = MutableBuffer{response_buffer_.data() + response_used_, kChunk};
}

void SessionMachine::on_response(TimePoint now) {
  net::HeadParse parsed = net::parse_response_head(response_buffer_.data(), response_used_,
                                                   settings_.max_header_bytes);
  if (parsed.status == net::HeadStatus::need_more) return read_response();
  if (parsed.status == net::HeadStatus::error) {
    return fail({Cause::handshake_rejected, "bad upgrade response: " + parsed.error});
  }
  net::HttpResponseHead& head = parsed.head;
  if (trace_.debug()) trace_.upgrade_response(head.status);
  if (head.status != 101) {
    Failure f{Cause::upgrade_refused, "the server refused the upgrade: HTTP " +
                                          std::to_string(head.status) + " " + head.reason};
    f.http_status = head.status;
    f.http_headers = head.headers;
    return fail(std::move(f));
  }
  std::vector<ws::HttpHeader> response;
  for (auto& [name, value] : head.headers) {
    response.push_back({name.data(), static_cast<std::uint32_t>(name.size()), value.data(),
                        static_cast<std::uint32_t>(value.size())});
  }
  std::uint32_t subprotocol = 0xFFFFFFFFu;
  const std::size_t offered = settings_.extensions.size() + (settings_.compression.enabled ? 1 : 0);
  std::vector<std::uint32_t> extension_indices(offered + 1);
  std::uint32_t extension_count = static_cast<std::uint32_t>(offered);
  const ws::Result r = engine_->end_client_handshake(
      response.data(), static_cast<std::uint32_t>(response.size()), extension_indices.data(),
      &extension_count, &subprotocol);
  if (r != ws::Result::ok) {
    Failure f{Cause::handshake_rejected,
              "the server's upgrade response is not acceptable (" + std::string(ws::symbol(r)) +
                  ")"};
    f.engine_result = r;
    f.http_status = head.status;
    f.http_headers = head.headers;
    return fail(std::move(f));
  }
  // Frames that arrived with the response go to the engine before anything is read.
  response_buffer_.resize(response_used_);
  leftover_offset_ = parsed.consumed;
  if (leftover_offset_ == response_buffer_.size()) {
    response_buffer_.clear();
    response_buffer_.shrink_to_fit();
    leftover_offset_ = 0;
  }
  request_text_.clear();
  request_text_.shrink_to_fit();
  phase_ = Phase::open;
  Delivery d;
  d.kind = Delivery::Kind::open;
  if (subprotocol < settings_.subprotocols.size()) {
    d.open.subprotocol = settings_.subprotocols[subprotocol];
  }
  for (std::uint32_t i = 0; i < extension_count; ++i) {
    if (extension_indices[i] < settings_.extensions.size()) {
      d.open.extensions.push_back(settings_.extensions[extension_indices[i]]);
      continue;
    }
    // permessage-deflate: the engine checked only its name; its parameters are checked here.
    DeflateNegotiation n = negotiate_deflate(head.headers, settings_.compression);
    if (!n.agreement) {
      Failure f{Cause::handshake_rejected,
                "the server's upgrade response is not acceptable: " +
                    (n.error.empty() ? std::string("no permessage-deflate element") : n.error)};
      f.http_status = head.status;
      f.http_headers = head.headers;
      return fail(std::move(f));
    }
    deflate_ = std::make_unique<PerMessageDeflate>(*n.agreement);
    engine_->allow_rsv1();
    d.open.extensions.push_back(std::move(n.element));  // as negotiated, parameters included
  }
  d.open.http_status = head.status;
  d.open.response_headers = std::move(head.headers);
  if (trace_.debug()) trace_.negotiated(d.open.subprotocol, d.open.extensions);
  d.open.connect_time = std::chrono::duration_cast<std::chrono::milliseconds>(connected_at_ - started_at_);
  d.open.handshake_time = std::chrono::duration_cast<std::chrono::milliseconds>(now - connected_at_);
  out_.deliver.push_back(std::move(d));
  last_activity_ = last_data_activity_ = now;
  deadline_.reset();
  keepalive_deadline(now);
  pump(now);
}

// ---------------------------------------------------------------------------------------------
// Transport completions.

Actions SessionMachine::write_done(TimePoint now, std::size_t bytes, bool ok,
                                   std::string_view error) {
  const auto [io, context] = std::exchange(write_, Pending{});
  if (trace_.trace()) trace_.io(Direction::out, bytes);
  if (phase_ == Phase::done) return take();
  switch (io) {
    case Io::request:
      if (!ok) {
        fail({Cause::network_error,
              "cannot send the upgrade request: " + std::string(error)});
      } else {
        read_response();
      }
      return take();
    case Io::send_queue:
    case Io::receive_queue:
    case Io::gathered:
      if (io == Io::gathered) {
        // Its frames were completed when they were copied. A large buffer is given back, so a
        // session that was busy once does not keep it while idle.
        gather_.clear();
        if (gather_.capacity() > 4096) gather_.shrink_to_fit();
      } else {
        engine_->complete_action(context, ok ? static_cast<std::uint32_t>(bytes) : 0);
      }
      if (!ok) {
        finish({close_code(ws::CloseStatus::aborted), "", Initiator::server, false,
                Failure{Cause::network_error, "write failed: " + std::string(error)}});
        return take();
      }
      last_activity_ = now;
      if (held_send_context_ != nullptr) {
        write_ = {Io::send_queue, std::exchange(held_send_context_, nullptr)};
        out_.write = std::move(held_send_);
        held_send_.clear();
      } else if (held_pong_context_ != nullptr) {
        write_ = {Io::receive_queue, std::exchange(held_pong_context_, nullptr)};
        out_.write = std::move(held_pong_);
        held_pong_.clear();
      }
      pump(now);
      return take();
    default:
      return take();
  }
}

Actions SessionMachine::bytes_read(TimePoint now, std::size_t bytes, bool ok,
                                   std::string_view error) {
  const auto [io, context] = std::exchange(read_, Pending{});
  if (trace_.trace()) trace_.io(Direction::in, bytes);
  if (phase_ == Phase::done) return take();
  switch (io) {
    case Io::response:
      if (!ok) {
        response_buffer_.resize(response_used_);
        fail({Cause::network_error, "connection lost during the upgrade: " +
                                        std::string(error.empty() ? "end of file" : error)});
        return take();
      }
      response_used_ += bytes;
      on_response(now);
      return take();
    case Io::receive_queue:
      // EOF and errors complete with 0 bytes: the engine reports 1006.
      engine_->complete_action(context, ok ? static_cast<std::uint32_t>(bytes) : 0);
      if (ok) last_activity_ = now;
      pump(now);
      return take();
    default:
      return take();
  }
}

// ---------------------------------------------------------------------------------------------
// Client events.

Actions SessionMachine::client_message(TimePoint now, OutgoingMessage message, bool* room) {
  *room = false;
  if (phase_ != Phase::open || closing()) return take();  // dropped: the session ends
  if (message.kind == OutgoingMessage::Kind::close) {
    begin_close(now, message.close_code, std::move(message.data), Initiator::client,
                std::nullopt);
    return take();
  }
  queued_bytes_ += message.data.size();
  queued_.push_back(std::move(message));
  engine_send(queued_.back());
  if (phase_ != Phase::open) return take();
  if (queued_bytes_ < settings_.max_queued_bytes) {
    *room = true;
  } else {
    ++waiting_for_room_;
    if (trace_.debug()) trace_.queue_full(queued_bytes_, settings_.max_queued_bytes);
  }
  pump(now);
  return take();
}

Actions SessionMachine::client_close(TimePoint now, std::uint16_t code, std::string reason,
                                     Initiator initiator) {
  begin_close(now, code, std::move(reason), initiator, std::nullopt);
  return take();
}

Actions SessionMachine::shutdown(TimePoint now, ShutdownReason) {
  begin_close(now, close_code(ws::CloseStatus::endpoint_unavailable), "gateway shutting down",
              Initiator::gateway, Failure{Cause::shutdown, "the gateway is shutting down"});
  return take();
}

void SessionMachine::begin_close(TimePoint now, std::uint16_t code, std::string reason,
                                 Initiator initiator, std::optional<Failure> failure) {
  if (phase_ == Phase::done) return;
  if (phase_ != Phase::open) {
    return fail({Cause::shutdown, "closed before the connection was open"});
  }
  if (closing()) return;
  CloseInfo report{code == 0 ? close_code(ws::CloseStatus::empty) : code, reason, initiator, false,
                   std::move(failure)};
  send_close(now, code, reason, std::move(report), /*unanswered_is_failure=*/true);
  pump(now);
}

Actions SessionMachine::client_paused(TimePoint now, bool paused) {
  if (paused != reading_paused_ && trace_.debug()) trace_.reads_paused(paused);
  reading_paused_ = paused;
  if (!paused && (phase_ == Phase::open)) pump(now);
  return take();
}

Actions SessionMachine::abort(Failure failure) {
  if (phase_ == Phase::done) return take();
  if (phase_ != Phase::open) {
    fail(std::move(failure));
  } else {
    finish({close_code(ws::CloseStatus::aborted), "", Initiator::gateway, false, std::move(failure)});
  }
  return take();
}

// ---------------------------------------------------------------------------------------------
// Timers.

Actions SessionMachine::timer_fired(TimePoint now) {
  if (phase_ == Phase::done || !deadline_) return take();
  if (now < *deadline_) {
    out_.timer = *deadline_;  // early or stale: wait on
    return take();
  }
  deadline_.reset();
  switch (phase_) {
    case Phase::connecting:
      if (trace_.debug()) trace_.timeout(Timeout::connect, settings_.connect_timeout);
      if (!settings_.proxy_name.empty()) {
        const std::string target = net::describe_endpoint(settings_.url);
        fail({Cause::proxy_timeout,
              tunnel_requested_
                  ? "the HTTP proxy " + settings_.proxy_name + " did not answer CONNECT " + target +
                        " within " + ms(settings_.connect_timeout)
                  : "no connection to the HTTP proxy " + settings_.proxy_name + " within " +
                        ms(settings_.connect_timeout)});
        break;
      }
      fail({Cause::connect_timeout, "no connection to " + net::describe_endpoint(settings_.url) +
                                        " within " + ms(settings_.connect_timeout)});
      break;
    case Phase::handshaking:
    case Phase::upgrading:
      if (trace_.debug()) trace_.timeout(Timeout::handshake, settings_.handshake_timeout);
      fail({Cause::handshake_timeout, "the TLS/HTTP upgrade handshake did not finish within " +
                                          ms(settings_.handshake_timeout)});
      break;
    case Phase::open:
      if (closing()) {
        if (trace_.debug()) trace_.timeout(Timeout::close, settings_.close_timeout);
        CloseInfo info = close_report();
        if (unanswered_is_failure_) {
          info.clean = false;
          if (!info.failure) {
            info.failure = Failure{Cause::close_timeout, "the server did not answer the close within " +
                                                             ms(settings_.close_timeout)};
          }
        }
        finish(std::move(info));
      } else {
        on_keepalive(now);
      }
      break;
    default:
      break;
  }
  return take();
}

void SessionMachine::keepalive_deadline(TimePoint now) {
  using std::chrono::milliseconds;
  // Wake at the shortest of the intervals in use (the idle timeout checked twice per period).
  milliseconds period{0};
  for (milliseconds candidate : {settings_.keepalive_interval, settings_.ping_timeout,
                                 settings_.idle_timeout / 2}) {
    if (candidate.count() > 0 && (period.count() == 0 || candidate < period)) period = candidate;
  }
  if (period.count() == 0) return;
  arm(now + period);
}

void SessionMachine::on_keepalive(TimePoint now) {
  if (settings_.idle_timeout.count() > 0 &&
      now - last_data_activity_ >= settings_.idle_timeout) {
    // No message either way for idle_timeout: a normal close initiated by the gateway.
    if (trace_.debug()) trace_.timeout(Timeout::idle, settings_.idle_timeout);
    return begin_close(now, close_code(ws::CloseStatus::endpoint_unavailable), "idle timeout",
                       Initiator::gateway, std::nullopt);
  }
  if (settings_.keepalive_interval.count() == 0 && settings_.ping_timeout.count() == 0) {
    return keepalive_deadline(now);  // only the idle timeout is in use
  }
  if (ping_outstanding_ && now - ping_sent_at_ >= settings_.ping_timeout) {
    if (trace_.debug()) trace_.timeout(Timeout::ping, settings_.ping_timeout);
    return finish({close_code(ws::CloseStatus::aborted), "", Initiator::gateway, false,
                   Failure{Cause::ping_timeout, "no pong within " + ms(settings_.ping_timeout) +
                                                    ": the server is unresponsive"}});
  }
  const auto idle = now - last_activity_;
  const auto interval = settings_.keepalive_interval.count() > 0 ? settings_.keepalive_interval
                                                                 : settings_.ping_timeout;
  if (idle >= interval && queued_.empty()) {
    OutgoingMessage m;
    if (settings_.ping_timeout.count() > 0 && !ping_outstanding_) {
      m.kind = OutgoingMessage::Kind::ping;
      ping_outstanding_ = true;
      ping_sent_at_ = now;
    } else {
      m.kind = OutgoingMessage::Kind::pong;
    }
    queued_.push_back(std::move(m));
    engine_send(queued_.back());
    last_activity_ = now;
    if (phase_ == Phase::done) return;
    keepalive_deadline(now);
    pump(now);
    return;
  }
  keepalive_deadline(now);
}

// ---------------------------------------------------------------------------------------------
// The engine's action loop.

void SessionMachine::engine_send(OutgoingMessage& m) {
  const ws::BufferType type = buffer_type_for(m.kind, m.final);
  // permessage-deflate: whole messages of at least the threshold are compressed (a fragmented
  // one goes out as it is: its size is unknown when its first fragment must leave).
  const bool whole = m.kind == OutgoingMessage::Kind::text || m.kind == OutgoingMessage::Kind::binary;
  const bool compress = deflate_ && whole && m.data.size() >= settings_.compression.threshold_bytes &&
                        deflate_->deflate(reinterpret_cast<const std::uint8_t*>(m.data.data()),
                                          m.data.size(), &m.deflated);
  const std::string& payload = compress ? m.deflated : m.data;
  ws::Buffer buffer{};
  const ws::Buffer* argument = nullptr;
  if (type == ws::BufferType::close) {
    if (m.close_code != 0) {
      buffer.close_status = {
          m.data.empty() ? nullptr
                         : reinterpret_cast<std::uint8_t*>(const_cast<char*>(m.data.data())),
          static_cast<std::uint32_t>(m.data.size()), m.close_code};
      argument = &buffer;
    }
  } else if (ws::is_data_type(type)) {
    buffer.data = {reinterpret_cast<std::uint8_t*>(const_cast<char*>(payload.data())),
                   static_cast<std::uint32_t>(payload.size())};
    argument = &buffer;
  }
  const ws::Result r = engine_->send(type, argument, nullptr, compress);
  if (r != ws::Result::ok) {
    // The caller validated the message; the engine refusing it means the session cannot go on.
    queued_bytes_ -= m.data.size();
    queued_.pop_back();
    finish({close_code(ws::CloseStatus::aborted), "", Initiator::gateway, false,
            Failure{Cause::bad_request,
                    std::string("the engine refused the message: ") + std::string(ws::symbol(r))}});
  }
}

void SessionMachine::pump(TimePoint now) {
  bool progress = true;
  while (progress && phase_ == Phase::open) {
    progress = false;
    if (write_.io == Io::none) progress |= pump_send(now);
    if (phase_ != Phase::open) return;
    if (read_.io == Io::none && held_pong_context_ == nullptr &&
        write_.io != Io::receive_queue) {
      progress |= pump_receive(now);
    }
  }
}

void SessionMachine::start_write(Io io, void* context, const ws::Buffer* buffers,
                                 std::uint32_t count) {
  std::vector<ConstBuffer> out;
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    out.push_back({buffers[i].data.buffer, buffers[i].data.length});
  }
  if (write_.io != Io::none) {  // only the receive side's pong can meet a busy writer
    held_pong_context_ = context;
    held_pong_ = std::move(out);
    return;
  }
  write_ = {io, context};
  out_.write = std::move(out);
}

bool SessionMachine::pump_send(TimePoint now) {
  bool progress = false;
  while (phase_ == Phase::open && gather_.size() < kGatherLimit) {
    ws::Buffer buffers[2];
    std::uint32_t count = 2;
    ws::Action action;
    ws::BufferType type;
    void* context = nullptr;
    const ws::Result r = engine_->get_action(ws::ActionQueue::send, buffers, &count, &action,
                                             &type, nullptr, &context);
    if (r != ws::Result::ok) break;
    if (action == ws::Action::indicate_send_complete) {
      engine_->complete_action(context, 0);
      release_written(now);
      progress = true;
      continue;
    }
    if (action != ws::Action::send_to_network) break;
    if (trace_.trace()) trace_frame_out(trace_, buffers[0]);
    std::size_t total = 0;
    for (std::uint32_t i = 0; i < count; ++i) total += buffers[i].data.length;
    if (type == ws::BufferType::close || (gather_.empty() && total >= kZeroCopyFrom)) {
      if (gather_.empty()) {
        start_write(Io::send_queue, context, buffers, count);  // written from the engine's buffer
        return progress;
      }
      held_send_context_ = context;  // after the gathered frames
      held_send_.clear();
      for (std::uint32_t i = 0; i < count; ++i) {
        held_send_.push_back({buffers[i].data.buffer, buffers[i].data.length});
      }
      break;
    }
    for (std::uint32_t i = 0; i < count; ++i) {
      gather_.append(reinterpret_cast<const char*>(buffers[i].data.buffer), buffers[i].data.length);
    }
    engine_->complete_action(context, static_cast<std::uint32_t>(total));
    progress = true;
  }
  if (!gather_.empty() && write_.io == Io::none && phase_ == Phase::open) {
    write_ = {Io::gathered, nullptr};
    out_.write.push_back({gather_.data(), gather_.size()});
  }
  return progress;
}

void SessionMachine::release_written(TimePoint now) {
  if (queued_.empty()) return;
  OutgoingMessage done = std::move(queued_.front());
  queued_.pop_front();
  queued_bytes_ -= done.data.size();
  const bool is_data = done.kind != OutgoingMessage::Kind::ping &&
                       done.kind != OutgoingMessage::Kind::pong &&
                       done.kind != OutgoingMessage::Kind::close;
  if (is_data) {
    counters_.bytes_sent += done.data.size();
    if (done.final) ++counters_.messages_sent;
    last_activity_ = last_data_activity_ = now;
  }
  const std::size_t room_before = out_.room;
  while (waiting_for_room_ != 0 && queued_bytes_ < settings_.max_queued_bytes) {
    --waiting_for_room_;
    ++out_.room;
  }
  if (out_.room != room_before && trace_.debug()) {
    trace_.queue_room(queued_bytes_, out_.room - room_before);
  }
  if (done.kind != OutgoingMessage::Kind::close || !pending_close_) return;
  // Our close is on the wire. The session ends now if the server's close came first, or if
  // nothing more will be parsed (after a violation or a refused message).
  if (close_received() || receive_abandoned_ ||
      (pending_close_->failure && pending_close_->failure->cause == Cause::protocol_violation)) {
    CloseInfo info = std::move(*pending_close_);
    finish(std::move(info));
  }
}

bool SessionMachine::pump_receive(TimePoint now) {
  if (receive_abandoned_) return false;
  if (!receive_queued_ && !reading_paused_ && !close_received()) {
    if (engine_->receive(nullptr, nullptr) == ws::Result::ok) receive_queued_ = true;
  }
  ws::Buffer buffers[2];
  std::uint32_t count = 2;
  ws::Action action;
  ws::BufferType type;
  void* context = nullptr;
  const ws::Result r = engine_->get_action(ws::ActionQueue::receive, buffers, &count, &action,
                                           &type, nullptr, &context);
  if (r != ws::Result::ok) {
    on_protocol_violation(r);
    return false;
  }
  switch (action) {
    case ws::Action::receive_from_network: {
      // A data frame whose header declares more than the message may still take is refused
      // now: waiting for its payload would let a peer hold the session with bytes that can
      // never be accepted.
      const std::uint64_t declared = engine_->receive_frame_remaining();
      const std::uint64_t room = settings_.max_message_bytes -
                                 std::min(message_size_, settings_.max_message_bytes);
      if (declared > room) {
        // The read action stays outstanding and is never completed: nothing more is read.
        on_message_too_big();
        return false;
      }
      const std::size_t leftover = response_buffer_.size() - leftover_offset_;
      if (leftover != 0) {
        const std::size_t n = std::min<std::size_t>(leftover, buffers[0].data.length);
        std::memcpy(buffers[0].data.buffer, response_buffer_.data() + leftover_offset_, n);
        leftover_offset_ += n;
        if (leftover_offset_ == response_buffer_.size()) {
          response_buffer_.clear();
          response_buffer_.shrink_to_fit();
          leftover_offset_ = 0;
        }
        engine_->complete_action(context, static_cast<std::uint32_t>(n));
        return true;
      }
      read_ = {Io::receive_queue, context};
      out_.read = MutableBuffer{buffers[0].data.buffer, buffers[0].data.length};
      return false;
    }
    case ws::Action::indicate_receive_complete: {
      const ws::Buffer result = buffers[0];
      receive_queued_ = false;
      on_indication(now, type, result);  // copies what it keeps before the buffer is released
      if (phase_ != Phase::done) engine_->complete_action(context, 0);
      return true;
    }
    case ws::Action::send_to_network:  // the automatic pong
      if (trace_.trace()) trace_frame_out(trace_, buffers[0]);
      start_write(Io::receive_queue, context, buffers, count);
      return false;
    default:
      return false;
  }
}

void SessionMachine::on_indication(TimePoint now, ws::BufferType type, const ws::Buffer& buffer) {
  if (trace_.trace()) trace_frame_in(trace_, type, buffer);
  if (type == ws::BufferType::close) {
    const std::uint16_t code = buffer.close_status.status;
    std::string reason(reinterpret_cast<const char*>(buffer.close_status.reason),
                       buffer.close_status.reason_length);
    if (code == close_code(ws::CloseStatus::aborted)) {
      // The connection ended without a close frame.
      CloseInfo info = close_report();
      info.code = close_code(ws::CloseStatus::aborted);
      info.clean = false;
      return finish(std::move(info));
    }
    if (closing()) {
      // Our close was answered: the closing handshake is complete once our frame is written.
      CloseInfo info = close_report();
      info.code = code;
      info.reason = reason;
      info.clean = true;
      *pending_close_ = info;
      bool written = true;
      for (const OutgoingMessage& m : queued_) written &= m.kind != OutgoingMessage::Kind::close;
      if (written) finish(std::move(info));
      return;
    }
    // The server closed first: echo its code (RFC 6455 §5.5.1), then report.
    send_close(now, ws::is_valid_wire_close_code(code) ? code : 0, "",
               CloseInfo{code, reason, Initiator::server, true, std::nullopt},
               /*unanswered_is_failure=*/false);
    return;
  }
  if (type == ws::BufferType::ping_pong) {
    ping_outstanding_ = false;
    Delivery d;
    d.kind = Delivery::Kind::pong;
    d.data.assign(reinterpret_cast<const char*>(buffer.data.buffer), buffer.data.length);
    out_.deliver.push_back(std::move(d));
    return;
  }
  // Data.
  const bool text = ws::is_text_type(type);
  const bool final = !ws::is_fragment_type(type);
  if (message_.empty()) message_text_ = text;
  if (deflate_ && engine_->receive_message_rsv1()) {
    if (!inflate_chunk(buffer, text, final)) return;
  } else {
    if (message_size_ + buffer.data.length > settings_.max_message_bytes) {
      return on_message_too_big();
    }
    // Counted as it streams in, chunk by chunk, not once it is whole.
    if (!message_charge_.grow(buffer.data.length, message_size_ + buffer.data.length)) {
      return on_over_budget();
    }
    // The frame's declared length (already checked against max_message_bytes) sizes the buffer
    // once: no doubling and copying as a large message arrives. Pages not yet written are not
    // resident, so the memory used still follows the bytes received (and charged). Not when
    // streaming: each chunk leaves as its own message.
    const std::uint64_t expected =
        message_.size() + buffer.data.length + engine_->receive_frame_remaining();
    if (!settings_.stream_fragments && expected > message_.capacity()) message_.reserve(expected);
    message_.append(reinterpret_cast<const char*>(buffer.data.buffer), buffer.data.length);
    message_size_ += buffer.data.length;
    counters_.bytes_received += buffer.data.length;
  }
  last_activity_ = last_data_activity_ = now;
  if (final) message_size_ = 0;
  if (!settings_.stream_fragments && !final) return;
  if (final) ++counters_.messages_received;
  Delivery d;
  d.kind = Delivery::Kind::message;
  d.text = message_text_;
  d.data = std::move(message_);
  d.final = final;
  d.charge = std::move(message_charge_);
  message_charge_ = net::BudgetCharge(settings_.budget);
  out_.deliver.push_back(std::move(d));
  message_.clear();
}

// A chunk of an RSV1 (compressed) message: inflated straight into message_, at most what
// max_message_bytes still allows (a decompression bomb stops there: 1009), its text checked as
// it is decoded, and the budget charged with the inflated bytes. False: the receive side ended.
bool SessionMachine::inflate_chunk(const ws::Buffer& buffer, bool text, bool final) {
  const std::size_t before = message_.size();
  const std::uint64_t room =
      settings_.max_message_bytes - std::min(message_size_, settings_.max_message_bytes);
  std::string error;
  switch (deflate_->inflate(buffer.data.buffer, buffer.data.length, final, &message_, room,
                            &error)) {
    case PerMessageDeflate::InflateStatus::ok:
      break;
    case PerMessageDeflate::InflateStatus::too_big:
      on_message_too_big();
      return false;
    case PerMessageDeflate::InflateStatus::corrupt: {
      const std::uint16_t code = close_code(ws::CloseStatus::invalid_payload);
      abandon_receive(code, "invalid compressed data",
                      Failure{Cause::protocol_violation,
                              "a compressed message from the server cannot be inflated (" +
                                  error + "); closed with " + std::to_string(code)});
      return false;
    }
  }
  const std::size_t produced = message_.size() - before;
  if (text && !inflated_utf8_.feed(reinterpret_cast<const std::uint8_t*>(message_.data()) + before,
                                   produced, final)) {
    inflated_utf8_.reset();
    const std::uint16_t code = close_code(ws::CloseStatus::invalid_payload);
    abandon_receive(code, "invalid UTF-8",
                    Failure{Cause::protocol_violation,
                            "the server sent invalid UTF-8 in a compressed text message; closed "
                            "with " + std::to_string(code)});
    return false;
  }
  if (final) inflated_utf8_.reset();
  if (!message_charge_.grow(produced, message_size_ + produced)) {
    on_over_budget();
    return false;
  }
  message_size_ += produced;
  counters_.bytes_received += produced;
  return true;
}

void SessionMachine::on_over_budget() {
  const net::MemoryBudget& budget = *settings_.budget;
  abandon_receive(kTryAgainLater, "try again later",
                  Failure{Cause::memory_budget,
                          "a message from the server does not fit the daemon's memory budget "
                          "(limits.memory_budget_bytes = " + std::to_string(budget.limit()) +
                              ", " + std::to_string(budget.used()) + " bytes in use by all sessions)"});
}

void SessionMachine::on_message_too_big() {
  abandon_receive(close_code(ws::CloseStatus::message_too_big), "message too big",
                  Failure{Cause::message_too_big,
                          "a message from the server exceeds max_message_bytes (" +
                              std::to_string(settings_.max_message_bytes) + ")"});
}

void SessionMachine::abandon_receive(std::uint16_t code, const std::string& reason,
                                     Failure failure) {
  message_.clear();
  message_size_ = 0;
  message_charge_.reset();
  receive_abandoned_ = true;
  if (closing()) {
    // Our close is out already; its answer would come after the frame nobody will read.
    CloseInfo info = close_report();
    info.clean = false;
    return finish(std::move(info));
  }
  send_close(TimePoint{}, code, reason,
             CloseInfo{code, reason, Initiator::gateway, false, std::move(failure)},
             /*unanswered_is_failure=*/false);
  flush_close();
}

// The receive side is stopped for good, so the pump loop that called us ends; the close must
// still go out now, not when the close timer fires.
void SessionMachine::flush_close() {
  if (phase_ == Phase::open && write_.io == Io::none) pump_send(last_activity_);
}

void SessionMachine::on_protocol_violation(ws::Result result) {
  if (closing()) {
    CloseInfo info = close_report();
    info.clean = false;
    return finish(std::move(info));
  }
  const std::uint16_t code = engine_->failure_close_code();
  Failure failure{Cause::protocol_violation,
                  "the server violated the WebSocket protocol (" + std::string(ws::symbol(result)) +
                      "); closed with " + std::to_string(code)};
  failure.engine_result = result;
  const std::string reason =
      code == close_code(ws::CloseStatus::invalid_payload) ? "invalid UTF-8" : "protocol error";
  send_close(TimePoint{}, code, reason, CloseInfo{code, reason, Initiator::gateway, false, failure},
             /*unanswered_is_failure=*/false);
  flush_close();
}

void SessionMachine::send_close(TimePoint now, std::uint16_t code, const std::string& reason,
                                CloseInfo report, bool unanswered_is_failure) {
  OutgoingMessage m;
  m.kind = OutgoingMessage::Kind::close;
  m.close_code = code;
  m.data = reason;
  queued_.push_back(std::move(m));
  if (trace_.debug()) trace_.close_sent(report.initiator, code);
  pending_close_ = std::make_unique<CloseInfo>(std::move(report));
  unanswered_is_failure_ = unanswered_is_failure;
  engine_send(queued_.back());
  if (phase_ == Phase::done) return;
  // Callers without a time of their own (a violation found while pumping) pass {}: the close
  // deadline counts from the last I/O, which is this event's.
  const TimePoint base = now == TimePoint{} ? last_activity_ : now;
  arm(base + settings_.close_timeout);
}

// ---------------------------------------------------------------------------------------------
// The end.

void SessionMachine::release_charges() {
  // The bytes stay allocated until the machine is destroyed (the engine may still point into
  // queued_); the budget is given back now.
  message_charge_.reset();
  for (OutgoingMessage& m : queued_) m.charge.reset();
}

void SessionMachine::fail(Failure failure) {
  if (phase_ == Phase::done) return;
  phase_ = Phase::done;
  release_charges();
  deadline_.reset();
  out_.timer.reset();
  out_.read.reset();
  out_.write.clear();
  out_.room = 0;
  out_.finish = std::make_unique<Outcome>();
  out_.finish->opened = false;
  out_.finish->failure = std::move(failure);
}

void SessionMachine::finish(CloseInfo info) {
  if (phase_ == Phase::done) return;
  phase_ = Phase::done;
  release_charges();
  deadline_.reset();
  out_.timer.reset();
  out_.read.reset();
  out_.write.clear();
  waiting_for_room_ = 0;
  out_.room = 0;
  if (trace_.debug()) trace_.closed(info);
  out_.finish = std::make_unique<Outcome>();
  out_.finish->opened = true;
  out_.finish->closed = std::move(info);
}

}  // namespace wsgate::session
