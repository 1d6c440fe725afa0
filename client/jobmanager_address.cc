#include "client/jobmanager_address.h"

#include <httplib.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/http_server.h"
#include "common/status_macros.h"
#include "jobmanager/ha/ha_options.h"
#include "jobmanager/ha/ha_services.h"
#include "jobmanager/ha/leader_election.h"

namespace sluice {
namespace {

// An HTTP(S) client of the REST server at host:port as the CLI's configuration says: HTTPS
// verifying the server's certificate against security.ssl.rest.trust-cert (else the system's
// CAs), with the REST certificate as its own when the server authenticates clients.
std::unique_ptr<httplib::Client> RestClient(const Configuration& conf, const std::string& host,
                                            int port) {
  const std::string url_host = host.find(':') == std::string::npos ? host : "[" + host + "]";
  if (!conf.GetBool("security.ssl.rest.enabled")) {
    return std::make_unique<httplib::Client>(absl::StrCat("http://", url_host, ":", port));
  }
  const std::string url = absl::StrCat("https://", url_host, ":", port);
  std::unique_ptr<httplib::Client> client;
  if (conf.GetBool("security.ssl.rest.authentication-enabled")) {
    client = std::make_unique<httplib::Client>(url, conf.GetString("security.ssl.rest.cert"),
                                               conf.GetString("security.ssl.rest.key"));
  } else {
    client = std::make_unique<httplib::Client>(url);
  }
  const std::string ca = conf.GetString("security.ssl.rest.trust-cert");
  if (!ca.empty()) client->set_ca_cert_path(ca);
  client->enable_server_certificate_verification(true);
  return client;
}

absl::StatusOr<std::string> AddressFromFlag(const Configuration& conf, const std::string& flag) {
  size_t colon = flag.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(flag.substr(colon + 1), &port) ||
      port == conf.GetInt("jobmanager.rpc.port")) {
    return flag;
  }
  std::string host = flag.substr(0, colon);
  std::string http_host = host;
  if (http_host.size() > 2 && http_host.front() == '[') http_host = host.substr(1, host.size() - 2);
  ASSIGN_OR_RETURN(const std::string token, ReadRestAuthToken(conf));
  // The token goes in plain text only to this machine: elsewhere, only over HTTPS.
  const bool loopback =
      http_host == "localhost" || absl::StartsWith(http_host, "127.") || http_host == "::1";
  const bool send_token = !token.empty() && (conf.GetBool("security.ssl.rest.enabled") || loopback);
  auto http = RestClient(conf, http_host, port);
  http->set_connection_timeout(std::chrono::seconds(2));
  http->set_read_timeout(std::chrono::seconds(5));
  httplib::Headers headers;
  if (send_token) headers.emplace("Authorization", "Bearer " + token);
  auto res = http->Get("/jobmanager/config", headers);
  if (res && res->status == 401) {
    std::string why = "the token of security.rest.auth.token-file is wrong";
    if (token.empty()) {
      why = "it needs the token of security.rest.auth.token-file";
    } else if (!send_token) {
      why =
          "it needs the token, which the CLI sends in plain text only to this machine: set "
          "security.ssl.rest.enabled";
    }
    return absl::PermissionDeniedError(
        absl::StrCat("the REST server at ", flag, " refused the CLI: ", why));
  }
  if (!res || res->status != 200) return flag;
  auto entries = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  if (!entries.is_array()) return flag;
  for (const auto& e : entries) {
    if (e.is_object() && e.value("key", "") == "jobmanager.rpc.port" && e["value"].is_string()) {
      return absl::StrCat(host, ":", e["value"].get<std::string>());
    }
  }
  return flag;
}

}  // namespace

absl::StatusOr<std::string> JobManagerAddress(const Configuration& conf, const std::string& flag) {
  if (!flag.empty()) return AddressFromFlag(conf, flag);
  ASSIGN_OR_RETURN(ha::HaOptions ha, ha::HaOptions::FromConfiguration(conf));
  if (!ha.enabled) {
    return absl::StrCat(conf.GetString("jobmanager.rpc.address"), ":",
                        conf.GetInt("jobmanager.rpc.port"));
  }
  ASSIGN_OR_RETURN(auto zk, ha::ConnectToQuorum(ha));
  ASSIGN_OR_RETURN(auto retriever,
                   ha::LeaderRetriever::Start(zk.get(), ha::JobManagerLeaderPath(ha.cluster_path)));
  auto leader = retriever->WaitForLeader(ha.connection_timeout_ms);
  if (!leader.ok()) {
    return absl::UnavailableError(
        absl::StrCat("no JobManager leads the cluster: ", leader.status().message()));
  }
  return leader->rpc_address;
}

}  // namespace sluice
