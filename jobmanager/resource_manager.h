// ResourceManager: the registry of TaskManagers and their slots (the slot pool). It records
// registrations and heartbeats, finds the TaskManagers whose heartbeats stopped, hands out slots
// to jobs (spreading a job over the TaskManagers with the most free slots) and takes them back.
// It keeps one TaskManagerGateway per registration.
//
// Threads: not thread-safe; the Dispatcher calls it under its lock. It makes no calls to
// TaskManagers itself.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "jobmanager/task_manager_gateway.h"
#include "proto/jobmanager.pb.h"

namespace sluice {

class ResourceManager {
 public:
  using Clock = std::chrono::steady_clock;

  struct TaskManager {
    std::string id;
    std::string address;
    int slots = 0;
    int used = 0;
    Clock::time_point last_heartbeat;
    std::shared_ptr<TaskManagerGateway> gateway;
  };

  explicit ResourceManager(TaskManagerGatewayFactory gateways) : gateways_(std::move(gateways)) {}

  // Registers a TaskManager, or registers it again (after a restart of either side) with `used`
  // of its slots held by live jobs. Returns true when the id was not known. InvalidArgument
  // without an id, an address or a slot.
  absl::StatusOr<bool> Register(const std::string& id, const std::string& address, int slots,
                                int used, Clock::time_point now);
  // Records a heartbeat; false when the TaskManager is not registered.
  bool Heartbeat(const std::string& id, Clock::time_point now);
  // Forgets a TaskManager (lost or gone); its slots go with it.
  void Remove(const std::string& id) { task_managers_.erase(id); }

  bool Contains(const std::string& id) const { return task_managers_.count(id) > 0; }
  // Null when not registered.
  const TaskManager* Find(const std::string& id) const;
  std::shared_ptr<TaskManagerGateway> Gateway(const std::string& id) const;
  // The address of a registered TaskManager, or "" when not registered.
  std::string Address(const std::string& id) const;
  // The TaskManagers whose last heartbeat is older than `timeout` at `now`.
  std::vector<std::string> Expired(Clock::time_point now, Clock::duration timeout) const;

  size_t size() const { return task_managers_.size(); }
  int TotalSlots() const;
  int FreeSlots() const;

  // Takes `n` free slots, one at a time from the TaskManager with the most free slots. Returns
  // the TaskManager id of each slot. ResourceExhausted (nothing taken) when fewer are free.
  absl::StatusOr<std::vector<std::string>> AllocateSlots(int n);
  // Gives back slots taken by AllocateSlots; slots of TaskManagers no longer registered are
  // ignored.
  void ReleaseSlots(const std::vector<std::string>& slots);

  proto::ClusterOverview Overview(Clock::time_point now) const;

 private:
  TaskManagerGatewayFactory gateways_;
  std::map<std::string, TaskManager> task_managers_;
};

}  // namespace sluice
