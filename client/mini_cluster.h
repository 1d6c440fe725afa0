// MiniCluster: a JobManager and TaskManagers in this process, on loopback ports chosen at run
// time: the same code as the daemons, for `sluice local`, tests and benchmarks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/config.h"
#include "jobmanager/job_manager.h"
#include "taskmanager/task_manager.h"

namespace sluice {

class MiniCluster {
 public:
  // Starts a JobManager and `task_managers` TaskManagers with `slots` slots each, and waits until
  // all have registered. `base` supplies every other setting.
  static absl::StatusOr<std::unique_ptr<MiniCluster>> Start(const Configuration& base,
                                                            int task_managers, int slots);
  ~MiniCluster();

  std::string jobmanager_address() const { return jm_->address(); }
  // Safe from any thread (a signal handler's thread may call it too).
  void Shutdown() ABSL_LOCKS_EXCLUDED(shutdown_mu_);

 private:
  MiniCluster() = default;
  absl::Mutex shutdown_mu_;
  std::unique_ptr<JobManager> jm_;  // set by Start(), then only read
  std::vector<std::unique_ptr<TaskManager>> tms_ ABSL_GUARDED_BY(shutdown_mu_);
};

}  // namespace sluice
