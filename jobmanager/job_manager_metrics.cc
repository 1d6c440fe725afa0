#include "jobmanager/job_manager_metrics.h"

#include "common/metrics/metric_dump.h"
#include "common/metrics/process_metrics.h"
#include "spdlog/spdlog.h"

namespace sluice {

JobManagerMetrics::JobManagerMetrics(const Configuration& conf)
    : fetch_interval_ms_(conf.GetDurationMs("metrics.fetcher.update-interval")) {
  registry_ = std::make_unique<metrics::MetricRegistry>(
      metrics::RegistryOptions{.enabled = conf.GetBool("metrics.enabled")});
  const std::string host = conf.GetString("jobmanager.rpc.address");
  group_ = registry_->CreateRootGroup("jobmanager", {{"host", host}}, {host, "jobmanager"});
  metrics::RegisterProcessMetrics(*group_);
  registry_->StartViewUpdater();
}

JobManagerMetrics::~JobManagerMetrics() {
  reporters_.clear();
  fetcher_.reset();
  group_.reset();
}

absl::Status JobManagerMetrics::StartReporters(const Configuration& conf,
                                               const std::string& bind_host) {
  auto reporters = metrics::StartReporters(conf, *registry_, bind_host, "jobmanager.bind-host");
  if (!reporters.ok()) return reporters.status();
  reporters_ = std::move(*reporters);
  return absl::OkStatus();
}

void JobManagerMetrics::StartFetcher(MetricFetcher::TaskManagers task_managers,
                                     MetricFetcher::Jobs jobs) {
  fetcher_ = std::make_unique<MetricFetcher>(store_, std::move(task_managers), std::move(jobs),
                                             std::chrono::milliseconds(fetch_interval_ms_));
}

std::map<std::string, std::string> JobManagerMetrics::Values(const std::string& kind,
                                                             const std::string& job_id) const {
  std::vector<metrics::MetricEntry> mine;
  for (metrics::MetricEntry& e : registry_->Snapshot()) {
    if (e.group->scope.back() == kind && e.group->Variable("job_id") == job_id) {
      mine.push_back(std::move(e));
    }
  }
  proto::MetricDump dump;
  metrics::AppendDump(mine, dump);
  std::map<std::string, std::string> out;
  for (const auto& g : dump.groups()) out.insert(g.values().begin(), g.values().end());
  return out;
}

std::map<std::string, std::string> JobManagerMetrics::JobManagerValues() const {
  return Values("jobmanager", "");
}

std::map<std::string, std::string> JobManagerMetrics::JobValues(const std::string& job_id) const {
  return Values("job", job_id);
}

}  // namespace sluice
