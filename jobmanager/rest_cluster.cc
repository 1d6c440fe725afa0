// The cluster's views: /overview, /config, /jobmanager/config, /taskmanagers and
// /taskmanagers/:id.
#include <map>

#include "common/job_states.h"
#include "jobmanager/job_manager_metrics.h"
#include "jobmanager/rest_util.h"

namespace sluice::rest {
namespace {

// Flink's TaskManagerInfo. timeSinceLastHeartbeat is, as in Flink, the time of the last
// heartbeat in ms since the epoch (not an age).
json TaskManagerJson(const proto::TaskManagerInfo& tm) {
  return json{{"id", tm.tm_id()},
              {"path", tm.address()},
              {"dataPort", -1},
              {"slotsNumber", tm.num_slots()},
              {"freeSlots", tm.free_slots()},
              {"timeSinceLastHeartbeat", NowMs() - tm.last_heartbeat_ms()}};
}

double Number(const std::map<std::string, std::string>& values, const std::string& name) {
  auto it = values.find(name);
  return it == values.end() ? 0 : std::strtod(it->second.c_str(), nullptr);
}

}  // namespace

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "unknown"
#endif
#ifndef SLUICE_COMMIT
#define SLUICE_COMMIT "unknown"
#endif
// Sluice's version and the commit it was built from (CMakeLists.txt), where Flink gives its own.
constexpr const char* kVersion = SLUICE_VERSION;
constexpr const char* kCommit = SLUICE_COMMIT;

void AddClusterRoutes(HttpRoutes& s, const RestContext& ctx) {
  const RestContext* c = &ctx;

  s.Get("/overview", [c](const HttpRequest&, HttpResponse& res) {
    proto::ClusterOverview ov = c->gateway->GetOverview();
    std::map<std::string, int> by_state;
    for (const auto& j : c->gateway->ListJobs(/*include_terminated=*/true))
      by_state[std::string(JobStateName(j.state()))]++;
    Reply(res, 200,
          json{{"taskmanagers", ov.task_managers_size()},
               {"slots-total", ov.total_slots()},
               {"slots-available", ov.free_slots()},
               {"jobs-running", by_state["RUNNING"] + by_state["CREATED"] + by_state["CANCELLING"] +
                                    by_state["FAILING"] + by_state["RESTARTING"]},
               {"jobs-finished", by_state["FINISHED"]},
               {"jobs-cancelled", by_state["CANCELED"]},
               {"jobs-failed", by_state["FAILED"]},
               {"flink-version", kVersion},
               {"flink-commit", kCommit}});
  });

  // Flink: the dashboard's configuration.
  s.Get("/config", [c](const HttpRequest&, HttpResponse& res) {
    Reply(res, 200,
          json{{"refresh-interval", 3000},
               {"timezone-name", "UTC"},
               {"timezone-offset", 0},
               {"flink-version", kVersion},
               {"flink-revision", kCommit},
               {"features",
                {{"web-submit", c->jars != nullptr},
                 {"web-cancel", c->conf.GetBool("web.cancel.enable")},
                 {"web-rescale", true},
                 {"web-history", false}}}});
  });

  // Flink: the JobManager's configuration as [{key, value}], the keys set explicitly.
  s.Get("/jobmanager/config", [c](const HttpRequest&, HttpResponse& res) {
    json out = json::array();
    for (const auto& [k, v] : c->conf.values()) out.push_back({{"key", k}, {"value", v}});
    Reply(res, 200, out);
  });

  s.Get("/taskmanagers", [c](const HttpRequest&, HttpResponse& res) {
    json tms = json::array();
    const proto::ClusterOverview overview = c->gateway->GetOverview();
    for (const auto& tm : overview.task_managers()) {
      tms.push_back(TaskManagerJson(tm));
    }
    Reply(res, 200, json{{"taskmanagers", tms}});
  });

  // Flink: one TaskManager with its figures (from its metrics, when fetched).
  s.Get(R"(/taskmanagers/([A-Za-z0-9_.-]+))", [c](const HttpRequest& req, HttpResponse& res) {
    const proto::ClusterOverview overview = c->gateway->GetOverview();
    for (const auto& tm : overview.task_managers()) {
      if (tm.tm_id() != req.matches[1]) continue;
      json out = TaskManagerJson(tm);
      if (c->metrics) {
        c->metrics->UpdateStore();
        auto v = c->metrics->store().TaskManager(tm.tm_id());
        out["metrics"] = {{"cpuTimeMs", Number(v, "Status.Process.CPU.Time")},
                          {"cpuLoad", Number(v, "Status.Process.CPU.Load")},
                          {"residentMemory", Number(v, "Status.Process.Memory.RSS")},
                          {"threads", Number(v, "Status.Process.Threads.Count")},
                          {"openFiles", Number(v, "Status.Process.FileDescriptors.Count")},
                          {"rocksdbBlockCacheUsage", Number(v, "rocksdb.block-cache-usage")},
                          {"rocksdbPendingCompactionBytes",
                           Number(v, "rocksdb.estimate-pending-compaction-bytes")}};
      }
      return Reply(res, 200, out);
    }
    ReplyError(res, 404, "no TaskManager " + std::string(req.matches[1]));
  });
}

}  // namespace sluice::rest
