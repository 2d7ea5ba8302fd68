// The one Cause -> grpc::StatusCode table (service/rpc/status.cc) and the ErrorDetail of a
// session failure. The timeouts that end a session are DEADLINE_EXCEEDED: the end-to-end test
// of the ping timeout moved to tests/unit/session, so the status it gets is checked here.
#include <gtest/gtest.h>

#include "service/rpc/status.h"

namespace wsgate::rpc {
namespace {

using session::Cause;
using session::Failure;

TEST(SessionStatus, TimeoutsAreDeadlineExceeded) {
  for (Cause c : {Cause::connect_timeout, Cause::handshake_timeout, Cause::ping_timeout,
                  Cause::close_timeout}) {
    EXPECT_EQ(status_code_for(Failure{c, ""}), grpc::StatusCode::DEADLINE_EXCEEDED)
        << session::to_string(c);
  }
}

TEST(SessionStatus, LimitsAreResourceExhausted) {
  for (Cause c : {Cause::message_too_big, Cause::memory_budget, Cause::session_limit,
                  Cause::fd_limit}) {
    EXPECT_EQ(status_code_for(Failure{c, ""}), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << session::to_string(c);
  }
}

TEST(SessionStatus, RefusedUpgradeDependsOnTheHttpStatus) {
  Failure f{Cause::upgrade_refused, "no"};
  f.http_status = 503;
  EXPECT_EQ(status_code_for(f), grpc::StatusCode::UNAVAILABLE);
  f.http_status = 403;
  f.http_headers = {{"Retry-After", "5"}};
  EXPECT_EQ(status_code_for(f), grpc::StatusCode::FAILED_PRECONDITION);
  const wsgate::v1::ErrorDetail d = failure_detail(f);
  EXPECT_EQ(d.cause(), "upgrade_refused");
  EXPECT_EQ(d.http_status(), 403u);
  ASSERT_EQ(d.http_headers_size(), 1);
  EXPECT_EQ(d.http_headers(0).name(), "Retry-After");
}

TEST(SessionStatus, ProxyFailuresCarryTheProxysStatus) {
  Failure f{Cause::proxy_refused, "403"};
  f.http_status = 403;
  EXPECT_EQ(status_code_for(f), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(failure_detail(f).cause(), "proxy_refused");
  EXPECT_EQ(failure_detail(f).http_status(), 403u);
  f.http_status = 502;
  EXPECT_EQ(status_code_for(f), grpc::StatusCode::UNAVAILABLE);
  f = Failure{Cause::proxy_auth_required, "407"};
  f.http_status = 407;
  f.http_headers = {{"Proxy-Authenticate", "Basic realm=\"p\""}};
  EXPECT_EQ(status_code_for(f), grpc::StatusCode::UNAUTHENTICATED);
  const wsgate::v1::ErrorDetail d = failure_detail(f);
  EXPECT_EQ(d.cause(), "proxy_auth_required");
  EXPECT_EQ(d.http_status(), 407u);
  ASSERT_EQ(d.http_headers_size(), 1);
  EXPECT_EQ(d.http_headers(0).name(), "Proxy-Authenticate");
  EXPECT_EQ(status_code_for(Failure{Cause::proxy_connect_failed, ""}),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(status_code_for(Failure{Cause::proxy_timeout, ""}),
            grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST(SessionStatus, ProtocolViolationCarriesTheEngineResult) {
  Failure f{Cause::protocol_violation, "bad frame"};
  f.engine_result = ws::Result::invalid_protocol_format;
  EXPECT_EQ(status_code_for(f), grpc::StatusCode::DATA_LOSS);
  const wsgate::v1::ErrorDetail d = failure_detail(f);
  EXPECT_EQ(d.cause(), "protocol_violation");
  EXPECT_FALSE(d.hresult_symbol().empty());
}

}  // namespace
}  // namespace wsgate::rpc
