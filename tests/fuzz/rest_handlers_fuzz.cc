// The REST API's handlers themselves (jobmanager/rest_*.cc, AddRestRoutes) over a real
// Dispatcher, called as the HTTP server calls them (HttpRoutes::Serve) without a socket. Behind
// them: a job of two vertices running on a TaskManager that takes every call (the unit tests'
// TestingTaskManagerGateway), an uploaded library, metrics, the token guard (required for
// changes only) and the configuration. An input is one request, as text:
//
//   METHOD TARGET\n
//   Header: value\n        (any number)
//   \n
//   body
//
// "$JOB", "$JAR" and "$TM" in the target, the headers and the body stand for the job's id, the
// library's id and the TaskManager's id, which a run draws afresh; "$TOKEN" for the token and
// "$DIR" for a folder of the run's own (savepoint targets). Every answer must be a status of
// 100-599; one of 400 and above must be Flink's {"errors": [...]} body in JSON, and a JSON answer
// must parse. After a request that may change something, the cluster is put back: a job running
// again if the request changed the job (a new one, which "$JOB" then names), the library uploaded
// again if it was deleted, and any other upload deleted, so that inputs do not depend on one
// another more than that and the run's disk use stays flat.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_replace.h"
#include "common/config.h"
#include "common/http_routes.h"
#include "fuzz_support.h"
#include "jobmanager/blob_store.h"
#include "jobmanager/dispatcher.h"
#include "jobmanager/jar_store.h"
#include "jobmanager/job_manager_metrics.h"
#include "jobmanager/rest_server.h"
#include "nlohmann/json.hpp"
#include "testing_task_manager_gateway.h"
#include "two_vertex_job.h"

