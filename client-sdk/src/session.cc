#include "wsgate/client/session.h"

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "src/internal.h"
#include "wsgate/v1/gateway.grpc.pb.h"

namespace wsgate {

struct Session::Impl {
  std::shared_ptr<detail::ClientCore> core;
  std::unique_ptr<v1::Gateway::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReaderWriter<v1::ClientMessage, v1::ServerMessage>> stream;
  std::thread reader;

  // Set once by open() before the reader delivers anything else.
  std::string id, subprotocol;
  std::vector<std::string> extensions;
  std::uint32_t http_status = 0;
  std::vector<Header> response_headers;

  std::mutex write_mu;  // serialises Write/WritesDone/Finish
  bool writes_done = false;

  std::mutex mu;
  std::condition_variable cv;
  bool opened = false;
  std::deque<Message> inbox;
  std::optional<CloseInfo> closed;  // the Closed message arrived
  bool closed_delivered = false;
  bool ended = false;               // the stream ended (Finish returned)
  std::optional<Error> end_error;   // ... with this error (nullopt: OK)
  std::function<void(const Message&)> callback;
  std::function<void(const Error*)> on_end;

  ~Impl() {
    if (reader.joinable()) {
      context.TryCancel();
      reader.join();
    }
  }

  void read_loop() {
    v1::ServerMessage m;
    while (stream->Read(&m)) {
      std::unique_lock<std::mutex> lock(mu);
      switch (m.kind_case()) {
        case v1::ServerMessage::kOpened: {
          const auto& o = m.opened();
          id = o.session_id();
          subprotocol = o.subprotocol();
          extensions.assign(o.extensions().begin(), o.extensions().end());
          http_status = o.http_status();
          for (const auto& h : o.response_headers()) response_headers.emplace_back(h.name(), h.value());
          opened = true;
          break;
        }
        case v1::ServerMessage::kMessage: {
          Message msg;
          msg.kind = m.message().text() ? Message::Kind::text : Message::Kind::binary;
          msg.data = std::move(*m.mutable_message()->mutable_data());
          msg.final = m.message().final();
          deliver(lock, std::move(msg));
          break;
        }
        case v1::ServerMessage::kPong: {
          Message msg;
          msg.kind = Message::Kind::pong;
          msg.data = m.pong().payload();
          deliver(lock, std::move(msg));
          break;
        }
        case v1::ServerMessage::kClosed: {
          Message msg;
          msg.kind = Message::Kind::closed;
          msg.close.code = m.closed().code();
          msg.close.reason = m.closed().reason();
          msg.close.initiator = static_cast<Initiator>(m.closed().initiator());
          msg.close.clean = m.closed().clean();
          closed = msg.close;
          deliver(lock, std::move(msg));
          break;
        }
        default:  // Error: the status that follows says the same
          break;
      }
      cv.notify_all();
    }
    grpc::Status status;
    {
      std::lock_guard<std::mutex> wlock(write_mu);
      status = stream->Finish();
      writes_done = true;
    }
    std::function<void(const Error*)> end_cb;
    std::optional<Error> err;
    {
      std::lock_guard<std::mutex> lock(mu);
      ended = true;
      if (!status.ok()) end_error = detail::to_error(status);
      end_cb = on_end;
      err = end_error;
      cv.notify_all();
    }
    if (end_cb) end_cb(err ? &*err : nullptr);
  }

  // Called with `mu` held; drops it while the callback runs.
  void deliver(std::unique_lock<std::mutex>& lock, Message msg) {
    if (callback) {
      auto cb = callback;
      lock.unlock();
      cb(msg);
      lock.lock();
    } else {
      inbox.push_back(std::move(msg));
    }
  }

  Error closed_error() const {
    Error e(StatusCode::failed_precondition, "the session is closed");
    e.set_detail("session_closed", {}, 0, 0, {}, 0);
    return e;
  }

