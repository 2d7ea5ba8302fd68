// grpc.reflection.v1 over the generated descriptor pool (see reflection_v1.h). The behaviour
// follows gRPC's own v1alpha implementation: a file is sent with the files it imports (each
// once per stream), unknown names get NOT_FOUND in an error_response, not a failed stream.
#include "service/daemon/reflection_v1.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <set>

#include "service/log/logging.h"

namespace wsgate::daemon {
namespace {

namespace pb = google::protobuf;
using grpc::reflection::v1::ServerReflectionRequest;
using grpc::reflection::v1::ServerReflectionResponse;

void add_file(const pb::FileDescriptor* file, std::set<std::string>* sent,
              grpc::reflection::v1::FileDescriptorResponse* out) {
  if (file == nullptr || !sent->insert(file->name()).second) return;
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  out->add_file_descriptor_proto(proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) add_file(file->dependency(i), sent, out);
}

void not_found(ServerReflectionResponse* response, const std::string& what) {
  auto* error = response->mutable_error_response();
  error->set_error_code(static_cast<int>(grpc::StatusCode::NOT_FOUND));
  error->set_error_message(what + " not found");
}

}  // namespace

grpc::Status ReflectionV1Service::ServerReflectionInfo(
    grpc::ServerContext*,
    grpc::ServerReaderWriter<ServerReflectionResponse, ServerReflectionRequest>* stream) {
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  ServerReflectionRequest request;
  while (stream->Read(&request)) {
    ServerReflectionResponse response;
    response.set_valid_host(request.host());
    *response.mutable_original_request() = request;
    // Sent files are remembered per request, as gRPC's v1alpha does: a client may ask for the
    // same file twice and must get it both times.
    std::set<std::string> sent;
    switch (request.message_request_case()) {
      case ServerReflectionRequest::kListServices:
        for (const std::string& name : services_) {
          response.mutable_list_services_response()->add_service()->set_name(name);
        }
        break;
      case ServerReflectionRequest::kFileByFilename: {
        const pb::FileDescriptor* file = pool->FindFileByName(request.file_by_filename());
        if (file == nullptr) {
          not_found(&response, "file " + request.file_by_filename());
        } else {
          add_file(file, &sent, response.mutable_file_descriptor_response());
        }
        break;
      }
      case ServerReflectionRequest::kFileContainingSymbol: {
        const pb::FileDescriptor* file = pool->FindFileContainingSymbol(request.file_containing_symbol());
        if (file == nullptr) {
          not_found(&response, "symbol " + request.file_containing_symbol());
        } else {
          add_file(file, &sent, response.mutable_file_descriptor_response());
        }
        break;
      }
      case ServerReflectionRequest::kFileContainingExtension: {
        const auto& ext = request.file_containing_extension();
        const pb::Descriptor* type = pool->FindMessageTypeByName(ext.containing_type());
        const pb::FieldDescriptor* field =
            type == nullptr ? nullptr : pool->FindExtensionByNumber(type, ext.extension_number());
        if (field == nullptr) {
          not_found(&response, "extension " + std::to_string(ext.extension_number()) + " of " +
                                   ext.containing_type());
        } else {
          add_file(field->file(), &sent, response.mutable_file_descriptor_response());
        }
        break;
      }
      case ServerReflectionRequest::kAllExtensionNumbersOfType: {
        const pb::Descriptor* type = pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
        if (type == nullptr) {
          not_found(&response, "type " + request.all_extension_numbers_of_type());
        } else {
          std::vector<const pb::FieldDescriptor*> extensions;
          pool->FindAllExtensions(type, &extensions);
          auto* out = response.mutable_all_extension_numbers_response();
          out->set_base_type_name(type->full_name());
          for (const auto* f : extensions) out->add_extension_number(f->number());
        }
        break;
      }
      case ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET: {
        auto* error = response.mutable_error_response();
        error->set_error_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
        error->set_error_message("empty reflection request");
        break;
      }
    }
    log::logger("rpc")->trace("reflection v1: request case {}", static_cast<int>(request.message_request_case()));
    if (!stream->Write(response)) break;
  }
  return grpc::Status::OK;
}

}  // namespace wsgate::daemon
