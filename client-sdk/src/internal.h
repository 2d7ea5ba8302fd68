// Internals shared by the SDK's sources (not installed).
#ifndef WSGATE_CLIENT_SRC_INTERNAL_H_
#define WSGATE_CLIENT_SRC_INTERNAL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "wsgate/client/client.h"
#include "wsgate/client/error.h"

namespace wsgate {

namespace detail {

struct ClientCore {
  ClientOptions options;
  std::string address;
  std::string client_id;
  std::shared_ptr<grpc::Channel> channel;

  // A context with the client id metadata and `deadline`.
  void prepare(grpc::ClientContext& context, Deadline deadline) const;
  Deadline default_deadline() const { return Clock::now() + options.default_timeout; }
};

// grpc::Status -> Error (with the ErrorDetail of the status details, if any).
Error to_error(const grpc::Status& status);

}  // namespace detail
}  // namespace wsgate

#endif  // WSGATE_CLIENT_SRC_INTERNAL_H_
