// Internal TLS (security.ssl.internal.*): the credentials of every gRPC server and channel of a
// process, between daemons (control calls and the data exchange) and from the CLI. It is mutual:
// each side presents a certificate signed by the trusted CA (security.ssl.internal.trust-cert)
// and refuses a peer without one. Host names are not checked, as in Flink's internal TLS: a CA
// dedicated to the cluster (deploy/gen-certs.sh makes one) is what names its members.
//
// Set once per process, from its configuration, before its first server or channel: the
// daemons' and the CLI's main(), MiniCluster, and tests that talk to a cluster with TLS on.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/config.h"

namespace grpc {
class ServerCredentials;
class ChannelCredentials;
}  // namespace grpc

namespace sluice {

// Reads the security.ssl.internal.* keys of `conf` and makes every later server and channel of
// this process use them (or plain text, when security.ssl.internal.enabled is false).
// InvalidArgument naming the key and the file when a file is missing, unreadable or not PEM of
// its kind, or the key does not belong to the certificate.
absl::Status ConfigureInternalTls(const Configuration& conf);

bool InternalTlsEnabled();
std::shared_ptr<grpc::ServerCredentials> InternalServerCredentials();
std::shared_ptr<grpc::ChannelCredentials> InternalChannelCredentials();

// The start-up checks of a daemon: with security.refuse-root set, FailedPrecondition when the
// process runs as root; a warning naming the key for each of `bind_keys` (host names the daemon
// listens on) that reaches beyond the loopback interface while internal TLS is off, and for
// `rest_bind_key` (the REST API's host, when the daemon serves it) that does without both a
// token and HTTPS.
absl::Status CheckStartupSecurity(const Configuration& conf,
                                  const std::vector<std::string>& bind_keys,
                                  const std::string& rest_bind_key = "");

// Sends gRPC's own error lines (a refused TLS handshake among them) to this process's log.
void LogGrpcErrors();

}  // namespace sluice
