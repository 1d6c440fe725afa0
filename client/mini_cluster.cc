#include "client/mini_cluster.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "client/job_client.h"
#include "common/status_macros.h"

namespace sluice {

absl::StatusOr<std::unique_ptr<MiniCluster>> MiniCluster::Start(const Configuration& base,
                                                                int task_managers, int slots) {
  std::unique_ptr<MiniCluster> mc(new MiniCluster());
  Configuration jm_conf = base;
  RETURN_IF_ERROR(jm_conf.Set("jobmanager.rpc.port", "0"));
  RETURN_IF_ERROR(jm_conf.Set("jobmanager.bind-host", "127.0.0.1"));
  RETURN_IF_ERROR(jm_conf.Set("jobmanager.rpc.address", "127.0.0.1"));
  RETURN_IF_ERROR(jm_conf.Set("rest.port", "-1"));
  ASSIGN_OR_RETURN(mc->jm_, JobManager::Start(jm_conf));
  Configuration tm_conf = jm_conf;
  RETURN_IF_ERROR(tm_conf.Set("jobmanager.rpc.port", std::to_string(mc->jm_->port())));
  RETURN_IF_ERROR(tm_conf.Set("taskmanager.rpc.port", "0"));
  RETURN_IF_ERROR(tm_conf.Set("taskmanager.bind-host", "127.0.0.1"));
  RETURN_IF_ERROR(tm_conf.Set("taskmanager.host", "127.0.0.1"));
  RETURN_IF_ERROR(tm_conf.Set("taskmanager.numberOfTaskSlots", std::to_string(slots)));
  for (int i = 0; i < task_managers; ++i) {
    ASSIGN_OR_RETURN(auto tm, TaskManager::Start(tm_conf));
    absl::MutexLock lock(&mc->shutdown_mu_);
    mc->tms_.push_back(std::move(tm));
  }
  JobClient client(mc->jm_->address(), std::chrono::seconds(5));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (true) {
    auto ov = client.Overview();
    if (ov.ok() && ov->task_managers_size() == task_managers) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(
          "the mini cluster's TaskManagers did not register within 30 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return mc;
}

MiniCluster::~MiniCluster() { Shutdown(); }

void MiniCluster::Shutdown() {
  absl::MutexLock lock(&shutdown_mu_);  // a signal handler thread may call it too
  for (auto& tm : tms_) tm->Shutdown();
  tms_.clear();
  if (jm_) jm_->Shutdown();
}

}  // namespace sluice
