#include "service/net/tls_context.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace wsgate::net {
namespace {

// Adds every certificate of a PEM text to the context's trust store.
bool add_ca_pem(SSL_CTX* ctx, const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return false;
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int added = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    if (X509_STORE_add_cert(store, cert) == 1) ++added;
    X509_free(cert);
  }
  ERR_clear_error();  // the loop ends on an expected "no start line"
  BIO_free(bio);
  return added > 0;
}

}  // namespace

std::string openssl_error_string() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

TlsContextResult make_tls_context(const TlsSettings& s, const std::string& default_ca_file) {
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX* native = ctx->native_handle();
  const int min = s.min_version == TlsMinVersion::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(native, min) != 1) {
    return {nullptr, "cannot set the minimum TLS version: " + openssl_error_string()};
  }
  SSL_CTX_set_options(native, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  // OpenSSL frees a connection's read and write buffers (about 34 KB) while they are empty,
  // which an idle wss:// session's are (bench/README.md, "Idle wss:// sessions").
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);

  const std::string& ca_file = !s.ca_file.empty() ? s.ca_file : default_ca_file;
  if (!ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(native, ca_file.c_str(), nullptr) != 1) {
      return {nullptr, "cannot load CA file " + ca_file + ": " + openssl_error_string()};
    }
  } else if (s.ca_pem.empty()) {
    if (SSL_CTX_set_default_verify_paths(native) != 1) {
      return {nullptr, "cannot load the system CA store: " + openssl_error_string()};
    }
  }
  if (!s.ca_pem.empty() && !add_ca_pem(native, s.ca_pem)) {
    return {nullptr, "ca_pem holds no usable certificate"};
  }

  if (!s.client_cert_file.empty() &&
      SSL_CTX_use_certificate_chain_file(native, s.client_cert_file.c_str()) != 1) {
    return {nullptr, "cannot load client certificate " + s.client_cert_file + ": " +
                         openssl_error_string()};
  }
  if (!s.client_cert_pem.empty()) {
    asio::error_code ec;
    ctx->use_certificate_chain(asio::buffer(s.client_cert_pem), ec);
    if (ec) return {nullptr, "client_cert_pem is not a usable certificate: " + ec.message()};
  }
  if (!s.client_key_file.empty() &&
      SSL_CTX_use_PrivateKey_file(native, s.client_key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return {nullptr,
            "cannot load client key " + s.client_key_file + ": " + openssl_error_string()};
  }
  if (!s.client_key_pem.empty()) {
    asio::error_code ec;
    ctx->use_private_key(asio::buffer(s.client_key_pem), asio::ssl::context::pem, ec);
    if (ec) return {nullptr, "client_key_pem is not a usable private key: " + ec.message()};
  }
  const bool has_cert = !s.client_cert_file.empty() || !s.client_cert_pem.empty();
  const bool has_key = !s.client_key_file.empty() || !s.client_key_pem.empty();
  if (has_cert != has_key) return {nullptr, "a client certificate needs its key, and the reverse"};
  if (has_cert && SSL_CTX_check_private_key(native) != 1) {
    return {nullptr, "the client key does not match the certificate"};
  }

  ctx->set_verify_mode(s.insecure_skip_verify ? asio::ssl::verify_none
                                              : asio::ssl::verify_peer);
  return {ctx, ""};
}

}  // namespace wsgate::net
