// The metric views, as Flink's REST API has them: a list of {"id"} without ?get=, the values
// {"id", "value"} of the metrics ?get= names (comma-separated), aggregates {"id", "min", "max",
// "avg", "sum"} for the subtasks of a vertex; a name that is not there is a 400 naming it.
//   /jobmanager/metrics, /jobs/:id/metrics            the JobManager's registry
//   /taskmanagers/:id/metrics                          fetched from the TaskManager
//   /jobs/:id/vertices/:vid/metrics                    "<subtask>.<name>", operators'
//                                                      "<subtask>.<operator>.<name>"
//   /jobs/:id/vertices/:vid/subtasks/metrics           aggregated over subtasks
//   /jobs/:id/vertices/:vid/subtasks/:n/metrics        one subtask
//   /jobs/:id/vertices/:vid/watermarks                 "<subtask>.currentInputWatermark"
//   /jobs/:id/vertices/:vid/backpressure               level per subtask from the measured
//                                                      back-pressured time
#include <algorithm>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "jobmanager/job_manager_metrics.h"
#include "jobmanager/rest_util.h"

namespace sluice::rest {
namespace {

using Values = std::map<std::string, std::string>;

// The names ?get= asks for (empty when it is absent).
std::vector<std::string> Requested(const HttpRequest& req, const char* param = "get") {
  std::vector<std::string> out;
  if (!req.has_param(param)) return out;
  for (absl::string_view n : absl::StrSplit(req.get_param_value(param), ',', absl::SkipEmpty())) {
    out.emplace_back(n);
  }
  return out;
}

// Flink's answer for a metric view: without ?get= the ids of `by_name` (a map keyed by metric
// name); with it, `answer(name, entry)` for each requested name, or a 400 naming those that are
// not there.
template <class Map, class Answer>
void ReplyRequested(const HttpRequest& req, HttpResponse& res, const Map& by_name, Answer answer) {
  std::vector<std::string> get = Requested(req);
  json out = json::array();
  if (get.empty()) {
    for (const auto& [k, v] : by_name) out.push_back({{"id", k}});
    return Reply(res, 200, out);
  }
  std::vector<std::string> unknown;
  for (const std::string& name : get) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      unknown.push_back(name);
    } else {
      out.push_back(answer(name, it->second));
    }
  }
  if (!unknown.empty()) {
    return ReplyError(res, 400, absl::StrCat("unknown metric ", absl::StrJoin(unknown, ", ")));
  }
  Reply(res, 200, out);
}

// One set of values: {"id", "value"} for each requested name.
void ReplyValues(const HttpRequest& req, HttpResponse& res, const Values& values) {
  ReplyRequested(req, res, values, [](const std::string& name, const std::string& value) {
    return json{{"id", name}, {"value", value}};
  });
}

// "3" or "2-5": a subtask index or an inclusive range of them.
bool ParseSubtaskRange(const std::string& item, std::pair<int, int>* range) {
  auto number = [](absl::string_view s, int* out) {
    if (s.empty() || s.size() > 9) return false;
    for (char ch : s) {
      if (ch < '0' || ch > '9') return false;
    }
    *out = std::atoi(std::string(s).c_str());
    return true;
  };
  std::vector<absl::string_view> parts = absl::StrSplit(item, '-');
  if (parts.size() == 1) {
    if (!number(parts[0], &range->first)) return false;
    range->second = range->first;
    return true;
  }
  return parts.size() == 2 && number(parts[0], &range->first) && number(parts[1], &range->second) &&
         range->first <= range->second;
}

double Number(const std::string& s) {
  char* end = nullptr;
  double d = std::strtod(s.c_str(), &end);
  return end == s.c_str() ? std::numeric_limits<double>::quiet_NaN() : d;
}

