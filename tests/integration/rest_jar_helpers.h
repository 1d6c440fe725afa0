// What the tests of submission over REST (rest_jars_test.cc, rest_security_test.cc) share: JSON
// requests to a cluster's REST API and a multipart upload of a job library. Header-only;
// single-threaded use.
#pragma once

#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {

using nlohmann::json;

struct RestReply {
  int status = 0;  // 0: no answer
  json body;       // discarded when the body is not JSON
  std::string raw;
};

inline RestReply ToReply(const httplib::Result& res) {
  RestReply r;
  if (!res) return r;
  r.status = res->status;
  r.raw = res->body;
  r.body = json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  return r;
}

// A client of the REST API on 127.0.0.1:port with 30 s timeouts (a graph is built per call),
// over HTTPS and with the token when the cluster has them (CurrentRestAccess()).
inline std::unique_ptr<httplib::Client> RestClient(int port) {
  const RestTestAccess& access = CurrentRestAccess();
  auto http = std::make_unique<httplib::Client>(
      absl::StrCat(access.ca_file.empty() ? "http" : "https", "://127.0.0.1:", port));
  if (!access.ca_file.empty()) {
    http->set_ca_cert_path(access.ca_file);
    http->enable_server_certificate_verification(true);
  }
  if (!access.token.empty())
    http->set_default_headers({{"Authorization", "Bearer " + access.token}});
  http->set_connection_timeout(5);
  http->set_read_timeout(30);
  http->set_write_timeout(30);
  return http;
}

inline RestReply RestGet(httplib::Client& http, const std::string& path) {
  return ToReply(http.Get(path.c_str()));
}
inline RestReply RestPost(httplib::Client& http, const std::string& path, const std::string& body) {
  return ToReply(http.Post(path.c_str(), body, "application/json"));
}
inline RestReply RestDelete(httplib::Client& http, const std::string& path) {
  return ToReply(http.Delete(path.c_str()));
}
// POST /jars/upload with `bytes` in the multipart field `jarfile` named `file_name`.
inline RestReply UploadJar(httplib::Client& http, const std::string& bytes,
                           const std::string& file_name) {
  httplib::MultipartFormDataItems items = {
      {"jarfile", bytes, file_name, "application/x-sharedlib"}};
  return ToReply(http.Post("/jars/upload", items));
}
// The jar id in an upload's reply: the last component of its `filename`, as Flink's clients take
// it.
inline std::string JarIdOf(const RestReply& upload) {
  std::string f = upload.body.is_object() ? upload.body.value("filename", "") : "";
  return f.substr(f.rfind('/') + 1);
}
// The first message of Flink's {"errors": [...]}, or "" when the body has none.
inline std::string FirstError(const RestReply& r) {
  if (!r.body.is_object() || !r.body.contains("errors") || !r.body["errors"].is_array() ||
      r.body["errors"].empty() || !r.body["errors"][0].is_string()) {
    return "";
  }
  return r.body["errors"][0].get<std::string>();
}
// Polls /jobs/:id/status until it is `state` or the job ended; the last status seen.
inline std::string WaitForRestStatus(httplib::Client& http, const std::string& job,
                                     const std::string& state, std::chrono::milliseconds timeout) {
  std::string last;
  WaitUntil(
      [&] {
        RestReply r = RestGet(http, "/jobs/" + job + "/status");
        last = r.body.is_object() ? r.body.value("status", "") : "";
        return last == state || last == "FINISHED" || last == "FAILED" || last == "CANCELED";
      },
      timeout, std::chrono::milliseconds(50));
  return last;
}

}  // namespace sluice::itest
