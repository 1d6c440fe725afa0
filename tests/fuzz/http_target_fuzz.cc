// A request target as an HTTP server reads it (common/http_routes.h: ParseTarget, ParseQuery,
// PercentDecode), then routed through the REST API's path patterns (HttpRoutes::Handle); the same
// bytes also as an application/x-www-form-urlencoded body (ParseQuery).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "common/http_routes.h"
#include "fuzz_support.h"

namespace {

using sluice::HttpRequest;
using sluice::HttpResponse;
using sluice::HttpRoutes;

// The path patterns the REST API registers (jobmanager/rest_*.cc), each with a handler that
// reads what a real one reads: the groups and the parameters.
const HttpRoutes& Routes() {
  static const HttpRoutes* routes = [] {
    auto* r = new HttpRoutes();
    const std::string job = "([0-9a-f]{32})";
    const std::string segment = "([^/]+)";
    const std::string tm = "([A-Za-z0-9_.-]+)";
    auto handler = [](const HttpRequest& req, HttpResponse& res) {
      size_t n = 0;
      for (const std::string& m : req.matches) n += m.size();
      for (const char* key : {"get", "agg", "parallelism", "mode", "entry-class"}) {
        for (size_t i = 0; i < req.get_param_value_count(key); ++i) {
          n += req.get_param_value(key, i).size();
        }
      }
      res.set_content(std::to_string(n), "text/plain");
    };
    for (const std::string& p :
         {std::string("/"), std::string("/overview"), std::string("/config"), std::string("/jobs"),
          std::string("/jobs/overview"), "/jobs/" + job, "/jobs/" + job + "/vertices/([0-9]{1,9})",
          "/jobs/" + job + "/checkpoints/details/" + segment, "/jobs/" + job + "/metrics",
          "/jars/" + segment + "/plan", std::string("/jobmanager/logs/(.*)"),
          "/taskmanagers/" + tm + "/logs/(.*)", "/jobs/" + job + "/savepoints/" + job}) {
      r->Get(p, handler);
      r->Post(p, handler);
    }
    r->Patch("/jobs/" + job, handler);
    r->set_error_handler([](const HttpRequest& req, HttpResponse& res) {
      res.set_content("{\"errors\":[\"" + req.path.substr(0, 100) + "\"]}", "application/json");
    });
    return r;
  }();
  return *routes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > sluice::kMaxTargetBytes) return 0;  // the server answers 414
  const std::string target(reinterpret_cast<const char*>(data), size);

  HttpRequest req;
  req.method = size % 2 == 0 ? "GET" : "POST";
  req.target = target;
  if (sluice::ParseTarget(target, &req.path, &req.params).ok()) {
    SLUICE_FUZZ_CHECK(req.path.size() <= target.size());  // decoding never lengthens
    SLUICE_FUZZ_CHECK(req.params.size() <= sluice::kMaxParams);
    HttpResponse res;
    Routes().Handle(req, res);
    SLUICE_FUZZ_CHECK(res.status == 200 || res.status == 404);
  }

  std::multimap<std::string, std::string> form;
  (void)sluice::ParseQuery(target, &form);
  SLUICE_FUZZ_CHECK(form.size() <= sluice::kMaxParams);
  for (bool plus_is_space : {false, true}) {
    SLUICE_FUZZ_CHECK(sluice::PercentDecode(target, plus_is_space).size() <= target.size());
  }
  return 0;
}