// The subtasks' metrics of a vertex, after bringing the store up to date.
absl::Status VertexMetrics(const RestContext& ctx, const HttpRequest& req, proto::JobStatus* job,
                           int* vid, std::map<int, Values>* out) {
  absl::Status found = FindVertex(ctx, req.matches[1], req.matches[2], job, vid);
  if (!found.ok()) return found;
  if (ctx.metrics) {
    ctx.metrics->UpdateStore();
    *out = ctx.metrics->store().Vertex(job->job_id(), *vid);
  }
  return absl::OkStatus();
}

// Flink's thresholds: at most 10% of the time back-pressured is ok, at most 50% low.
const char* BackPressureLevel(double ratio) {
  return ratio <= 0.10 ? "ok" : ratio <= 0.5 ? "low" : "high";
}

// A route under /jobs/:id/vertices/:vid (then `suffix`) answered from the metrics of the
// vertex's subtasks; an unknown job or vertex is a 404.
using VertexHandler = std::function<void(const HttpRequest&, HttpResponse&, const proto::JobStatus&,
                                         int, std::map<int, Values>&)>;
void VertexRoute(HttpRoutes& s, const RestContext* c, const std::string& suffix,
                 VertexHandler handler) {
  s.Get(std::string("/jobs/" SLUICE_REST_JOB_ID "/vertices/" SLUICE_REST_VERTEX_ID) + suffix,
        [c, handler](const HttpRequest& req, HttpResponse& res) {
          proto::JobStatus job;
          int vid = 0;
          std::map<int, Values> subtasks;
          absl::Status st = VertexMetrics(*c, req, &job, &vid, &subtasks);
          if (!st.ok()) return ReplyError(res, st);
          handler(req, res, job, vid, subtasks);
        });
}

}  // namespace

