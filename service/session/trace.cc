#include "service/session/trace.h"

namespace wsgate::session {

const char* to_string(Timeout timeout) {
  switch (timeout) {
    case Timeout::connect: return "connect";
    case Timeout::handshake: return "handshake";
    case Timeout::close: return "close";
    case Timeout::idle: return "idle";
    case Timeout::ping: return "ping";
  }
  return "unknown";
}

SessionTrace& trace_or_none(const std::shared_ptr<SessionTrace>& trace) {
  static SessionTrace none;  // every method of the base reports nothing; it has no state
  return trace ? *trace : none;
}

}  // namespace wsgate::session
