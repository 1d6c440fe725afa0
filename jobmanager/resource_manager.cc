#include "jobmanager/resource_manager.h"

#include "absl/strings/str_cat.h"

namespace sluice {

absl::StatusOr<bool> ResourceManager::Register(const std::string& id, const std::string& address,
                                               int slots, int used, Clock::time_point now) {
  if (id.empty() || address.empty() || slots < 1) {
    return absl::InvalidArgumentError(
        "registration needs a TaskManager id, an address and at least one slot");
  }
  auto [it, added] = task_managers_.try_emplace(id);
  TaskManager& tm = it->second;
  tm.id = id;
  tm.address = address;
  tm.slots = slots;
  tm.used = used;
  tm.last_heartbeat = now;
  tm.gateway = gateways_(address);
  return added;
}

bool ResourceManager::Heartbeat(const std::string& id, Clock::time_point now) {
  auto it = task_managers_.find(id);
  if (it == task_managers_.end()) return false;
  it->second.last_heartbeat = now;
  return true;
}

const ResourceManager::TaskManager* ResourceManager::Find(const std::string& id) const {
  auto it = task_managers_.find(id);
  return it == task_managers_.end() ? nullptr : &it->second;
}

std::shared_ptr<TaskManagerGateway> ResourceManager::Gateway(const std::string& id) const {
  const TaskManager* tm = Find(id);
  return tm ? tm->gateway : nullptr;
}

std::string ResourceManager::Address(const std::string& id) const {
  const TaskManager* tm = Find(id);
  return tm ? tm->address : "";
}

std::vector<std::string> ResourceManager::Expired(Clock::time_point now,
                                                  Clock::duration timeout) const {
  std::vector<std::string> out;
  for (const auto& [id, tm] : task_managers_) {
    if (now - tm.last_heartbeat > timeout) out.push_back(id);
  }
  return out;
}

int ResourceManager::TotalSlots() const {
  int total = 0;
  for (const auto& [id, tm] : task_managers_) total += tm.slots;
  return total;
}

int ResourceManager::FreeSlots() const {
  int free = 0;
  for (const auto& [id, tm] : task_managers_) free += tm.slots - tm.used;
  return free;
}

absl::StatusOr<std::vector<std::string>> ResourceManager::AllocateSlots(int n) {
  if (n > FreeSlots()) {
    return absl::ResourceExhaustedError(absl::StrCat(n, " task slots needed but only ", FreeSlots(),
                                                     " of ", TotalSlots(), " are free"));
  }
  std::vector<std::string> slots;
  for (int i = 0; i < n; ++i) {
    TaskManager* best = nullptr;
    for (auto& [id, tm] : task_managers_) {
      if (tm.slots - tm.used <= 0) continue;
      if (!best || tm.slots - tm.used > best->slots - best->used) best = &tm;
    }
    best->used++;
    slots.push_back(best->id);
  }
  return slots;
}

void ResourceManager::ReleaseSlots(const std::vector<std::string>& slots) {
  for (const auto& id : slots) {
    auto it = task_managers_.find(id);
    if (it != task_managers_.end() && it->second.used > 0) it->second.used--;
  }
}

proto::ClusterOverview ResourceManager::Overview(Clock::time_point now) const {
  proto::ClusterOverview ov;
  for (const auto& [id, tm] : task_managers_) {
    auto* info = ov.add_task_managers();
    info->set_tm_id(id);
    info->set_address(tm.address);
    info->set_num_slots(tm.slots);
    info->set_free_slots(tm.slots - tm.used);
    info->set_last_heartbeat_ms(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - tm.last_heartbeat).count());
  }
  ov.set_total_slots(TotalSlots());
  ov.set_free_slots(FreeSlots());
  return ov;
}

}  // namespace sluice
