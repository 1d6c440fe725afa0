// The job views: /jobs, /jobs/overview, /jobs/:id (Flink's job details: vertices, plan,
// timestamps, status counts), PATCH /jobs/:id to cancel, /jobs/:id/plan,
// /jobs/:id/exceptions and /jobs/:id/vertices/:vid with its subtasks.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/job_states.h"
#include "jobmanager/job_manager_metrics.h"
#include "jobmanager/rest_util.h"

namespace sluice::rest {
namespace {

// Flink's task counts of a job overview: its subtasks by state, every state named. Subtasks of
// the graph without a deployed attempt (a job waiting for slots) count as created; Flink's states
// that Sluice's tasks never take stay 0.
json TaskCounts(const proto::JobStatus& j) {
  json t{{"total", 0},   {"created", 0},     {"scheduled", 0},   {"deploying", 0},
         {"running", 0}, {"finished", 0},    {"canceling", 0},   {"canceled", 0},
         {"failed", 0},  {"reconciling", 0}, {"initializing", 0}};
  int total = 0;
  for (const auto& v : j.graph().vertices()) total += v.parallelism();
  total = std::max(total, j.tasks_size());
  for (const auto& task : j.tasks()) {
    std::string state = absl::AsciiStrToLower(std::string(TaskStateName(task.state())));
    if (t.contains(state)) t[state] = t[state].get<int>() + 1;
  }
  t["total"] = total;
  t["created"] = total - j.tasks_size();
  return t;
}

// `j` with its tasks and state timestamps (GetJob).
json JobOverview(const proto::JobStatus& j) {
  int64_t end = j.end_time_ms() > 0 ? j.end_time_ms() : -1;
  int64_t last_modification = j.start_time_ms();
  for (const auto& [state, at] : j.state_timestamps()) {
    last_modification = std::max(last_modification, at);
  }
  return json{{"jid", j.job_id()},
              {"name", j.name()},
              {"state", std::string(JobStateName(j.state()))},
              {"start-time", j.start_time_ms()},
              {"end-time", end},
              {"duration", (end > 0 ? end : NowMs()) - j.start_time_ms()},
              {"last-modification", last_modification},
              {"tasks", TaskCounts(j)},
              {"parallelism", j.parallelism()},
              {"restarts", j.restarts()}};
}

constexpr proto::TaskState kTaskStates[] = {proto::TASK_DEPLOYING, proto::TASK_RUNNING,
                                            proto::TASK_FINISHED, proto::TASK_CANCELED,
                                            proto::TASK_FAILED};

// Subtasks by state, every state named (Flink's status counts).
json StatusCounts(const proto::JobStatus& job, int vertex_id) {
  json counts = json::object();
  for (proto::TaskState s : kTaskStates) counts[std::string(TaskStateName(s))] = 0;
  for (const auto& t : job.tasks()) {
    if (vertex_id < 0 || t.vertex_id() == vertex_id) {
      counts[std::string(TaskStateName(t.state()))] =
          counts[std::string(TaskStateName(t.state()))].get<int>() + 1;
    }
  }
  return counts;
}

// A vertex's state from its subtasks' (as Flink aggregates them).
std::string VertexState(const json& counts, int parallelism) {
  auto n = [&](proto::TaskState s) { return counts[std::string(TaskStateName(s))].get<int>(); };
  int total = 0;
  for (proto::TaskState s : kTaskStates) total += n(s);
  if (total == 0) return "CREATED";  // no task deployed yet (waiting for task slots)
  if (n(proto::TASK_FAILED) > 0) return "FAILED";
  if (n(proto::TASK_FINISHED) == parallelism) return "FINISHED";
  if (n(proto::TASK_FINISHED) + n(proto::TASK_CANCELED) + n(proto::TASK_FAILED) == parallelism) {
    return "CANCELED";
  }
  if (n(proto::TASK_RUNNING) > 0) return "RUNNING";
  return "DEPLOYING";
}

const char* ShipStrategy(proto::Partitioner p) {
  switch (p) {
    case proto::PARTITIONER_FORWARD:
      return "FORWARD";
    case proto::PARTITIONER_REBALANCE:
      return "REBALANCE";
    case proto::PARTITIONER_RESCALE:
      return "RESCALE";
    case proto::PARTITIONER_HASH:
      return "HASH";
    case proto::PARTITIONER_BROADCAST:
      return "BROADCAST";
    case proto::PARTITIONER_CUSTOM:
      return "CUSTOM";
    default:
      return "UNKNOWN";
  }
}

json Plan(const proto::JobStatus& job) { return PlanJson(job.graph(), job.job_id(), job.name()); }

json Times(int64_t start, int64_t end) {
  return json{{"start-time", start > 0 ? start : -1},
              {"end-time", end > 0 ? end : -1},
              {"duration", start > 0 ? (end > 0 ? end : NowMs()) - start : -1}};
}

}  // namespace

json PlanJson(const proto::JobGraph& g, const std::string& job_id, const std::string& name) {
  json nodes = json::array();
  for (const auto& v : g.vertices()) {
    json inputs = json::array();
    for (const auto& e : g.edges()) {
      if (e.target_vertex() != v.id()) continue;
      inputs.push_back({{"num", inputs.size()},
                        {"id", std::to_string(e.source_vertex())},
                        {"ship_strategy", ShipStrategy(e.partitioner())},
                        {"exchange", "pipelined_bounded"}});
    }
    nodes.push_back({{"id", std::to_string(v.id())},
                     {"parallelism", v.parallelism()},
                     {"operator", ""},
                     {"operator_strategy", ""},
                     {"description", v.name()},
                     {"inputs", inputs},
                     {"optimizer_properties", json::object()}});
  }
  return json{{"jid", job_id}, {"name", name}, {"type", "STREAMING"}, {"nodes", nodes}};
}

absl::Status FindVertex(const RestContext& ctx, const std::string& job_id,
                        const std::string& vertex, proto::JobStatus* job, int* vertex_id) {
  auto j = ctx.gateway->GetJob(job_id);
  if (!j.ok()) return j.status();
  *job = std::move(*j);
  int v = std::atoi(vertex.c_str());
  if (v < 0 || v >= job->graph().vertices_size()) {
    return absl::NotFoundError(absl::StrCat("job ", job_id, " has no vertex ", vertex));
  }
  *vertex_id = v;
  return absl::OkStatus();
}

namespace {

// Flink's IO figures (IOMetricsInfo) of one subtask or, summed, of a vertex.
struct IoFigures {
  int64_t read_bytes = 0, write_bytes = 0, read_records = 0, write_records = 0;
  int64_t back_pressured = 0, idle = 0, busy = 0;
  void Add(const MetricStore::Values& v) {
    auto get = [&v](const char* name) -> int64_t {
      auto it = v.find(name);
      return it == v.end() ? 0 : std::strtoll(it->second.c_str(), nullptr, 10);
    };
    read_bytes += get("numBytesIn");
    write_bytes += get("numBytesOut");
    read_records += get("numRecordsIn");
    write_records += get("numRecordsOut");
    back_pressured += get("accumulatedBackPressuredTime");
    idle += get("accumulatedIdleTime");
    busy += get("accumulatedBusyTime");
  }
  json Json(bool complete) const {
    return json{{"read-bytes", read_bytes},
                {"read-bytes-complete", complete},
                {"write-bytes", write_bytes},
                {"write-bytes-complete", complete},
                {"read-records", read_records},
                {"read-records-complete", complete},
                {"write-records", write_records},
                {"write-records-complete", complete},
                {"accumulated-backpressured-time", back_pressured},
                {"accumulated-idle-time", idle},
                {"accumulated-busy-time", busy}};
  }
};

}  // namespace

json VertexIoMetrics(const RestContext& ctx, const proto::JobStatus& job, int vertex_id) {
  IoFigures sum;
  bool complete = false;
  if (ctx.metrics) {
    std::set<int> final;
    for (const auto& [subtask, v] : ctx.metrics->store().Vertex(job.job_id(), vertex_id, &final)) {
      sum.Add(v);
    }
    // Complete once every subtask's figures are its task's final ones.
    complete = static_cast<int>(final.size()) == job.graph().vertices(vertex_id).parallelism();
  }
  return sum.Json(complete);
}

// Sluice's own: the autoscaler's newest figures per vertex and its decisions, newest first
// (null for a job without it).
static json AutoscalerJson(const proto::JobStatus& st) {
  if (!st.autoscaler_enabled()) return nullptr;
  auto vertex = [](const proto::AutoscalerVertex& e) {
    auto rate = [](double r) { return std::isfinite(r) ? json(r) : json(nullptr); };
    return json{{"id", std::to_string(e.vertex_id())},
                {"parallelism", e.parallelism()},
                {"wanted", e.wanted()},
                {"true-processing-rate", rate(e.true_rate())},
                {"target-rate", rate(e.target_rate())},
                {"utilization", rate(e.utilization())},
                {"reason", e.reason()}};
  };
  auto parallelism = [](const google::protobuf::Map<int32_t, int32_t>& m) {
    json out = json::object();
    for (const auto& [v, p] : m) out[std::to_string(v)] = p;
    return out;
  };
  json vertices = json::array();
  for (const auto& e : st.autoscaler_vertices()) vertices.push_back(vertex(e));
  json decisions = json::array();
  for (const auto& d : st.autoscaler_decisions()) {
    json figures = json::array();
    for (const auto& e : d.vertices()) figures.push_back(vertex(e));
    decisions.push_back(
        {{"timestamp", d.timestamp_ms()},
         {"from", parallelism(d.from_parallelism())},
         {"to", parallelism(d.to_parallelism())},
         {"description", d.description()},
         {"outcome", d.outcome()},
         {"trigger-id", d.trigger_id().empty() ? json(nullptr) : json(d.trigger_id())},
         {"vertices", figures}});
  }
  return json{{"vertices", vertices}, {"decisions", decisions}};
}

void AddJobRoutes(HttpRoutes& s, const RestContext& ctx) {
  const RestContext* c = &ctx;

  auto list = [c](bool overview) {
    return [c, overview](const HttpRequest&, HttpResponse& res) {
      json arr = json::array();
      for (const auto& j : c->gateway->ListJobs(/*include_terminated=*/true)) {
        if (!overview) {
          arr.push_back(json{{"id", j.job_id()}, {"status", std::string(JobStateName(j.state()))}});
          continue;
        }
        // The tasks and state timestamps come with the job's full status only.
        auto full = c->gateway->GetJob(j.job_id());
        arr.push_back(JobOverview(full.ok() ? *full : j));
      }
      Reply(res, 200, json{{"jobs", arr}});
    };
  };
  s.Get("/jobs", list(false));
  s.Get("/jobs/overview", list(true));

  s.Get("/jobs/" SLUICE_REST_JOB_ID, [c](const HttpRequest& req, HttpResponse& res) {
    auto job = c->gateway->GetJob(req.matches[1]);
    if (!job.ok()) return ReplyError(res, job.status());
    const proto::JobStatus& st = *job;
    if (c->metrics) c->metrics->UpdateStore();
    json j = JobOverview(st);
    j["isStoppable"] = false;
    j["maxParallelism"] = st.graph().max_parallelism();
    j["now"] = NowMs();
    json timestamps = json::object();
    for (const auto& [state, ms] : st.state_timestamps()) timestamps[state] = ms;
    j["timestamps"] = timestamps;
    json vertices = json::array();
    for (const auto& v : st.graph().vertices()) {
      json counts = StatusCounts(st, v.id());
      int64_t start = 0, end = 0;
      bool ended = true;
      for (const auto& t : st.tasks()) {
        if (t.vertex_id() != v.id()) continue;
        if (start == 0 || t.start_time_ms() < start) start = t.start_time_ms();
        end = std::max(end, t.end_time_ms());
        ended &= t.end_time_ms() > 0;
      }
      json vx = {{"id", std::to_string(v.id())},
                 {"name", v.name()},
                 {"maxParallelism", st.graph().max_parallelism()},
                 {"parallelism", v.parallelism()},
                 {"status", VertexState(counts, v.parallelism())},
                 {"tasks", counts},
                 {"metrics", VertexIoMetrics(*c, st, v.id())}};
      vx.update(Times(start, ended ? end : 0));
      vertices.push_back(vx);
    }
    j["vertices"] = vertices;
    j["status-counts"] = StatusCounts(st, -1);
    j["plan"] = Plan(st);
    j["failure-cause"] = st.failure();
    // Sluice's own: what a CREATED job waits for (the adaptive scheduler), else null.
    j["waiting-for-resources"] =
        st.waiting_for_resources().empty() ? json(nullptr) : json(st.waiting_for_resources());
    j["autoscaler"] = AutoscalerJson(st);
    Reply(res, 200, j);
  });

  s.Get("/jobs/" SLUICE_REST_JOB_ID "/plan", [c](const HttpRequest& req, HttpResponse& res) {
    auto job = c->gateway->GetJob(req.matches[1]);
    if (!job.ok()) return ReplyError(res, job.status());
    Reply(res, 200, json{{"plan", Plan(*job)}});
  });

  // Flink: the root cause and the exception history, newest first.
  s.Get("/jobs/" SLUICE_REST_JOB_ID "/exceptions", [c](const HttpRequest& req, HttpResponse& res) {
    auto job = c->gateway->GetJob(req.matches[1]);
    if (!job.ok()) return ReplyError(res, job.status());
    const proto::JobStatus& st = *job;
    json entries = json::array();
    for (const auto& e : st.exceptions()) {
      entries.push_back({{"exceptionName", "TaskFailure"},
                         {"stacktrace", e.cause()},
                         {"timestamp", e.timestamp_ms()},
                         {"taskName", e.task_name().empty() ? json(nullptr) : json(e.task_name())},
                         {"endpoint", nullptr},
                         {"taskManagerId", e.tm_id().empty() ? json(nullptr) : json(e.tm_id())},
                         {"failureLabels", json::object()},
                         {"concurrentExceptions", json::array()}});
    }
    json out = {{"root-exception", st.failure().empty() ? json(nullptr) : json(st.failure())},
                {"timestamp",
                 st.exceptions_size() > 0 ? json(st.exceptions(0).timestamp_ms()) : json(nullptr)},
                {"all-exceptions", json::array()},
                {"truncated", false},
                {"exceptionHistory", {{"entries", entries}, {"truncated", false}}}};
    Reply(res, 200, out);
  });

  // Flink: one vertex with its subtasks.
  s.Get("/jobs/" SLUICE_REST_JOB_ID "/vertices/" SLUICE_REST_VERTEX_ID, [c](const HttpRequest& req,
                                                                            HttpResponse& res) {
    proto::JobStatus job;
    int vid = 0;
    absl::Status found = FindVertex(*c, req.matches[1], req.matches[2], &job, &vid);
    if (!found.ok()) return ReplyError(res, found);
    std::map<int, MetricStore::Values> metrics;
    std::set<int> final;
    if (c->metrics) {
      c->metrics->UpdateStore();
      metrics = c->metrics->store().Vertex(job.job_id(), vid, &final);
    }
    const auto& v = job.graph().vertices(vid);
    json subtasks = json::array();
    for (const auto& t : job.tasks()) {
      if (t.vertex_id() != vid) continue;
      IoFigures io;
      io.Add(metrics[t.subtask()]);
      json st = {{"subtask", t.subtask()}, {"status", std::string(TaskStateName(t.state()))},
                 {"attempt", t.attempt()}, {"taskmanager-id", t.tm_id()},
                 {"failure", t.failure()}, {"metrics", io.Json(final.count(t.subtask()) > 0)}};
      st.update(Times(t.start_time_ms(), t.end_time_ms()));
      subtasks.push_back(st);
    }
    Reply(res, 200,
          json{{"id", std::to_string(vid)},
               {"name", v.name()},
               {"parallelism", v.parallelism()},
               {"maxParallelism", job.graph().max_parallelism()},
               {"now", NowMs()},
               {"subtasks", subtasks}});
  });

  // Flink: PATCH /jobs/:jobid?mode=cancel
  s.Patch("/jobs/" SLUICE_REST_JOB_ID, [c](const HttpRequest& req, HttpResponse& res) {
    std::string mode = req.has_param("mode") ? req.get_param_value("mode") : "cancel";
    if (mode != "cancel") return ReplyError(res, 400, "unsupported mode '" + mode + "'");
    if (!c->conf.GetBool("web.cancel.enable")) {
      return ReplyError(res, 403,
                        "cancelling jobs over the REST API is disabled on this cluster "
                        "(web.cancel.enable: false)");
    }
    absl::Status st = c->gateway->CancelJob(req.matches[1]);
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 202, json::object());
  });
}

}  // namespace sluice::rest
