#include "common/internal_tls.h"

#include <grpc/support/log.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_listener.h"
#include "common/net.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

struct TlsState {
  absl::Mutex mu;
  bool enabled ABSL_GUARDED_BY(mu) = false;
  std::string key ABSL_GUARDED_BY(mu);
  std::string cert ABSL_GUARDED_BY(mu);
  std::string trust ABSL_GUARDED_BY(mu);
};

TlsState& State() {
  static auto* s = new TlsState();
  return *s;
}

constexpr size_t kMaxPem = 1 << 20;

// No passphrase is asked for: an encrypted key is refused as not PEM of its kind.
int NoPassword(char*, int, int, void*) { return 0; }

// The file named by configuration key `key`, whole; InvalidArgument naming both when it cannot
// be read.
absl::StatusOr<std::string> ReadPemFile(const Configuration& conf, const std::string& key) {
  const std::string path = conf.GetString(key);
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("security.ssl.internal.enabled is true but ",
                                                   key, " names no file (a PEM file)"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration key '", key, "': cannot read '", path, "'"));
  }
  // At most 1 MiB and a byte: a device or a FIFO named by mistake must not hang the start.
  std::string text(kMaxPem + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxPem) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration key '", key, "': '", path, "' is over 1 MiB: not a PEM file"));
  }
  return text;
}

using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

BioPtr Bio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
}

X509Ptr FirstCertificate(const std::string& pem) {
  BioPtr bio = Bio(pem);
  return X509Ptr(bio ? PEM_read_bio_X509(bio.get(), nullptr, NoPassword, nullptr) : nullptr,
                 &X509_free);
}

// The key, certificate and CA must be PEM of their kinds, and the key the certificate's.
absl::Status CheckPem(const Configuration& conf, const std::string& key, const std::string& cert,
                      const std::string& trust) {
  auto bad = [&](const char* k, const char* what) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration key '", k, "': '", conf.GetString(k), "' holds no ", what));
  };
  BioPtr key_bio = Bio(key);
  KeyPtr pkey(
      key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, NoPassword, nullptr) : nullptr,
      &EVP_PKEY_free);
  if (!pkey) return bad("security.ssl.internal.key", "PEM private key (unencrypted)");
  X509Ptr x509 = FirstCertificate(cert);
  if (!x509) return bad("security.ssl.internal.cert", "PEM certificate");
  if (!FirstCertificate(trust)) return bad("security.ssl.internal.trust-cert", "PEM certificate");
  if (X509_check_private_key(x509.get(), pkey.get()) != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the private key in '", conf.GetString("security.ssl.internal.key"),
        "' (security.ssl.internal.key) does not belong to the certificate in '",
        conf.GetString("security.ssl.internal.cert"), "' (security.ssl.internal.cert)"));
  }
  return absl::OkStatus();
}

std::shared_ptr<grpc::experimental::StaticDataCertificateProvider> Provider(const TlsState& s)
    ABSL_SHARED_LOCKS_REQUIRED(s.mu) {
  return std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
      s.trust, std::vector<grpc::experimental::IdentityKeyCertPair>{{s.key, s.cert}});
}

void ForwardGrpcLog(gpr_log_func_args* args) {
  if (args->severity != GPR_LOG_SEVERITY_ERROR) return;
  const char* file = args->file ? args->file : "";
  if (const char* slash = std::strrchr(file, '/')) file = slash + 1;
  const char* message = args->message ? args->message : "";
  spdlog::warn("gRPC ({}:{}): {}", file, args->line, message);
  // The listener names the refused peer with this reason (gRPC's line does not name it).
  if (absl::StartsWith(message, "Handshake failed")) NoteRefusedHandshake(message);
}

}  // namespace