void AddMetricRoutes(HttpRoutes& s, const RestContext& ctx) {
  const RestContext* c = &ctx;
  if (!c->metrics) return;

  s.Get("/jobmanager/metrics", [c](const HttpRequest& req, HttpResponse& res) {
    ReplyValues(req, res, c->metrics->JobManagerValues());
  });

  s.Get("/jobs/" SLUICE_REST_JOB_ID "/metrics", [c](const HttpRequest& req, HttpResponse& res) {
    auto job = c->gateway->GetJob(req.matches[1]);
    if (!job.ok()) return ReplyError(res, job.status());
    ReplyValues(req, res, c->metrics->JobValues(job->job_id()));
  });

  s.Get(R"(/taskmanagers/([A-Za-z0-9_.-]+)/metrics)",
        [c](const HttpRequest& req, HttpResponse& res) {
          const std::string id = req.matches[1];
          bool known = false;
          const proto::ClusterOverview overview = c->gateway->GetOverview();
          for (const auto& tm : overview.task_managers()) known |= tm.tm_id() == id;
          if (!known) return ReplyError(res, 404, "no TaskManager " + id);
          c->metrics->UpdateStore();
          ReplyValues(req, res, c->metrics->store().TaskManager(id));
        });

  VertexRoute(s, c, "/metrics",
              [](const HttpRequest& req, HttpResponse& res, const proto::JobStatus& job, int vid,
                 std::map<int, Values>& subtasks) {
                Values all;
                for (const auto& [n, values] : subtasks) {
                  for (const auto& [k, v] : values) all[absl::StrCat(n, ".", k)] = v;
                }
                ReplyValues(req, res, all);
              });

  VertexRoute(s, c, "/subtasks/([0-9]{1,9})/metrics",
              [](const HttpRequest& req, HttpResponse& res, const proto::JobStatus& job, int vid,
                 std::map<int, Values>& subtasks) {
                int n = std::atoi(std::string(req.matches[3]).c_str());
                if (n >= job.graph().vertices(vid).parallelism()) {
                  return ReplyError(res, 404, absl::StrCat("vertex ", vid, " has no subtask ", n));
                }
                ReplyValues(req, res, subtasks[n]);
              });

  // Aggregated over the subtasks (all, or those ?subtasks= names): min, max, avg, sum, or those
  // ?agg= names.
  VertexRoute(s, c, "/subtasks/metrics",
              [](const HttpRequest& req, HttpResponse& res, const proto::JobStatus& job, int vid,
                 std::map<int, Values>& subtasks) {
                // ?subtasks=0,2-3 (Flink's list of indices and ranges).
                std::vector<std::string> only = Requested(req, "subtasks");
                if (!only.empty()) {
                  std::map<int, Values> chosen;
                  for (const std::string& item : only) {
                    std::pair<int, int> range;
                    if (!ParseSubtaskRange(item, &range)) {
                      return ReplyError(res, 400,
                                        "malformed subtask index or range '" + item + "'");
                    }
                    for (auto it = subtasks.lower_bound(range.first);
                         it != subtasks.end() && it->first <= range.second; ++it) {
                      chosen.insert(*it);
                    }
                  }
                  subtasks = std::move(chosen);
                }
                std::vector<std::string> aggs = Requested(req, "agg");
                if (aggs.empty()) aggs = {"min", "max", "avg", "sum"};
                for (const std::string& a : aggs) {
                  if (a != "min" && a != "max" && a != "avg" && a != "sum" && a != "skew") {
                    return ReplyError(res, 400, "unknown aggregation '" + a + "'");
                  }
                }
                std::map<std::string, std::vector<double>> by_name;
                for (const auto& [n, values] : subtasks) {
                  for (const auto& [k, v] : values) by_name[k].push_back(Number(v));
                }
                ReplyRequested(req, res, by_name,
                               [&aggs](const std::string& name, const std::vector<double>& xs) {
                                 double lo = *std::min_element(xs.begin(), xs.end());
                                 double hi = *std::max_element(xs.begin(), xs.end());
                                 double sum = 0;
                                 for (double x : xs) sum += x;
                                 double avg = sum / static_cast<double>(xs.size());
                                 json m = {{"id", name}};
                                 for (const std::string& a : aggs) {
                                   m[a] = a == "min"   ? lo
                                          : a == "max" ? hi
                                          : a == "sum" ? sum
                                          : a == "avg" ? avg
                                                       : (avg == 0 ? 0.0 : (hi - lo) / avg * 100);
                                 }
                                 return m;
                               });
              });

  VertexRoute(s, c, "/watermarks",
              [](const HttpRequest& req, HttpResponse& res, const proto::JobStatus& job, int vid,
                 std::map<int, Values>& subtasks) {
                json out = json::array();
                for (const auto& [n, values] : subtasks) {
                  auto it = values.find("currentInputWatermark");
                  if (it != values.end()) {
                    out.push_back(
                        {{"id", absl::StrCat(n, ".currentInputWatermark")}, {"value", it->second}});
                  }
                }
                Reply(res, 200, out);
              });

  VertexRoute(s, c, "/backpressure",
              [](const HttpRequest& req, HttpResponse& res, const proto::JobStatus& job, int vid,
                 std::map<int, Values>& subtasks) {
                auto ms_per_s = [](const Values& v, const char* name) {
                  auto it = v.find(name);
                  double x = it == v.end() ? 0 : Number(it->second);
                  return std::isnan(x) ? 0.0 : std::clamp(x / 1000.0, 0.0, 1.0);
                };
                json out_subtasks = json::array();
                double worst = 0;
                for (const auto& t : job.tasks()) {
                  if (t.vertex_id() != vid) continue;
                  const Values& v = subtasks[t.subtask()];
                  double ratio = ms_per_s(v, "backPressuredTimeMsPerSecond");
                  worst = std::max(worst, ratio);
                  out_subtasks.push_back({{"subtask", t.subtask()},
                                          {"attempt-number", t.attempt()},
                                          {"backpressure-level", BackPressureLevel(ratio)},
                                          {"ratio", ratio},
                                          {"idleRatio", ms_per_s(v, "idleTimeMsPerSecond")},
                                          {"busyRatio", ms_per_s(v, "busyTimeMsPerSecond")}});
                }
                Reply(res, 200,
                      json{{"status", "ok"},
                           {"backpressure-level", BackPressureLevel(worst)},
                           {"end-timestamp", NowMs()},
                           {"subtasks", out_subtasks}});
              });
}

}  // namespace sluice::rest
