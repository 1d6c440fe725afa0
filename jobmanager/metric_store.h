// MetricStore and MetricFetcher: the TaskManagers' metrics as the JobManager keeps them for the
// REST API (Flink's MetricStore and MetricFetcher).
//
// The fetcher asks every registered TaskManager for its metrics (TaskExecutorService.
// QueryMetrics) when a REST request needs them and the last answer is older than
// metrics.fetcher.update-interval. A task's final figures come with its last state update, so
// a finished task's counts are exact. The store keeps, per subtask, the newest attempt's values,
// the task's by name and its operators' as "<operator name>.<metric>" (Flink's naming), until
// the job is no longer retained.
//
// Threads: both are safe from any thread; no call is made under the store's lock.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "jobmanager/task_manager_gateway.h"
#include "proto/model.pb.h"

namespace sluice {

class MetricStore {
 public:
  using Values = std::map<std::string, std::string>;

  // Takes a TaskManager's dump (`final`: a task's last figures, which a later live dump of the
  // same attempt does not replace).
  void Add(const proto::MetricDump& dump, bool final = false) ABSL_LOCKS_EXCLUDED(mu_);
  // The TaskManager's own metrics (empty when none were fetched).
  Values TaskManager(const std::string& tm_id) const ABSL_LOCKS_EXCLUDED(mu_);
  // The metrics of every subtask of a vertex that reported any, by subtask index; `final` (when
  // given) gets the subtasks whose values are their tasks' final ones.
  std::map<int, Values> Vertex(const std::string& job_id, int vertex_id,
                               std::set<int>* final = nullptr) const ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets a job (the JobManager no longer retains it). Lock order: after the Dispatcher's.
  void ForgetJob(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  // The job was (re)deployed as `attempt`: the figures of its earlier attempts (at whatever
  // parallelism) are dropped, and dumps of them ignored from now on, so they never pass for the
  // new attempt's. Lock order: after the Dispatcher's.
  void StartAttempt(const std::string& job_id, int attempt) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets the jobs not in `jobs` and the TaskManagers not in `task_managers`.
  void Retain(const std::set<std::string>& jobs, const std::set<std::string>& task_managers)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Subtask {
    int attempt = -1;
    bool final = false;
    Values values;
  };
  mutable absl::Mutex mu_;
  std::map<std::string, Values> task_managers_ ABSL_GUARDED_BY(mu_);
  // job id -> vertex id -> subtask index
  std::map<std::string, std::map<int, std::map<int, Subtask>>> jobs_ ABSL_GUARDED_BY(mu_);
  // job id -> its current attempt (StartAttempt)
  std::map<std::string, int> attempts_ ABSL_GUARDED_BY(mu_);
};

class MetricFetcher {
 public:
  // The registered TaskManagers, by id, with their gateways.
  using TaskManagers =
      std::function<std::vector<std::pair<std::string, std::shared_ptr<TaskManagerGateway>>>()>;
  // The ids of the jobs the JobManager still retains.
  using Jobs = std::function<std::set<std::string>()>;

  MetricFetcher(MetricStore& store, TaskManagers task_managers, Jobs jobs,
                std::chrono::milliseconds update_interval);
  // Fetches from every TaskManager unless the last fetch is younger than the interval. A caller
  // that comes while another fetches waits for that fetch.
  void Update() ABSL_LOCKS_EXCLUDED(mu_);
  MetricStore& store() { return store_; }

 private:
  MetricStore& store_;
  TaskManagers task_managers_;
  Jobs jobs_;
  const std::chrono::milliseconds interval_;
  absl::Mutex mu_;  // one fetch at a time
  std::optional<std::chrono::steady_clock::time_point> last_ ABSL_GUARDED_BY(mu_);
  // TaskManagers whose metrics could not be fetched, warned of once until they answer again.
  std::set<std::string> failing_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sluice
