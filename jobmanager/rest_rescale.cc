// Rescaling over REST, with Flink's paths and fields:
//   PATCH /jobs/:id/rescaling?parallelism=N         the whole job at N: {"request-id": trigger}
//   GET   /jobs/:id/rescaling/:triggerid            Flink's asynchronous operation result:
//         {"status": {"id": "IN_PROGRESS"|"COMPLETED"}, "operation": null | {...}}
//   GET   /jobs/:id/resource-requirements           Flink 2's per-vertex parallelism bounds:
//   PUT   /jobs/:id/resource-requirements           {"<vertex id>": {"parallelism":
//                                                      {"lowerBound": L, "upperBound": U}}}
// A vertex id is the vertex's index, as in the other job views. Malformed requests are a 400
// naming the field, a job that cannot be rescaled now a 409, both with Flink's {"errors": [...]}.
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "jobmanager/rest_util.h"

namespace sluice::rest {
namespace {

// As ReplyError, and 409 for too few slots (the request conflicts with the cluster's state).
void ReplyRescaleError(HttpResponse& res, const absl::Status& s) {
  if (absl::IsResourceExhausted(s)) return ReplyError(res, 409, std::string(s.message()));
  ReplyError(res, s);
}

json ParallelismByVertex(const google::protobuf::Map<int32_t, int32_t>& p) {
  json out = json::object();
  for (const auto& [v, n] : p) out[std::to_string(v)] = n;
  return out;
}

// Flink's AsynchronousOperationResult of a rescale.
json RescaleResult(const proto::RescaleStatus& op) {
  if (op.state() == "IN_PROGRESS") {
    return json{{"status", {{"id", "IN_PROGRESS"}}}, {"operation", nullptr}};
  }
  json operation = {{"failure-cause", nullptr},
                    {"from-parallelism", ParallelismByVertex(op.from_parallelism())},
                    {"to-parallelism", ParallelismByVertex(op.to_parallelism())},
                    {"reason", op.reason()},
                    {"request-time", op.requested_ms()},
                    {"completion-time", op.completed_ms() > 0 ? json(op.completed_ms()) : json()}};
  if (op.state() == "FAILED") {
    operation["failure-cause"] = {{"class", "org.apache.flink.util.FlinkException"},
                                  {"stack-trace", op.failure()},
                                  {"serialized-throwable", nullptr}};
  }
  return json{{"status", {{"id", "COMPLETED"}}}, {"operation", operation}};
}

// An int field of a JSON object; InvalidArgument naming `where` and the field.
absl::StatusOr<int> IntField(const json& object, const char* field, const std::string& where) {
  auto it = object.find(field);
  if (it == object.end()) {
    return absl::InvalidArgumentError(absl::StrCat(where, " has no \"", field, "\""));
  }
  if (!it->is_number_integer() || it->get<int64_t>() < INT32_MIN ||
      it->get<int64_t>() > INT32_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": \"", field, "\" must be an integer, got ", it->dump()));
  }
  return static_cast<int>(it->get<int64_t>());
}

// The body of PUT resource-requirements for a job of `vertices` vertices.
absl::StatusOr<ResourceRequirements> ParseRequirements(const std::string& body, int vertices) {
  auto parsed = ParseJsonObject(body);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        parsed.status().message(),
        ": it must be an object of vertex ids to {\"parallelism\": {\"lowerBound\": L, "
        "\"upperBound\": U}}"));
  }
  const json& j = *parsed;
  ResourceRequirements out(vertices);
  std::vector<bool> seen(vertices, false);
  for (const auto& [key, value] : j.items()) {
    int v = -1;
    if (!absl::SimpleAtoi(key, &v) || v < 0 || v >= vertices || std::to_string(v) != key) {
      return absl::InvalidArgumentError(absl::StrCat(
          "'", key, "' is not a vertex of the job (its vertex ids are 0 to ", vertices - 1, ")"));
    }
    const std::string where = absl::StrCat("vertex ", key);
    if (!value.is_object() || !value.contains("parallelism") || !value["parallelism"].is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": expected {\"parallelism\": {\"lowerBound\": L, \"upperBound\": U}}"));
    }
    const json& p = value["parallelism"];
    auto lower = IntField(p, "lowerBound", where + " parallelism");
    if (!lower.ok()) return lower.status();
    auto upper = IntField(p, "upperBound", where + " parallelism");
    if (!upper.ok()) return upper.status();
    out[v] = {*lower, *upper};
    seen[v] = true;
  }
  for (int v = 0; v < vertices; ++v) {
    if (!seen[v]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "vertex ", v, " has no requirements: the body must give every vertex's bounds"));
    }
  }
  return out;
}

}  // namespace

void AddRescaleRoutes(HttpRoutes& s, const RestContext& ctx) {
  const RestContext* c = &ctx;

  // Flink: PATCH /jobs/:jobid/rescaling?parallelism=N
  s.Patch("/jobs/" SLUICE_REST_JOB_ID "/rescaling", [c](const HttpRequest& req, HttpResponse& res) {
    if (!req.has_param("parallelism")) {
      return ReplyError(res, 400, "the query parameter 'parallelism' is required");
    }
    const std::string value = req.get_param_value("parallelism");
    int parallelism = 0;
    if (!absl::SimpleAtoi(value, &parallelism)) {
      return ReplyError(
          res, 400, "the query parameter 'parallelism' must be an integer, got '" + value + "'");
    }
    auto trigger = c->gateway->RescaleWholeJob(req.matches[1], parallelism, "REST request");
    if (!trigger.ok()) return ReplyRescaleError(res, trigger.status());
    Reply(res, 200, json{{"request-id", *trigger}});
  });

  s.Get("/jobs/" SLUICE_REST_JOB_ID "/rescaling/([0-9a-f]{32})",
        [c](const HttpRequest& req, HttpResponse& res) {
          auto op = c->gateway->GetRescaleStatus(req.matches[1], req.matches[2]);
          if (!op.ok()) return ReplyError(res, op.status());
          Reply(res, 200, RescaleResult(*op));
        });

  s.Get("/jobs/" SLUICE_REST_JOB_ID "/resource-requirements",
        [c](const HttpRequest& req, HttpResponse& res) {
          auto r = c->gateway->GetResourceRequirements(req.matches[1]);
          if (!r.ok()) return ReplyError(res, r.status());
          json out = json::object();
          for (size_t v = 0; v < r->size(); ++v) {
            out[std::to_string(v)] = {
                {"parallelism", {{"lowerBound", (*r)[v].lower}, {"upperBound", (*r)[v].upper}}}};
          }
          Reply(res, 200, out);
        });

  s.Put("/jobs/" SLUICE_REST_JOB_ID "/resource-requirements",
        [c](const HttpRequest& req, HttpResponse& res) {
          auto job = c->gateway->GetJob(req.matches[1]);
          if (!job.ok()) return ReplyError(res, job.status());
          auto r = ParseRequirements(req.body, job->graph().vertices_size());
          if (!r.ok()) return ReplyError(res, r.status());
          absl::Status st = c->gateway->SetResourceRequirements(req.matches[1], *r);
          if (!st.ok()) return ReplyRescaleError(res, st);
          Reply(res, 200, json::object());
        });
}

}  // namespace sluice::rest
