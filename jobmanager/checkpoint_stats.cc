#include "jobmanager/checkpoint_stats.h"

#include <algorithm>

namespace sluice {

const char* CheckpointStatusName(CheckpointStatus status) {
  switch (status) {
    case CheckpointStatus::kInProgress:
      return "IN_PROGRESS";
    case CheckpointStatus::kCompleted:
      return "COMPLETED";
    case CheckpointStatus::kFailed:
      return "FAILED";
  }
  return "UNKNOWN";
}

// ---- Per vertex ----

int TaskCheckpointStats::num_acknowledged() const {
  int n = 0;
  for (const auto& s : subtasks) n += s.acknowledged ? 1 : 0;
  return n;
}

int64_t TaskCheckpointStats::latest_ack_timestamp() const {
  int64_t latest = -1;
  for (const auto& s : subtasks) {
    if (s.acknowledged) latest = std::max(latest, s.ack_timestamp);
  }
  return latest;
}

int64_t TaskCheckpointStats::checkpointed_size() const {
  int64_t n = 0;
  for (const auto& s : subtasks) n += s.acknowledged ? s.checkpointed_size : 0;
  return n;
}

int64_t TaskCheckpointStats::state_size() const {
  int64_t n = 0;
  for (const auto& s : subtasks) n += s.acknowledged ? s.state_size : 0;
  return n;
}

void StatsSummary::Add(int64_t value) {
  min = count == 0 ? value : std::min(min, value);
  max = count == 0 ? value : std::max(max, value);
  sum += value;
  count++;
}

// ---- Per checkpoint ----

int CheckpointStats::num_subtasks() const {
  int n = 0;
  for (const auto& [v, t] : tasks) n += static_cast<int>(t.subtasks.size());
  return n;
}

int CheckpointStats::num_acknowledged() const {
  int n = 0;
  for (const auto& [v, t] : tasks) n += t.num_acknowledged();
  return n;
}

int64_t CheckpointStats::latest_ack_timestamp() const {
  int64_t latest = -1;
  for (const auto& [v, t] : tasks) latest = std::max(latest, t.latest_ack_timestamp());
  return latest;
}

int64_t CheckpointStats::checkpointed_size() const {
  int64_t n = 0;
  for (const auto& [v, t] : tasks) n += t.checkpointed_size();
  return n;
}

int64_t CheckpointStats::state_size() const {
  int64_t n = 0;
  for (const auto& [v, t] : tasks) n += t.state_size();
  return n;
}

int64_t CheckpointStats::end_to_end_duration() const {
  if (status == CheckpointStatus::kCompleted) return completed_duration;
  int64_t latest = latest_ack_timestamp();
  return latest < 0 ? -1 : std::max<int64_t>(0, latest - trigger_timestamp);
}

int64_t CheckpointStats::alignment_duration() const {
  int64_t longest = 0;
  for (const auto& [v, t] : tasks) {
    for (const auto& s : t.subtasks) {
      if (s.acknowledged) longest = std::max(longest, s.alignment_duration);
    }
  }
  return longest;
}

const CheckpointStats* CheckpointStatsSnapshot::Find(int64_t id) const {
  for (const auto& c : history) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

// ---- The tracker ----

CheckpointStatsTracker::CheckpointStatsTracker(int history_size)
    : history_size_(std::max(1, history_size)) {}

CheckpointStats* CheckpointStatsTracker::FindInProgress(int64_t id) {
  for (auto& c : stats_.history) {
    if (c.id == id) return c.status == CheckpointStatus::kInProgress ? &c : nullptr;
  }
  return nullptr;
}

SubtaskCheckpointStats* CheckpointStatsTracker::FindSubtask(int64_t id, int vertex, int subtask) {
  CheckpointStats* c = FindInProgress(id);
  if (!c) return nullptr;
  auto t = c->tasks.find(vertex);
  if (t == c->tasks.end() || subtask < 0 ||
      subtask >= static_cast<int>(t->second.subtasks.size())) {
    return nullptr;
  }
  return &t->second.subtasks[subtask];
}

void CheckpointStatsTracker::TrimHistory() {
  auto& h = stats_.history;
  for (auto it = h.end(); static_cast<int>(h.size()) > history_size_ && it != h.begin();) {
    --it;
    if (it->status != CheckpointStatus::kInProgress) it = h.erase(it);
  }
}

void CheckpointStatsTracker::ReportPending(int64_t id, int64_t trigger_timestamp,
                                           const std::map<int, int>& subtasks_per_vertex,
                                           bool is_savepoint) {
  for (const auto& c : stats_.history) {
    if (c.id == id) return;
  }
  CheckpointStats c;
  c.id = id;
  c.trigger_timestamp = trigger_timestamp;
  c.is_savepoint = is_savepoint;
  for (const auto& [vertex, n] : subtasks_per_vertex) {
    c.tasks[vertex].subtasks.resize(static_cast<size_t>(std::max(0, n)));
  }
  stats_.history.push_front(std::move(c));
  stats_.counts.total++;
  stats_.counts.in_progress++;
  TrimHistory();
}

void CheckpointStatsTracker::ReportAcknowledged(int64_t id, int vertex, int subtask,
                                                const SubtaskCheckpointStats& stats) {
  SubtaskCheckpointStats* s = FindSubtask(id, vertex, subtask);
  if (!s || s->acknowledged) return;
  *s = stats;
  s->acknowledged = true;
  s->finished = false;
}

void CheckpointStatsTracker::ReportFinishedSubtask(int64_t id, int vertex, int subtask,
                                                   int64_t timestamp, int64_t state_size) {
  SubtaskCheckpointStats* s = FindSubtask(id, vertex, subtask);
  if (!s || s->acknowledged) return;
  *s = SubtaskCheckpointStats{};
  s->acknowledged = true;
  s->finished = true;
  s->ack_timestamp = timestamp;
  s->state_size = state_size;
}

void CheckpointStatsTracker::ReportCompleted(int64_t id, int64_t completion_timestamp,
                                             int64_t duration, const std::string& external_path) {
  CheckpointStats* c = FindInProgress(id);
  if (!c) return;
  c->status = CheckpointStatus::kCompleted;
  c->completion_timestamp = completion_timestamp;
  c->completed_duration = duration;
  c->external_path = external_path;
  stats_.counts.in_progress--;
  stats_.counts.completed++;
  auto& sum = stats_.summary;
  sum.checkpointed_size.Add(c->checkpointed_size());
  sum.state_size.Add(c->state_size());
  sum.end_to_end_duration.Add(c->end_to_end_duration());
  sum.alignment_duration.Add(c->alignment_duration());
  (c->is_savepoint ? stats_.latest_savepoint : stats_.latest_completed) = *c;
  TrimHistory();
}

void CheckpointStatsTracker::ReportFailed(int64_t id, int64_t failure_timestamp,
                                          const std::string& message) {
  CheckpointStats* c = FindInProgress(id);
  if (!c) return;
  c->status = CheckpointStatus::kFailed;
  c->failure_timestamp = failure_timestamp;
  c->failure_message = message;
  stats_.counts.in_progress--;
  stats_.counts.failed++;
  stats_.latest_failed = *c;
  TrimHistory();
}

void CheckpointStatsTracker::ReportDiscarded(int64_t id) {
  for (auto& c : stats_.history) {
    if (c.id == id && c.status == CheckpointStatus::kCompleted) c.discarded = true;
  }
  if (stats_.latest_completed && stats_.latest_completed->id == id)
    stats_.latest_completed->discarded = true;
}

void CheckpointStatsTracker::ReportRestored(int64_t id, int64_t restore_timestamp,
                                            const std::string& external_path, bool is_savepoint) {
  stats_.counts.restored++;
  stats_.latest_restored =
      RestoredCheckpointStats{id, restore_timestamp, is_savepoint, external_path};
}

}  // namespace sluice
