// The Dispatcher's metrics (Flink's jobmanager and jobmanager_job scopes) and what the
// JobManager's metric fetcher asks of it. The gauges read the Dispatcher under its lock.
#include <limits>

#include "common/ids.h"
#include "jobmanager/dispatcher.h"

namespace sluice {

void Dispatcher::RegisterClusterMetrics() {
  if (!options_.metrics) return;
  metrics::MetricGroup& jm = options_.metrics->group();
  cluster_metrics_ =
      jm.registry().CreateRootGroup("jobmanager", jm.info().variables, jm.info().identifier);
  cluster_metrics_->AddGauge("numRegisteredTaskManagers", [this] {
    return static_cast<double>(GetOverview().task_managers_size());
  });
  cluster_metrics_->AddGauge("taskSlotsTotal",
                             [this] { return static_cast<double>(GetOverview().total_slots()); });
  cluster_metrics_->AddGauge("taskSlotsAvailable",
                             [this] { return static_cast<double>(GetOverview().free_slots()); });
  cluster_metrics_->AddGauge("numRunningJobs", [this] {
    return static_cast<double>(ListJobs(/*include_terminated=*/false).size());
  });
}

std::vector<std::pair<std::string, std::shared_ptr<TaskManagerGateway>>>
Dispatcher::TaskManagerGateways() {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, std::shared_ptr<TaskManagerGateway>>> out;
  const proto::ClusterOverview overview = resources_.Overview(Clock::now());
  for (const auto& tm : overview.task_managers()) {
    if (auto g = resources_.Gateway(tm.tm_id())) out.emplace_back(tm.tm_id(), std::move(g));
  }
  return out;
}

std::set<std::string> Dispatcher::RetainedJobIds() {
  absl::MutexLock lock(&mu_);
  std::set<std::string> ids;
  for (const auto& [id, job] : jobs_) ids.insert(id);
  return ids;
}

double Dispatcher::ReadJob(const std::string& job_id,
                           const std::function<double(const Job&)>& read) {
  absl::MutexLock lock(&mu_);
  Job* job = FindJobLocked(job_id);
  return job ? read(*job) : std::numeric_limits<double>::quiet_NaN();
}

void Dispatcher::RegisterJobMetricsLocked(Job& job) {
  if (!options_.metrics) return;
  job.metrics = options_.metrics->group().AddGroup(
      "job", {{"job_id", job.id}, {"job_name", job.graph.name()}}, [&] {
        std::vector<std::string> id = options_.metrics->group().info().identifier;
        id.push_back(job.graph.name());
        return id;
      }());
  metrics::MetricGroup& g = *job.metrics;
  const std::string id = job.id;
  auto gauge = [this, &g, id](const char* name, std::function<double(const Job&)> read) {
    g.AddGauge(name, [this, id, read] { return ReadJob(id, read); });
  };
  gauge("numRestarts", [](const Job& j) { return static_cast<double>(j.restarts); });
  gauge("uptime", [](const Job& j) {
    return j.state == proto::JOB_RUNNING ? static_cast<double>(NowMillis() - j.running_since_ms)
                                         : 0.0;
  });
  // The checkpoint figures come from the job's statistics tracker, as Flink's do: a checkpoint
  // ended by the job's failure or end counts as failed there (the failure message says why).
  using Counts = CheckpointStatsSnapshot::Counts;
  auto count = [&gauge](const char* name, int64_t Counts::*field) {
    gauge(name, [field](const Job& j) {
      return static_cast<double>(j.checkpoints->stats().snapshot().counts.*field);
    });
  };
  count("numberOfCompletedCheckpoints", &Counts::completed);
  count("numberOfFailedCheckpoints", &Counts::failed);
  count("numberOfInProgressCheckpoints", &Counts::in_progress);
  count("totalNumberOfCheckpoints", &Counts::total);
  // The newest completed checkpoint's figures (0 before the first).
  auto last = [&gauge](const char* name, int64_t (*read)(const CheckpointStats&)) {
    gauge(name, [read](const Job& j) {
      const CheckpointStats* c = j.checkpoints->stats().latest_completed();
      return c ? static_cast<double>(read(*c)) : 0.0;
    });
  };
  last("lastCheckpointDuration", [](const CheckpointStats& c) { return c.end_to_end_duration(); });
  last("lastCheckpointSize", [](const CheckpointStats& c) { return c.checkpointed_size(); });
  last("lastCheckpointFullSize", [](const CheckpointStats& c) { return c.state_size(); });
  last("lastCompletedCheckpointId", [](const CheckpointStats& c) { return c.id; });
  gauge("lastCheckpointRestoreTimestamp", [](const Job& j) {
    const auto& restored = j.checkpoints->stats().snapshot().latest_restored;
    return restored ? static_cast<double>(restored->restore_timestamp) : -1.0;
  });
}

}  // namespace sluice
