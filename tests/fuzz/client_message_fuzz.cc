// client_message_fuzz: fuzz bytes parsed as a wsgate.v1.ClientMessage protobuf, then validated and
// translated as the Gateway service does (service/rpc/client_message): an `open` goes through
// validate_open(), anything else through a ClientMessageTranslator that lives for the whole run,
// so fragment and close state carries over between inputs as it does within a session.
// Unparseable bytes are skipped. Whatever the input, nothing may crash, and the results must hold
// these invariants:
//   - a valid Open gives settings whose limits never exceed the daemon's ceilings;
//   - a refusal always names the field (non-empty message);
//   - after a translated `close`, everything is refused with FAILED_PRECONDITION.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "service/rpc/client_message.h"

namespace {

// protobuf logs an ERROR line for every string field with invalid UTF-8; at fuzzing rates that
// is most of the run's time and output.
void ignore_protobuf_log(google::protobuf::LogLevel, const char*, int, const std::string&) {}

wsgate::rpc::GatewayDefaults fuzz_defaults() {
  wsgate::rpc::GatewayDefaults d;
  d.max_request_headers = 64;
  d.max_request_header_bytes = 16384;
  d.allow_client_file_paths = false;  // never read files named by the input
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(&ignore_protobuf_log);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const wsgate::rpc::GatewayDefaults defaults = fuzz_defaults();
  static wsgate::rpc::ClientMessageTranslator translator;
  static int since_reset = 0;
  if (++since_reset > 64) {  // a fresh "session" now and then, so the close state is left
    translator = wsgate::rpc::ClientMessageTranslator();
    since_reset = 0;
  }
  wsgate::v1::ClientMessage message;
  if (!message.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (message.has_open()) {
    wsgate::rpc::OpenValidation v = wsgate::rpc::validate_open(message.open(), defaults);
    if (v.settings) {
      if (v.settings->max_message_bytes > defaults.max_message_bytes_ceiling) std::abort();
      if (v.settings->max_queued_bytes > defaults.max_queued_bytes) std::abort();
      if (v.settings->headers.size() > defaults.max_request_headers) std::abort();
    } else if (v.refusal.message.empty()) {
      std::abort();
    }
    return 0;
  }
  const bool closed = translator.close_sent();
  wsgate::rpc::ClientMessageTranslator::Result r = translator.translate(message);
  using Kind = wsgate::rpc::ClientMessageTranslator::Result::Kind;
  if (r.kind == Kind::refuse && r.refusal.message.empty()) std::abort();
  if (closed && message.kind_case() != wsgate::v1::ClientMessage::KIND_NOT_SET &&
      r.kind != Kind::refuse) {
    std::abort();
  }
  if (r.kind == Kind::refuse) translator = wsgate::rpc::ClientMessageTranslator();  // session over
  return 0;
}
