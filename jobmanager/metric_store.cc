#include "jobmanager/metric_store.h"

#include <future>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace sluice {

void MetricStore::Add(const proto::MetricDump& dump, bool final) {
  absl::MutexLock lock(&mu_);
  // Which subtasks this dump speaks of, with the values it brings (task and operator groups).
  struct Part {
    int attempt;
    Values values;
  };
  std::map<std::tuple<std::string, int, int>, Part> parts;
  for (const proto::MetricDumpGroup& g : dump.groups()) {
    if (g.kind() == "taskmanager") {
      Values& tm = task_managers_[dump.tm_id()];
      for (const auto& [k, v] : g.values()) tm[k] = v;
      continue;
    }
    if (g.kind() != "task" && g.kind() != "operator") continue;
    Part& p = parts.try_emplace({g.job_id(), g.vertex_id(), g.subtask()}, Part{g.attempt(), {}})
                  .first->second;
    // While an old attempt is still being cancelled, a TaskManager holds two: keep the newest.
    if (g.attempt() < p.attempt) continue;
    if (g.attempt() > p.attempt) p = Part{g.attempt(), {}};
    for (const auto& [k, v] : g.values()) {
      p.values[g.kind() == "task" ? k : absl::StrCat(g.operator_name(), ".", k)] = v;
    }
  }
  for (auto& [key, part] : parts) {
    const auto& [job, vertex, subtask] = key;
    if (auto current = attempts_.find(job);
        current != attempts_.end() && part.attempt < current->second) {
      continue;  // an attempt the job has been redeployed past
    }
    Subtask& s = jobs_[job][vertex][subtask];
    if (part.attempt < s.attempt) continue;                        // an older attempt's
    if (part.attempt == s.attempt && s.final && !final) continue;  // the end is known
    s.attempt = part.attempt;
    s.final = final;
    s.values = std::move(part.values);
  }
}

MetricStore::Values MetricStore::TaskManager(const std::string& tm_id) const {
  absl::MutexLock lock(&mu_);
  auto it = task_managers_.find(tm_id);
  return it == task_managers_.end() ? Values{} : it->second;
}

std::map<int, MetricStore::Values> MetricStore::Vertex(const std::string& job_id, int vertex_id,
                                                       std::set<int>* final) const {
  std::map<int, Values> out;
  absl::MutexLock lock(&mu_);
  auto j = jobs_.find(job_id);
  if (j == jobs_.end()) return out;
  auto v = j->second.find(vertex_id);
  if (v == j->second.end()) return out;
  for (const auto& [subtask, s] : v->second) {
    out[subtask] = s.values;
    if (final && s.final) final->insert(subtask);
  }
  return out;
}

void MetricStore::ForgetJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  jobs_.erase(job_id);
  attempts_.erase(job_id);
}

void MetricStore::StartAttempt(const std::string& job_id, int attempt) {
  absl::MutexLock lock(&mu_);
  attempts_[job_id] = attempt;
  auto job = jobs_.find(job_id);
  if (job == jobs_.end()) return;
  for (auto& [vertex, subtasks] : job->second) {
    std::erase_if(subtasks, [attempt](const auto& s) { return s.second.attempt < attempt; });
  }
}

void MetricStore::Retain(const std::set<std::string>& jobs,
                         const std::set<std::string>& task_managers) {
  absl::MutexLock lock(&mu_);
  std::erase_if(jobs_, [&](const auto& kv) { return !jobs.count(kv.first); });
  std::erase_if(attempts_, [&](const auto& kv) { return !jobs.count(kv.first); });
  std::erase_if(task_managers_, [&](const auto& kv) { return !task_managers.count(kv.first); });
}

MetricFetcher::MetricFetcher(MetricStore& store, TaskManagers task_managers, Jobs jobs,
                             std::chrono::milliseconds update_interval)
    : store_(store),
      task_managers_(std::move(task_managers)),
      jobs_(std::move(jobs)),
      interval_(update_interval) {}

void MetricFetcher::Update() {
  absl::MutexLock lock(&mu_);
  const auto now = std::chrono::steady_clock::now();
  if (last_ && now - *last_ < interval_) return;
  auto tms = task_managers_();
  // In parallel: one silent TaskManager costs its deadline (1 s), not one per TaskManager.
  std::vector<std::future<absl::StatusOr<proto::MetricDump>>> answers;
  for (const auto& [id, gateway] : tms) {
    answers.push_back(std::async(std::launch::async, [g = gateway] { return g->QueryMetrics(); }));
  }
  std::set<std::string> live;
  for (size_t i = 0; i < tms.size(); ++i) {
    live.insert(tms[i].first);
    absl::StatusOr<proto::MetricDump> dump = answers[i].get();
    if (!dump.ok()) {
      if (failing_.insert(tms[i].first).second) {
        spdlog::warn("metrics of TaskManager {} not fetched (the REST API shows its last): {}",
                     tms[i].first, dump.status().ToString());
      }
      continue;
    }
    if (failing_.erase(tms[i].first) > 0) {
      spdlog::info("metrics of TaskManager {} fetched again", tms[i].first);
    }
    dump->set_tm_id(tms[i].first);
    store_.Add(*dump);
  }
  store_.Retain(jobs_(), live);
  last_ = std::chrono::steady_clock::now();
}

}  // namespace sluice
