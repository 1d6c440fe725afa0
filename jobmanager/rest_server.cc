#include "jobmanager/rest_server.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/job_states.h"
#include "common/status_macros.h"
#include "jobmanager/dashboard_html.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

using nlohmann::json;

void Reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void ReplyError(httplib::Response& res, const absl::Status& s) {
  int status = 500;
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      status = 404;
      break;
    case absl::StatusCode::kInvalidArgument:
      status = 400;
      break;
    case absl::StatusCode::kFailedPrecondition:
      status = 409;
      break;
    default:
      break;
  }
  Reply(res, status, json{{"errors", json::array({std::string(s.message())})}});
}

json JobOverview(const proto::JobStatus& j) {
  int64_t end = j.end_time_ms() > 0 ? j.end_time_ms() : -1;
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  return json{{"jid", j.job_id()},
              {"name", j.name()},
              {"state", std::string(JobStateName(j.state()))},
              {"start-time", j.start_time_ms()},
              {"end-time", end},
              {"duration", (end > 0 ? end : now) - j.start_time_ms()},
              {"parallelism", j.parallelism()},
              {"restarts", j.restarts()}};
}

// The routes of the REST API and dashboard, added to each listening server.
void AddRoutes(httplib::Server& s, JobManagerGateway& gateway) {
  JobManagerGateway* service = &gateway;

  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        Reply(res, 500, json{{"errors", json::array({what})}});
      });

  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(kDashboardHtml, "text/html; charset=utf-8");
  });

  s.Get("/overview", [service](const httplib::Request&, httplib::Response& res) {
    proto::ClusterOverview ov = service->GetOverview();
    std::map<std::string, int> by_state;
    for (const auto& j : service->ListJobs(/*include_terminated=*/true))
      by_state[std::string(JobStateName(j.state()))]++;
    Reply(res, 200,
          json{{"taskmanagers", ov.task_managers_size()},
               {"slots-total", ov.total_slots()},
               {"slots-available", ov.free_slots()},
               {"jobs-running", by_state["RUNNING"] + by_state["CREATED"] + by_state["CANCELLING"] +
                                    by_state["FAILING"] + by_state["RESTARTING"]},
               {"jobs-finished", by_state["FINISHED"]},
               {"jobs-cancelled", by_state["CANCELED"]},
               {"jobs-failed", by_state["FAILED"]}});
  });

  s.Get("/taskmanagers", [service](const httplib::Request&, httplib::Response& res) {
    proto::ClusterOverview ov = service->GetOverview();
    json tms = json::array();
    for (const auto& tm : ov.task_managers()) {
      tms.push_back({{"id", tm.tm_id()},
                     {"path", tm.address()},
                     {"slotsNumber", tm.num_slots()},
                     {"freeSlots", tm.free_slots()},
                     {"timeSinceLastHeartbeat", tm.last_heartbeat_ms()}});
    }
    Reply(res, 200, json{{"taskmanagers", tms}});
  });

  auto list = [service](bool overview) {
    return [service, overview](const httplib::Request&, httplib::Response& res) {
      json arr = json::array();
      for (const auto& j : service->ListJobs(/*include_terminated=*/true)) {
        arr.push_back(
            overview ? JobOverview(j)
                     : json{{"id", j.job_id()}, {"status", std::string(JobStateName(j.state()))}});
      }
      Reply(res, 200, json{{"jobs", arr}});
    };
  };
  s.Get("/jobs", list(false));
  s.Get("/jobs/overview", list(true));

  s.Get(R"(/jobs/([0-9a-f]{32}))", [service](const httplib::Request& req, httplib::Response& res) {
    auto job = service->GetJob(req.matches[1]);
    if (!job.ok()) return ReplyError(res, job.status());
    const proto::JobStatus& st = *job;
    json j = JobOverview(st);
    json tasks = json::array();
    for (const auto& t : st.tasks()) {
      tasks.push_back({{"vertex", t.vertex_id()},
                       {"subtask", t.subtask()},
                       {"status", std::string(TaskStateName(t.state()))},
                       {"taskmanager-id", t.tm_id()},
                       {"failure", t.failure()}});
    }
    j["tasks"] = tasks;
    j["failure-cause"] = st.failure();
    Reply(res, 200, j);
  });

  s.Get(R"(/jobs/([0-9a-f]{32})/exceptions)",
        [service](const httplib::Request& req, httplib::Response& res) {
          auto job = service->GetJob(req.matches[1]);
          if (!job.ok()) return ReplyError(res, job.status());
          const proto::JobStatus& st = *job;
          json root = st.failure().empty() ? json(nullptr) : json(st.failure());
          Reply(res, 200, json{{"root-exception", root}});
        });

  // Flink: GET /jobs/:jobid/checkpoints (counts and the latest completed checkpoint).
  s.Get(R"(/jobs/([0-9a-f]{32})/checkpoints)", [service](const httplib::Request& req,
                                                         httplib::Response& res) {
    auto job = service->GetJob(req.matches[1]);
    if (!job.ok()) return ReplyError(res, job.status());
    const proto::JobStatus& st = *job;
    json latest = nullptr;
    if (st.last_checkpoint_id() > 0) {
      latest = json{{"id", st.last_checkpoint_id()}, {"external_path", st.last_checkpoint_path()}};
    }
    Reply(res, 200,
          json{{"counts",
                {{"completed", st.completed_checkpoints()},
                 {"failed", st.failed_checkpoints()},
                 {"total", st.completed_checkpoints() + st.failed_checkpoints()}}},
               {"latest", {{"completed", latest}}}});
  });

  // Flink: PATCH /jobs/:jobid?mode=cancel
  s.Patch(R"(/jobs/([0-9a-f]{32}))", [service](const httplib::Request& req,
                                               httplib::Response& res) {
    std::string mode = req.has_param("mode") ? req.get_param_value("mode") : "cancel";
    if (mode != "cancel") {
      return Reply(res, 400, json{{"errors", json::array({"unsupported mode '" + mode + "'"})}});
    }
    absl::Status st = service->CancelJob(req.matches[1]);
    if (!st.ok()) return ReplyError(res, st);
    Reply(res, 202, json::object());
  });

  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404 && res.body.empty()) {
      Reply(res, 404, json{{"errors", json::array({"no such resource: " + req.path})}});
    }
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<RestServer>> RestServer::Start(JobManagerGateway& gateway,
                                                              const std::string& host, int port) {
  HttpListenerOptions o;
  o.what = "REST server";
  o.host = host;
  o.host_key = "rest.bind-address";
  o.port_key = "rest.port";
  o.first_port = o.last_port = port;
  ASSIGN_OR_RETURN(auto listener,
                   HttpListener::Start(o, [&](httplib::Server& s) { AddRoutes(s, gateway); }));
  return std::unique_ptr<RestServer>(new RestServer(std::move(listener)));
}

RestServer::~RestServer() { Stop(); }

void RestServer::Stop() { listener_->Stop(); }

}  // namespace sluice
