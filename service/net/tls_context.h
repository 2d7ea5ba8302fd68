// TLS client contexts for upstream wss:// connections (OpenSSL through asio::ssl).
//
// Verification is on by default: the system trust store (or the configured CA file), the peer's
// name checked against the URL's host (or server_name), SNI sent. Turning verification off is an
// explicit option that the caller logs.
//
// Thread safety: make_tls_context() is safe from any thread; the returned context is shared by
// value (shared_ptr) and not modified afterwards.
#pragma once

#include <asio/ssl.hpp>
#include <memory>
#include <string>

namespace wsgate::net {

enum class TlsMinVersion { tls1_2, tls1_3 };

struct TlsSettings {
  std::string ca_file;          // PEM file of trusted CAs; empty: default_ca_file or system store
  std::string ca_pem;           // PEM text of trusted CAs (added to ca_file if both)
  std::string client_cert_file;
  std::string client_cert_pem;
  std::string client_key_file;
  std::string client_key_pem;
  std::string server_name;      // SNI and verification name; empty: the URL's host
  TlsMinVersion min_version = TlsMinVersion::tls1_2;
  bool insecure_skip_verify = false;
};

struct TlsContextResult {
  std::shared_ptr<asio::ssl::context> context;
  std::string error;  // set when !context: which setting failed and OpenSSL's reason
};

// `default_ca_file` is the daemon's [tls] ca_file (empty: the system store).
TlsContextResult make_tls_context(const TlsSettings& settings, const std::string& default_ca_file);

// OpenSSL's error queue as one line (and clears it).
std::string openssl_error_string();

}  // namespace wsgate::net