namespace {

using sluice::Configuration;
using sluice::Dispatcher;
using sluice::HttpRequest;
using sluice::HttpResponse;
using sluice::HttpRoutes;

constexpr char kToken[] = "fuzz-token-0123456789abcdef";
constexpr char kTm[] = "tm-fuzz";

struct Cluster {
  Configuration conf;
  sluice::TestingTaskManagerGateways gateways;
  std::unique_ptr<sluice::JobManagerMetrics> metrics;
  std::unique_ptr<Dispatcher> dispatcher;
  sluice::RestContext context;
  HttpRoutes routes;
  std::string library, library_sha, job_id, jar_id;
};

#define REQUIRE(expr)                                     \
  do {                                                    \
    if (!(expr)) {                                        \
      std::fprintf(stderr, "set-up failed: %s\n", #expr); \
      std::abort();                                       \
    }                                                     \
  } while (0)

// Each task of `job` reported in `state` by its TaskManager.
void ReportTasks(Cluster& c, const std::string& job_id, const sluice::proto::JobStatus& job,
                 sluice::proto::TaskState state) {
  for (const auto& t : job.tasks()) {
    sluice::proto::TaskStateUpdate u;
    u.mutable_task()->set_job_id(job_id);
    u.mutable_task()->set_vertex_id(t.vertex_id());
    u.mutable_task()->set_subtask(t.subtask());
    u.mutable_task()->set_attempt(t.attempt());
    u.set_state(state);
    u.set_tm_id(t.tm_id());
    (void)c.dispatcher->UpdateTaskState(u);
  }
}

// A job of two vertices (source -> sink, parallelism 2) submitted and reported running.
std::string RunJob(Cluster& c, const std::string& library_sha) {
  sluice::proto::SubmitJobRequest req =
      sluice::TwoVertexJob(library_sha, 2, sluice::proto::PARTITIONER_HASH, "fuzzed");
  // Checkpointed, so that savepoints and stops get past their first check; no checkpoint is
  // ever taken (no coordinator thread runs).
  (*req.mutable_config())["execution.checkpointing.interval"] = "1 h";
  auto id = c.dispatcher->SubmitJob(req);
  if (!id.ok()) std::fprintf(stderr, "%s\n", std::string(id.status().message()).c_str());
  REQUIRE(id.ok());
  c.dispatcher->RunCoordinatorOnce();
  auto job = c.dispatcher->GetJob(*id);
  REQUIRE(job.ok());
  ReportTasks(c, *id, *job, sluice::proto::TASK_RUNNING);
  return *id;
}

Cluster& TheCluster() {
  static Cluster* cluster = [] {
    auto* c = new Cluster();
    const std::string dir = sluice::fuzz::ScratchDir();
    REQUIRE(c->conf.Set("state.checkpoints.dir", dir + "/checkpoints").ok());
    REQUIRE(c->conf.Set("web.upload.dir", dir + "/uploads").ok());
    c->metrics = std::make_unique<sluice::JobManagerMetrics>(c->conf);
    Dispatcher::Options o;
    o.jm_id = "jm-fuzz";
    o.start_threads = false;
    o.heartbeat_timeout = std::chrono::hours(24);  // the TaskManager never heartbeats
    o.metrics = c->metrics.get();
    auto blobs = sluice::BlobStore::Create(dir + "/blobs");
    REQUIRE(blobs.ok());
    c->dispatcher =
        std::make_unique<Dispatcher>(c->conf, o, std::move(*blobs), c->gateways.factory());
    sluice::proto::RegisterTaskManagerRequest r;
    r.set_tm_id(kTm);
    r.set_address(std::string(kTm) + ":1");
    r.set_num_slots(8);
    REQUIRE(c->dispatcher->RegisterTaskManager(r).ok());
    c->library = std::string(
                     "\x7f"
                     "ELF",
                     4) +
                 "library";
    auto sha = c->dispatcher->UploadLibrary(c->library);
    REQUIRE(sha.ok());
    c->library_sha = *sha;
    c->job_id = RunJob(*c, c->library_sha);

    c->context.gateway = c->dispatcher.get();
    c->context.metrics = c->metrics.get();
    c->context.conf = c->conf;
    c->context.task_manager = [c](const std::string& tm_id) {
      return tm_id == kTm ? c->gateways.factory()(std::string(kTm) + ":1")
                          : std::shared_ptr<sluice::TaskManagerGateway>();
    };
    auto jars = sluice::JarStore::Create(dir + "/uploads");
    REQUIRE(jars.ok());
    c->context.jars = std::move(*jars);
    auto jar = c->context.jars->Put(c->library, "fuzzed.so");
    REQUIRE(jar.ok());
    c->jar_id = jar->id;
    c->context.auth_token = kToken;
    c->context.auth_changes_only = true;
    sluice::AddRestRoutes(c->routes, c->context);
    return c;
  }();
  return *cluster;
}

// Puts back what a request may have changed (see the top of the file).
// A job that a request changed, even one still running (a savepoint under way, new resource
// requirements), is replaced too.
void Restore(Cluster& c, bool job_changed) {
  auto job = c.dispatcher->GetJob(c.job_id);
  if (job_changed || !job.ok() || job->state() != sluice::proto::JOB_RUNNING) {
    // Cancelled, its tasks confirming it as a TaskManager would, so that its slots are free.
    (void)c.dispatcher->CancelJob(c.job_id);
    if (job.ok()) ReportTasks(c, c.job_id, *job, sluice::proto::TASK_CANCELED);
    c.dispatcher->RunMonitorOnce();
    c.dispatcher->RunCoordinatorOnce();
    c.job_id = RunJob(c, c.library_sha);
    c.gateways.at(std::string(kTm) + ":1").ClearCalls();
  }
  bool have_jar = false;
  for (const sluice::StoredJar& jar : c.context.jars->List()) {
    if (jar.id == c.jar_id) {
      have_jar = true;
    } else {
      (void)c.context.jars->Delete(jar.id);
    }
  }
  if (!have_jar) {
    auto jar = c.context.jars->Put(c.library, "fuzzed.so");
    REQUIRE(jar.ok());
    c.jar_id = jar->id;
  }
}

// The first line: METHOD TARGET; then headers up to an empty line; then the body.
bool ParseInput(const std::string& text, HttpRequest* req) {
  size_t eol = text.find('\n');
  const std::string first = text.substr(0, eol);
  const size_t space = first.find(' ');
  if (space == std::string::npos) return false;
  req->method = first.substr(0, space);
  req->target = first.substr(space + 1);
  if (req->target.size() > sluice::kMaxTargetBytes) return false;  // the server answers 414
  size_t at = eol == std::string::npos ? text.size() : eol + 1;
  while (at < text.size()) {
    eol = text.find('\n', at);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(at, eol - at);
    at = std::min(text.size(), eol + 1);
    if (line.empty()) break;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    req->headers.emplace_back(line.substr(0, colon), value);
  }
  req->body = text.substr(at);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Cluster& c = TheCluster();
  const std::string text =
      absl::StrReplaceAll(std::string(reinterpret_cast<const char*>(data), size),
                          {{"$JOB", c.job_id},
                           {"$JAR", c.jar_id},
                           {"$TM", kTm},
                           {"$TOKEN", kToken},
                           {"$DIR", sluice::fuzz::ScratchDir() + "/savepoints"}});
  HttpRequest req;
  if (!ParseInput(text, &req)) return 0;
  req.remote_address = "127.0.0.1";
  HttpResponse res;
  c.routes.Serve(req, res, /*parse_forms=*/true);
  SLUICE_FUZZ_CHECK(res.status >= 100 && res.status <= 599);
  const bool json = res.content_type.rfind("application/json", 0) == 0;
  if (res.status >= 400) {
    SLUICE_FUZZ_CHECK(json);
    auto body = nlohmann::json::parse(res.body, nullptr, /*allow_exceptions=*/false);
    SLUICE_FUZZ_CHECK(body.is_object() && body.contains("errors") && body["errors"].is_array());
  } else if (json) {
    SLUICE_FUZZ_CHECK(nlohmann::json::accept(res.body));
  }
  if (req.method != "GET" && req.method != "HEAD") {
    Restore(c, res.status < 400 && req.path.find("/jobs/") != std::string::npos);
  }
  return 0;
}
