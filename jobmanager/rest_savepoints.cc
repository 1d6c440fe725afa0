// Savepoints over REST, with Flink's paths, bodies and asynchronous-operation replies:
//   POST /jobs/:jobid/savepoints      {"target-directory", "cancel-job"} -> {"request-id"}
//   POST /jobs/:jobid/stop            {"targetDirectory", "drain"}       -> {"request-id"}
//   GET  /jobs/:jobid/savepoints/:id  {"status": {"id": IN_PROGRESS|COMPLETED},
//                                      "operation": {"location"} or {"failure-cause"}}
//   POST /savepoint-disposal          {"savepoint-path"}                 -> {"request-id"}
//   GET  /savepoint-disposal/:id      {"status": ..., "operation": {} or {"failure-cause"}}
#include <deque>
#include <map>
#include <mutex>
#include <utility>

#include "common/ids.h"
#include "jobmanager/rest_util.h"

namespace sluice::rest {
namespace {

// A request id in a path (as the ones this server hands out).
#define SLUICE_REST_REQUEST_ID "([0-9a-f]{32})"

// Reads field `name` of `body` into `out` when present; InvalidArgument naming it when its
// type is wrong.
template <class T>
absl::Status Field(const json& body, const char* name, T* out) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  bool ok = std::is_same_v<T, bool> ? it->is_boolean() : it->is_string();
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat("field '", name, "' must be a ",
                                                   std::is_same_v<T, bool> ? "boolean" : "string"));
  }
  *out = it->get<T>();
  return absl::OkStatus();
}

json FailureCause(const std::string& message) {
  return json{{"class", "SavepointFailure"}, {"stack-trace", message}};
}

// Outcomes of disposal requests (the work is done when asked; the answer is kept for the GET).
class Disposals {
 public:
  std::string Add(const absl::Status& outcome) {
    std::lock_guard<std::mutex> lock(mu_);
    std::string id = NewJobId();
    outcomes_.emplace(id, outcome);
    order_.push_back(id);
    while (order_.size() > 100) {
      outcomes_.erase(order_.front());
      order_.pop_front();
    }
    return id;
  }
  std::optional<absl::Status> Find(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = outcomes_.find(id);
    if (it == outcomes_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::mutex mu_;
  std::map<std::string, absl::Status> outcomes_;
  std::deque<std::string> order_;
};

Disposals& TheDisposals() {
  static Disposals* d = new Disposals();
  return *d;
}

void Trigger(const RestContext* c, const HttpRequest& req, HttpResponse& res,
             proto::TriggerSavepointRequest r) {
  r.set_job_id(req.matches[1]);
  auto id = c->gateway->TriggerSavepoint(r);
  if (!id.ok()) return ReplyError(res, id.status());
  Reply(res, 202, json{{"request-id", *id}});
}

}  // namespace

void AddSavepointRoutes(HttpRoutes& s, const RestContext& ctx) {
  const RestContext* c = &ctx;

  // Flink: POST /jobs/:jobid/savepoints
  s.Post("/jobs/" SLUICE_REST_JOB_ID "/savepoints", [c](const HttpRequest& req, HttpResponse& res) {
    auto body = ParseJsonObject(req.body);
    if (!body.ok()) return ReplyError(res, body.status());
    std::string dir;
    bool cancel = false;
    for (absl::Status st :
         {Field(*body, "target-directory", &dir), Field(*body, "cancel-job", &cancel)}) {
      if (!st.ok()) return ReplyError(res, st);
    }
    proto::TriggerSavepointRequest r;
    r.set_target_directory(dir);
    r.set_cancel_job(cancel);
    Trigger(c, req, res, std::move(r));
  });

  // Flink: POST /jobs/:jobid/stop
  s.Post("/jobs/" SLUICE_REST_JOB_ID "/stop", [c](const HttpRequest& req, HttpResponse& res) {
    auto body = ParseJsonObject(req.body);
    if (!body.ok()) return ReplyError(res, body.status());
    std::string dir;
    bool drain = false;
    for (absl::Status st : {Field(*body, "targetDirectory", &dir), Field(*body, "drain", &drain)}) {
      if (!st.ok()) return ReplyError(res, st);
    }
    proto::TriggerSavepointRequest r;
    r.set_target_directory(dir);
    r.set_stop(true);
    r.set_drain(drain);
    Trigger(c, req, res, std::move(r));
  });

  // Flink: GET /jobs/:jobid/savepoints/:triggerid (savepoints and stops alike)
  s.Get("/jobs/" SLUICE_REST_JOB_ID "/savepoints/" SLUICE_REST_REQUEST_ID,
        [c](const HttpRequest& req, HttpResponse& res) {
          auto st = c->gateway->GetSavepoint(req.matches[1], req.matches[2]);
          if (!st.ok()) return ReplyError(res, st.status());
          if (!st->done()) return Reply(res, 200, json{{"status", {{"id", "IN_PROGRESS"}}}});
          json op = st->failure().empty() ? json{{"location", st->location()}}
                                          : json{{"failure-cause", FailureCause(st->failure())}};
          Reply(res, 200, json{{"status", {{"id", "COMPLETED"}}}, {"operation", op}});
        });

  // Flink: POST /savepoint-disposal
  s.Post("/savepoint-disposal", [c](const HttpRequest& req, HttpResponse& res) {
    auto body = ParseJsonObject(req.body);
    if (!body.ok()) return ReplyError(res, body.status());
    std::string path;
    if (absl::Status st = Field(*body, "savepoint-path", &path); !st.ok()) {
      return ReplyError(res, st);
    }
    if (path.empty()) return ReplyError(res, 400, "field 'savepoint-path' is missing");
    Reply(res, 202, json{{"request-id", TheDisposals().Add(c->gateway->DisposeSavepoint(path))}});
  });

  // Flink: GET /savepoint-disposal/:triggerid
  s.Get("/savepoint-disposal/" SLUICE_REST_REQUEST_ID,
        [](const HttpRequest& req, HttpResponse& res) {
          auto outcome = TheDisposals().Find(req.matches[1]);
          if (!outcome) {
            return ReplyError(res, 404, absl::StrCat("no disposal request ", req.matches[1]));
          }
          json op = outcome->ok()
                        ? json::object()
                        : json{{"failure-cause", FailureCause(std::string(outcome->message()))}};
          Reply(res, 200, json{{"status", {{"id", "COMPLETED"}}}, {"operation", op}});
        });
}

}  // namespace sluice::rest