  void write(const v1::ClientMessage& m) {
    std::lock_guard<std::mutex> lock(write_mu);
    if (writes_done || !stream->Write(m)) {
      throw closed_error();
    }
  }
};

Session::Session(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

Session Session::open(const Client& client, const std::string& url,
                      const SessionOptions& options, Deadline deadline) {
  auto impl = std::make_shared<Impl>();
  impl->core = client.core();
  impl->stub = v1::Gateway::NewStub(impl->core->channel);
  impl->context.AddMetadata("wsgate-client-id", impl->core->client_id);
  impl->stream = impl->stub->Connect(&impl->context);

  v1::ClientMessage m;
  v1::Open* o = m.mutable_open();
  o->set_url(url);
  for (const auto& s : options.subprotocols) o->add_subprotocols(s);
  for (const auto& e : options.extensions) o->add_extensions(e);
  for (const auto& h : options.headers) {
    v1::HttpHeader* hh = o->add_headers();
    hh->set_name(h.first);
    hh->set_value(h.second);
  }
  *o->mutable_tls() = options.tls;
  *o->mutable_compression() = options.compression;
  o->mutable_timeouts()->set_connect_ms(static_cast<std::uint32_t>(options.connect_timeout.count()));
  o->mutable_timeouts()->set_handshake_ms(
      static_cast<std::uint32_t>(options.handshake_timeout.count()));
  o->mutable_timeouts()->set_close_ms(static_cast<std::uint32_t>(options.close_timeout.count()));
  o->mutable_limits()->set_max_message_bytes(options.max_message_bytes);
  o->mutable_limits()->set_max_queued_bytes(options.max_queued_bytes);
  o->set_stream_fragments(options.stream_fragments);
  o->set_proxy(options.proxy);
  // A failed Write means the stream already ended: the reader reports why.
  {
    std::lock_guard<std::mutex> lock(impl->write_mu);
    impl->stream->Write(m);
  }
  Impl* raw = impl.get();
  impl->reader = std::thread([raw] { raw->read_loop(); });

  std::unique_lock<std::mutex> lock(impl->mu);
  if (!impl->cv.wait_until(lock, deadline, [&] { return impl->opened || impl->ended; })) {
    lock.unlock();
    impl->context.TryCancel();
    Error e(StatusCode::deadline_exceeded, "no Opened from wsgated before the deadline");
    e.set_detail("connect_timeout", {}, 0, 0, {}, 0);
    throw e;  // ~Impl joins the reader
  }
  if (!impl->opened) {
    if (impl->end_error) throw *impl->end_error;
    throw Error(StatusCode::unknown, "the stream ended before Opened");
  }
  lock.unlock();
  return Session(std::move(impl));
}

const std::string& Session::id() const { return impl_->id; }
const std::string& Session::subprotocol() const { return impl_->subprotocol; }
const std::vector<std::string>& Session::extensions() const { return impl_->extensions; }
std::uint32_t Session::http_status() const { return impl_->http_status; }
const std::vector<Header>& Session::response_headers() const { return impl_->response_headers; }

void Session::send_text(std::string_view utf8) {
  v1::ClientMessage m;
  m.set_text(std::string(utf8));
  impl_->write(m);
}

void Session::send_binary(std::string_view data) {
  v1::ClientMessage m;
  m.set_binary(std::string(data));
  impl_->write(m);
}

void Session::send_fragment(std::string_view data, bool text, bool final) {
  v1::ClientMessage m;
  m.mutable_fragment()->set_text(text);
  m.mutable_fragment()->set_data(std::string(data));
  m.mutable_fragment()->set_final(final);
  impl_->write(m);
}

void Session::ping() {
  v1::ClientMessage m;
  m.mutable_ping();
  impl_->write(m);
}

std::optional<Message> Session::receive(Deadline deadline) {
  Impl& s = *impl_;
  std::unique_lock<std::mutex> lock(s.mu);
  s.cv.wait_until(lock, deadline, [&] { return !s.inbox.empty() || s.ended; });
  if (!s.inbox.empty()) {
    Message m = std::move(s.inbox.front());
    s.inbox.pop_front();
    if (m.kind == Message::Kind::closed) s.closed_delivered = true;
    return m;
  }
  if (!s.ended) return std::nullopt;
  if (s.end_error && !s.closed_delivered) throw *s.end_error;
  throw s.closed_error();
}

void Session::on_message(std::function<void(const Message&)> callback,
                         std::function<void(const Error*)> on_end) {
  Impl& s = *impl_;
  // Deliver what is queued first, without holding the lock (the callback may call is_open() or
  // send). The reader keeps queueing until the inbox is found empty with the lock held; only then
  // is the callback installed, so the order is kept.
  std::unique_lock<std::mutex> lock(s.mu);
  while (!s.inbox.empty()) {
    std::deque<Message> batch;
    batch.swap(s.inbox);
    lock.unlock();
    for (const Message& m : batch) callback(m);
    lock.lock();
  }
  s.callback = std::move(callback);
  s.on_end = std::move(on_end);
  if (s.ended && s.on_end) {
    auto cb = s.on_end;
    std::optional<Error> err = s.end_error;
    lock.unlock();
    cb(err ? &*err : nullptr);
  }
}

CloseInfo Session::close(std::uint16_t code, std::string_view reason, Deadline deadline) {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.closed) return *s.closed;
  }
  v1::ClientMessage m;
  m.mutable_close()->set_code(code);
  m.mutable_close()->set_reason(std::string(reason));
  {
    std::lock_guard<std::mutex> lock(s.write_mu);
    if (!s.writes_done && s.stream->Write(m)) {
      s.stream->WritesDone();
    }
    s.writes_done = true;
  }
  std::unique_lock<std::mutex> lock(s.mu);
  if (!s.cv.wait_until(lock, deadline, [&] { return s.closed.has_value() || s.ended; }))
    throw Error(StatusCode::deadline_exceeded, "no Closed from wsgated before the deadline");
  if (s.closed) return *s.closed;
  if (s.end_error) throw *s.end_error;
  throw s.closed_error();
}

bool Session::is_open() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return !impl_->ended && !impl_->closed;
}

}  // namespace wsgate
