// TestingTaskManagerGateway: a TaskManagerGateway that records what the JobManager asks and
// answers with the status a test sets, so the Dispatcher, the scheduler, failover and the
// checkpoint coordinator run in process without TaskManagers.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "jobmanager/task_manager_gateway.h"

namespace sluice {

class TestingTaskManagerGateway final : public TaskManagerGateway {
 public:
  explicit TestingTaskManagerGateway(std::string address) : address_(std::move(address)) {}

  absl::Status DeployTask(const proto::TaskDeploymentDescriptor& tdd) override {
    absl::MutexLock lock(&mu_);
    deployed_.push_back(tdd);
    return deploy_status_;
  }
  absl::Status CancelJobTasks(const std::string& job_id) override {
    absl::MutexLock lock(&mu_);
    cancelled_.push_back(job_id);
    return absl::OkStatus();
  }
  absl::Status ReleaseJob(const std::string& job_id) override {
    absl::MutexLock lock(&mu_);
    released_.push_back(job_id);
    return absl::OkStatus();
  }
  absl::Status Heartbeat(const std::string&) override {
    absl::MutexLock lock(&mu_);
    return alive_ ? absl::OkStatus() : absl::UnavailableError("connection refused");
  }
  absl::Status TriggerCheckpoint(const proto::TriggerCheckpointRequest& req) override {
    absl::MutexLock lock(&mu_);
    triggered_.push_back(req);
    return trigger_status_;
  }
  absl::Status NotifyCheckpoint(const proto::NotifyCheckpointRequest& req) override {
    absl::MutexLock lock(&mu_);
    notified_.push_back(req);
    return absl::OkStatus();
  }

  void set_deploy_status(absl::Status s) {
    absl::MutexLock lock(&mu_);
    deploy_status_ = std::move(s);
  }
  void set_trigger_status(absl::Status s) {
    absl::MutexLock lock(&mu_);
    trigger_status_ = std::move(s);
  }
  void set_alive(bool alive) {
    absl::MutexLock lock(&mu_);
    alive_ = alive;
  }
  std::vector<proto::TaskDeploymentDescriptor> deployed() const {
    absl::MutexLock lock(&mu_);
    return deployed_;
  }
  std::vector<std::string> cancelled() const {
    absl::MutexLock lock(&mu_);
    return cancelled_;
  }
  std::vector<std::string> released() const {
    absl::MutexLock lock(&mu_);
    return released_;
  }
  std::vector<proto::TriggerCheckpointRequest> triggered() const {
    absl::MutexLock lock(&mu_);
    return triggered_;
  }
  std::vector<proto::NotifyCheckpointRequest> notified() const {
    absl::MutexLock lock(&mu_);
    return notified_;
  }
  const std::string& address() const { return address_; }
  // Forgets the calls recorded so far (a long fuzz run makes many).
  void ClearCalls() {
    absl::MutexLock lock(&mu_);
    deployed_.clear();
    cancelled_.clear();
    released_.clear();
    triggered_.clear();
    notified_.clear();
  }

 private:
  const std::string address_;
  mutable absl::Mutex mu_;
  absl::Status deploy_status_ ABSL_GUARDED_BY(mu_);
  absl::Status trigger_status_ ABSL_GUARDED_BY(mu_);
  bool alive_ ABSL_GUARDED_BY(mu_) = true;
  std::vector<proto::TaskDeploymentDescriptor> deployed_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> cancelled_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> released_ ABSL_GUARDED_BY(mu_);
  std::vector<proto::TriggerCheckpointRequest> triggered_ ABSL_GUARDED_BY(mu_);
  std::vector<proto::NotifyCheckpointRequest> notified_ ABSL_GUARDED_BY(mu_);
};

// Hands out one TestingTaskManagerGateway per address and keeps them for the test to inspect.
class TestingTaskManagerGateways {
 public:
  TaskManagerGatewayFactory factory() {
    return [this](const std::string& address) {
      absl::MutexLock lock(&mu_);
      auto& g = gateways_[address];
      if (!g) g = std::make_shared<TestingTaskManagerGateway>(address);
      return g;
    };
  }
  TestingTaskManagerGateway& at(const std::string& address) {
    absl::MutexLock lock(&mu_);
    auto& g = gateways_[address];
    if (!g) g = std::make_shared<TestingTaskManagerGateway>(address);
    return *g;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<TestingTaskManagerGateway>> gateways_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sluice