absl::Status ConfigureInternalTls(const Configuration& conf) {
  TlsState& s = State();
  if (!conf.GetBool("security.ssl.internal.enabled")) {
    absl::MutexLock lock(&s.mu);
    s.enabled = false;
    return absl::OkStatus();
  }
  auto key = ReadPemFile(conf, "security.ssl.internal.key");
  if (!key.ok()) return key.status();
  auto cert = ReadPemFile(conf, "security.ssl.internal.cert");
  if (!cert.ok()) return cert.status();
  auto trust = ReadPemFile(conf, "security.ssl.internal.trust-cert");
  if (!trust.ok()) return trust.status();
  if (absl::Status st = CheckPem(conf, *key, *cert, *trust); !st.ok()) return st;
  absl::MutexLock lock(&s.mu);
  s.enabled = true;
  s.key = std::move(*key);
  s.cert = std::move(*cert);
  s.trust = std::move(*trust);
  return absl::OkStatus();
}

bool InternalTlsEnabled() {
  TlsState& s = State();
  absl::MutexLock lock(&s.mu);
  return s.enabled;
}

std::shared_ptr<grpc::ServerCredentials> InternalServerCredentials() {
  TlsState& s = State();
  absl::MutexLock lock(&s.mu);
  if (!s.enabled) return grpc::InsecureServerCredentials();
  grpc::experimental::TlsServerCredentialsOptions o(Provider(s));
  o.watch_root_certs();
  o.watch_identity_key_cert_pairs();
  o.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(o);
}

std::shared_ptr<grpc::ChannelCredentials> InternalChannelCredentials() {
  TlsState& s = State();
  absl::MutexLock lock(&s.mu);
  if (!s.enabled) return grpc::InsecureChannelCredentials();
  grpc::experimental::TlsChannelCredentialsOptions o;
  o.set_certificate_provider(Provider(s));
  o.watch_root_certs();
  o.watch_identity_key_cert_pairs();
  o.set_verify_server_certs(true);  // against the trusted CA; no host name check
  o.set_certificate_verifier(std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
  o.set_check_call_host(false);
  return grpc::experimental::TlsCredentials(o);
}

namespace {

// The first address `key`'s host resolves to that is not a loopback one, or "".
std::string BeyondLoopback(const Configuration& conf, const std::string& key) {
  auto addresses = ResolveHost(conf.GetString(key), key);
  if (!addresses.ok()) return "";  // the daemon reports it where it binds
  for (const std::string& a : *addresses) {
    if (!absl::StartsWith(a, "127.") && a != "::1") return a;
  }
  return "";
}

}  // namespace

absl::Status CheckStartupSecurity(const Configuration& conf,
                                  const std::vector<std::string>& bind_keys,
                                  const std::string& rest_bind_key) {
  if (conf.GetBool("security.refuse-root") && ::geteuid() == 0) {
    return absl::FailedPreconditionError(
        "refusing to run as root (security.refuse-root is true): start the daemon as another "
        "user");
  }
  for (const std::string& key : InternalTlsEnabled() ? std::vector<std::string>() : bind_keys) {
    if (std::string a = BeyondLoopback(conf, key); !a.empty()) {
      spdlog::warn(
          "{} is {} ({}): this daemon listens beyond the loopback interface without TLS; "
          "anyone who reaches it can run code on the cluster. Set "
          "security.ssl.internal.enabled (deploy/gen-certs.sh makes the certificates)",
          key, conf.GetString(key), a);
    }
  }
  // The REST API uploads and runs libraries too: beyond the loopback interface it needs a
  // token, and TLS so that the token cannot be read on the way.
  if (rest_bind_key.empty()) return absl::OkStatus();
  const bool token = !conf.GetString("security.rest.auth.token-file").empty();
  const bool https = conf.GetBool("security.ssl.rest.enabled");
  if (token && https) return absl::OkStatus();
  if (std::string a = BeyondLoopback(conf, rest_bind_key); !a.empty()) {
    spdlog::warn(
        "{} is {} ({}): the REST API listens beyond the loopback interface {}; anyone who "
        "reaches it can run code on the cluster. Set {}",
        rest_bind_key, conf.GetString(rest_bind_key), a,
        token ? "in plain text, its token readable on the way" : "without a token",
        token ? "security.ssl.rest.enabled"
              : "security.rest.auth.token-file and security.ssl.rest.enabled");
  }
  return absl::OkStatus();
}

void LogGrpcErrors() { gpr_set_log_function(ForwardGrpcLog); }

}  // namespace sluice
