// MetricRegistry and MetricGroup: where a daemon's metrics are registered, under Flink's scopes.
//
// A group has a logical scope, the kinds of its ancestors and itself joined (e.g.
// {"taskmanager", "job", "task", "operator"}: what Prometheus names are made of), variables
// (job_id, task_name, subtask_index, ...: Prometheus labels), and an identifier (Flink's default
// scope format, e.g. "localhost.taskmanager.<tm_id>.<job_name>.<operator>.<subtask>": what the
// log reporter prints). Groups are owned by what they describe (a task owns its groups) and
// unregister themselves when destroyed, so a job's metrics vanish with it.
//
// Threads: everything here is safe from any thread. Reporters take a Snapshot() (under the
// registry's lock) and read the metrics outside it, so a metric's function never runs under the
// registry's lock and may take locks of its own.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/metrics.h"
#include "common/periodic_thread.h"

namespace sluice::metrics {

// Variables in the order they were added (label order in reports), without Flink's <>.
using Variables = std::vector<std::pair<std::string, std::string>>;

// What identifies a group; immutable and shared by snapshots.
struct GroupInfo {
  std::vector<std::string> scope;       // logical scope, root first
  Variables variables;                  // the ancestors' and the group's own
  std::vector<std::string> identifier;  // Flink's scope format, root first
  // The value of variable `name`, or "" when the group has none.
  const std::string& Variable(const std::string& name) const;
};

// One metric of a snapshot.
struct MetricEntry {
  std::shared_ptr<const GroupInfo> group;
  std::string name;
  std::shared_ptr<Metric> metric;
};

class MetricRegistry;

class MetricGroup {
 public:
  // Unregisters the group's metrics.
  ~MetricGroup();
  MetricGroup(const MetricGroup&) = delete;
  MetricGroup& operator=(const MetricGroup&) = delete;

  // A child group: its scope adds `kind`, its variables add `variables`, and its identifier is
  // `identifier` when given, else this group's plus the values of `variables`.
  std::unique_ptr<MetricGroup> AddGroup(std::string kind, Variables variables,
                                        std::vector<std::string> identifier = {});

  // Registering a name twice in a group keeps the first metric (as Flink does).
  std::shared_ptr<SimpleCounter> AddCounter(const std::string& name);
  void AddCounter(const std::string& name, std::function<int64_t()> count);
  void AddGauge(const std::string& name, std::function<double()> value);
  // A meter over `count` (see Meter), with the registry's timespan.
  std::shared_ptr<Meter> AddMeter(const std::string& name, std::function<int64_t()> count);
  std::shared_ptr<Histogram> AddHistogram(const std::string& name);
  void Add(const std::string& name, std::shared_ptr<Metric> metric);

  const GroupInfo& info() const { return *info_; }
  MetricRegistry& registry() const { return registry_; }

 private:
  friend class MetricRegistry;
  MetricGroup(MetricRegistry& registry, std::shared_ptr<const GroupInfo> info, uint64_t id)
      : registry_(registry), info_(std::move(info)), id_(id) {}

  MetricRegistry& registry_;
  std::shared_ptr<const GroupInfo> info_;
  const uint64_t id_;
};

struct RegistryOptions {
  // Off (metrics.enabled: false): groups register nothing, tasks count nothing.
  bool enabled = true;
  // The timespan of meters, in seconds (updated once a second).
  int meter_timespan_s = 5;
};

class MetricRegistry {
 public:
  explicit MetricRegistry(RegistryOptions options = {});
  // Every group must be gone first.
  ~MetricRegistry();

  bool enabled() const { return options_.enabled; }
  // A root group: the daemon's own (kind "jobmanager" or "taskmanager").
  std::unique_ptr<MetricGroup> CreateRootGroup(std::string kind, Variables variables,
                                               std::vector<std::string> identifier);
  // Every registered metric, in registration order of the groups.
  std::vector<MetricEntry> Snapshot() const ABSL_LOCKS_EXCLUDED(mu_);
  // Samples every meter (the view updater; tests call it directly).
  void UpdateViews() ABSL_LOCKS_EXCLUDED(mu_) { UpdateViews(std::chrono::steady_clock::now()); }
  // The same, as at `at` (tests step a clock of their own).
  void UpdateViews(std::chrono::steady_clock::time_point at) ABSL_LOCKS_EXCLUDED(mu_);
  // Calls UpdateViews() every second on a thread of the registry's, until destroyed.
  void StartViewUpdater();

 private:
  friend class MetricGroup;
  std::unique_ptr<MetricGroup> NewGroup(std::shared_ptr<const GroupInfo> info)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Register(uint64_t group, const std::string& name, std::shared_ptr<Metric> metric)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(uint64_t group) ABSL_LOCKS_EXCLUDED(mu_);

  const RegistryOptions options_;
  struct Registered {
    std::shared_ptr<const GroupInfo> info;
    std::vector<std::pair<std::string, std::shared_ptr<Metric>>> metrics;
  };
  mutable absl::Mutex mu_;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Registered> groups_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<PeriodicThread> view_updater_;
};

}  // namespace sluice::metrics
