// JobManagerMetrics: the JobManager's metrics in one place. Its registry holds the JobManager's
// group (Flink's jobmanager scope: TaskManagers, slots, running jobs, the process's Status.*)
// and one group per running job (jobmanager_job: restarts, uptime, checkpoints), which the
// Dispatcher registers; its reporters report them; its MetricStore and MetricFetcher hold the
// TaskManagers' metrics for the REST API.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/metrics/metric_registry.h"
#include "common/metrics/reporters.h"
#include "jobmanager/metric_store.h"

namespace sluice {

class JobManagerMetrics {
 public:
  // The registry and the JobManager's group (variables: host), no reporter yet.
  explicit JobManagerMetrics(const Configuration& conf);
  ~JobManagerMetrics();

  // Starts the configured reporters on `bind_host` (jobmanager.bind-host); an error names the
  // key or the ports.
  absl::Status StartReporters(const Configuration& conf, const std::string& bind_host);
  void StopReporters() { reporters_.clear(); }
  // Fetches TaskManagers' metrics through `task_managers`, keeping those of `jobs`.
  void StartFetcher(MetricFetcher::TaskManagers task_managers, MetricFetcher::Jobs jobs);

  metrics::MetricRegistry& registry() { return *registry_; }
  metrics::MetricGroup& group() { return *group_; }
  MetricStore& store() { return store_; }
  // Brings the store up to date (at most every metrics.fetcher.update-interval).
  void UpdateStore() {
    if (fetcher_) fetcher_->Update();
  }

  // The values, by name, of the JobManager's group, or of job `job_id`'s group (empty when the
  // job has none: it ended, or it is unknown).
  std::map<std::string, std::string> JobManagerValues() const;
  std::map<std::string, std::string> JobValues(const std::string& job_id) const;

 private:
  std::map<std::string, std::string> Values(const std::string& kind,
                                            const std::string& job_id) const;

  const int64_t fetch_interval_ms_;
  std::unique_ptr<metrics::MetricRegistry> registry_;
  std::unique_ptr<metrics::MetricGroup> group_;
  std::vector<std::unique_ptr<metrics::MetricReporter>> reporters_;
  MetricStore store_;
  std::unique_ptr<MetricFetcher> fetcher_;
};

}  // namespace sluice
