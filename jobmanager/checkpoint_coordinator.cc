#include "jobmanager/checkpoint_coordinator.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/checkpoint_storage.h"
#include "common/ids.h"
#include "jobmanager/state_assignment.h"
#include "spdlog/spdlog.h"

namespace sluice {

using Millis = std::chrono::milliseconds;

CheckpointSettings CheckpointSettings::FromConfig(const Configuration& conf,
                                                  const std::string& job_id) {
  CheckpointSettings s;
  s.interval = Millis(conf.GetDurationMs("execution.checkpointing.interval"));
  s.timeout = Millis(conf.GetDurationMs("execution.checkpointing.timeout"));
  s.min_pause = Millis(conf.GetDurationMs("execution.checkpointing.min-pause"));
  s.exactly_once = conf.GetChoice("execution.checkpointing.mode") != "AT_LEAST_ONCE";
  s.tolerable_failures = conf.GetInt("execution.checkpointing.tolerable-failed-checkpoints");
  s.num_retained = static_cast<size_t>(
      std::max<int64_t>(1, conf.GetInt("execution.checkpointing.num-retained")));
  s.root = conf.GetString("execution.checkpointing.dir");
  if (s.root.empty())
    s.root = (std::filesystem::temp_directory_path() / "sluice-checkpoints").string();
  s.job_dir = absl::StrCat(s.root, "/", job_id);
  s.stats_history =
      static_cast<int>(std::clamp<int64_t>(conf.GetInt("web.checkpoints.history"), 1, 10000));
  return s;
}

CheckpointCoordinator::CheckpointCoordinator(std::string job_id, CheckpointSettings settings,
                                             std::unique_ptr<CompletedCheckpointStore> store,
                                             std::unique_ptr<CheckpointIdCounter> ids,
                                             Clock::time_point now)
    : job_id_(std::move(job_id)),
      settings_(std::move(settings)),
      store_(std::move(store)),
      ids_(std::move(ids)),
      last_trigger_(now),
      last_end_(now),
      stats_(settings_.stats_history) {}

absl::Status CheckpointCoordinator::SetRestoreFrom(proto::CheckpointMetadata checkpoint,
                                                   std::string dir) {
  // Numbering goes on after the restored checkpoint (tasks take only newer ones), or from where
  // it was when it is further (a recovered job's counter).
  if (ids_->Get() <= checkpoint.checkpoint_id()) {
    absl::Status st = ids_->SetCount(checkpoint.checkpoint_id() + 1);
    if (!st.ok()) return st;
  }
  restore_from_ = std::move(checkpoint);
  restore_dir_ = std::move(dir);
  return absl::OkStatus();
}

const proto::CheckpointMetadata* CheckpointCoordinator::RestoreSource(std::string* dir) const {
  if (const proto::CheckpointMetadata* latest = store_->Latest()) {
    *dir = settings_.job_dir;
    return latest;
  }
  if (restore_from_) {
    *dir = restore_dir_;
    return &*restore_from_;
  }
  return nullptr;
}

void CheckpointCoordinator::OnRestored(int64_t timestamp_ms) {
  std::string dir;
  if (const proto::CheckpointMetadata* from = RestoreSource(&dir)) {
    stats_.ReportRestored(
        from->checkpoint_id(), timestamp_ms,
        from->savepoint() ? dir : absl::StrCat(dir, "/chk-", from->checkpoint_id()),
        from->savepoint());
  }
}

std::string CheckpointCoordinator::LatestPath() const {
  const proto::CheckpointMetadata* latest = store_->Latest();
  return latest ? CheckpointDirectory(settings_.root, job_id_, latest->checkpoint_id()) : "";
}

// A task that finished during a checkpoint keeps the state it had in the newest completed one
// (a finished task emits nothing more). With checkpointing a task finishes only after a
// checkpoint of its job has completed, so there always is one.
int64_t CheckpointCoordinator::CarryForward(const TaskKey& key, Pending& p) const {
  const proto::CheckpointMetadata* latest = store_->Latest();
  if (!latest) return 0;
  int64_t bytes = 0;
  for (const auto& h : latest->handles()) {
    if (h.vertex_id() == key.first && h.subtask() == key.second) {
      p.handles.push_back(h);
      bytes += h.full_size();
    }
  }
  return bytes;
}

int64_t CheckpointCoordinator::WallMillis(const Pending& p, Clock::time_point now) {
  return p.timestamp_ms +
         std::max<int64_t>(0, std::chrono::duration_cast<Millis>(now - p.started).count());
}

bool CheckpointCoordinator::OnTaskFinished(const TaskKey& key) {
  if (!pending_ || !pending_->waiting.erase(key)) return false;
  int64_t bytes = CarryForward(key, *pending_);
  stats_.ReportFinishedSubtask(pending_->id, key.first, key.second,
                               WallMillis(*pending_, Clock::now()), bytes);
  return true;
}

void CheckpointCoordinator::OnRestart(Clock::time_point now) {
  // The job's failure normally ended it already (AbortPending); this is for one left over.
  if (pending_) {
    stats_.ReportFailed(pending_->id, WallMillis(*pending_, now), "the job restarted");
    if (pending_->savepoint) EndSavepoint(pending_->savepoint->request_id, "", "the job restarted");
  }
  pending_.reset();
  FailSavepointRequest("the job restarted");
  stopped_ = false;
  stopped_id_ = 0;
  end_of_data_.clear();
  final_triggered_ = false;
  last_trigger_ = now;
}

std::optional<CheckpointCoordinator::Trigger> CheckpointCoordinator::MaybeTrigger(
    const std::vector<TaskView>& tasks, Clock::time_point now) {
  if (!enabled() || pending_) return std::nullopt;
  bool all_sources_ended = true;
  for (const TaskView& t : tasks) {
    if (t.state != proto::TASK_RUNNING && t.state != proto::TASK_FINISHED)
      return std::nullopt;  // still deploying
    if (t.source && t.state != proto::TASK_FINISHED && !end_of_data_.count(t.key))
      all_sources_ended = false;
  }
  // stop --drain: the sources end their input first; the final checkpoint is the savepoint.
  if (savepoint_request_ && savepoint_request_->drain && !drain_sent_) {
    drain_sent_ = true;
    Trigger drain;
    drain.type = proto::CHECKPOINT_TYPE_DRAIN;
    drain.timestamp_ms = NowMillis();
    for (const TaskView& t : tasks) {
      if (t.source && t.state == proto::TASK_RUNNING && !end_of_data_.count(t.key))
        drain.task_managers.insert(t.tm_id);
    }
    if (!drain.task_managers.empty()) return drain;
  }
  bool final_due = all_sources_ended && !final_triggered_;
  const bool savepoint_due =
      savepoint_request_ && (!savepoint_request_->drain || (drain_sent_ && final_due));
  // While a drain ends the sources' input no other checkpoint may become the final one, and
  // after a stop-with-savepoint the job takes none: its tasks are ending at the savepoint.
  if ((savepoint_request_ && !savepoint_due) || stopped_) return std::nullopt;
  if (!final_due && !savepoint_due &&
      (now < last_trigger_ + settings_.interval || now < last_end_ + settings_.min_pause)) {
    return std::nullopt;
  }
  auto id = ids_->GetAndIncrement();
  if (!id.ok()) {
    spdlog::warn("job {}: no checkpoint id: {}", job_id_, std::string(id.status().message()));
    return std::nullopt;
  }
  Pending p;
  p.id = *id;
  p.timestamp_ms = NowMillis();
  p.started = now;
  Trigger trigger;
  std::map<int, int> subtasks_per_vertex;
  std::vector<std::pair<TaskKey, int64_t>> finished;  // and the bytes of their state
  for (const TaskView& t : tasks) {
    subtasks_per_vertex[t.key.first] = std::max(subtasks_per_vertex[t.key.first], t.key.second + 1);
    if (t.state == proto::TASK_FINISHED) {
      finished.emplace_back(t.key, CarryForward(t.key, p));
      continue;
    }
    p.waiting.insert(t.key);
    if (t.source) trigger.task_managers.insert(t.tm_id);
  }
  last_trigger_ = now;
  if (p.waiting.empty()) {
    if (savepoint_due) {
      EndSavepoint(savepoint_request_->request_id, "", "every task of the job has finished");
    }
    return std::nullopt;
  }
  if (all_sources_ended) final_triggered_ = true;
  trigger.id = p.id;
  trigger.timestamp_ms = p.timestamp_ms;
  if (savepoint_due) {
    p.savepoint = *savepoint_request_;
    // A drained job ends by itself after its final checkpoint; a plain stop ends at the barrier.
    trigger.type = p.savepoint->stop && !p.savepoint->drain ? proto::CHECKPOINT_TYPE_STOP_SAVEPOINT
                                                            : proto::CHECKPOINT_TYPE_SAVEPOINT;
  }
  stats_.ReportPending(p.id, p.timestamp_ms, subtasks_per_vertex, p.savepoint.has_value());
  for (const auto& [key, bytes] : finished)
    stats_.ReportFinishedSubtask(p.id, key.first, key.second, p.timestamp_ms, bytes);
  pending_ = std::move(p);
  return trigger;
}

bool CheckpointCoordinator::Acknowledge(const proto::AcknowledgeCheckpointRequest& a,
                                        Clock::time_point now) {
  if (!IsPending(a.checkpoint_id())) return false;
  if (pending_->waiting.erase({a.task().vertex_id(), a.task().subtask()}) == 0) return false;
  SubtaskCheckpointStats s;
  s.ack_timestamp = WallMillis(*pending_, now);
  for (const auto& h : a.handles()) {
    pending_->handles.push_back(h);
    s.checkpointed_size += h.checkpointed_size();
    s.state_size += h.full_size();
  }
  s.sync_duration = a.sync_duration_us() / 1000;
  s.async_duration = a.async_duration_us() / 1000;
  s.alignment_duration = a.alignment_duration_us() / 1000;
  s.start_delay = a.start_delay_ms();
  stats_.ReportAcknowledged(a.checkpoint_id(), a.task().vertex_id(), a.task().subtask(), s);
  pending_->max_sync_us = std::max(pending_->max_sync_us, a.sync_duration_us());
  pending_->max_async_us = std::max(pending_->max_async_us, a.async_duration_us());
  return true;
}

std::set<std::string> CheckpointCoordinator::SharedFilesOfRetained() const {
  std::set<std::string> files;
  for (const auto* c : store_->Retained()) {
    for (const auto& h : c->handles())
      files.insert(h.shared_files().begin(), h.shared_files().end());
  }
  return files;
}

std::optional<CheckpointCoordinator::Aborted> CheckpointCoordinator::AbortPending(
    const std::string& reason, bool count_failure, Clock::time_point now) {
  if (!pending_ || pending_->writing) return std::nullopt;
  Aborted out;
  out.id = pending_->id;
  if (pending_->savepoint) {
    // A failed savepoint is the caller's failure, not the job's.
    EndSavepoint(pending_->savepoint->request_id, "", reason);
    count_failure = false;
  }
  // Shared files the acknowledged tasks stored for this checkpoint alone: tasks build only on
  // completed checkpoints' files, so nothing else will name them.
  std::set<std::string> named = SharedFilesOfRetained();
  for (const auto& h : pending_->handles) {
    for (const std::string& f : h.shared_files()) {
      if (!named.count(f) && !shared_unreferenced_.count(f)) out.shared_files.push_back(f);
    }
  }
  stats_.ReportFailed(out.id, WallMillis(*pending_, now), reason);
  pending_.reset();
  last_end_ = now;
  out.dir = CheckpointDirectory(settings_.root, job_id_, out.id);
  if (!count_failure) {
    spdlog::info("job {}: checkpoint {} aborted: {}", job_id_, out.id, reason);
    return out;
  }
  failed_count_++;
  consecutive_failures_++;
  spdlog::warn("job {}: checkpoint {} failed: {}", job_id_, out.id, reason);
  if (consecutive_failures_ > settings_.tolerable_failures) {
    out.job_failure =
        absl::StrCat("checkpoint ", out.id, " failed (", reason, ") and ", consecutive_failures_,
                     " consecutive checkpoint failures exceed "
                     "execution.checkpointing.tolerable-failed-checkpoints (",
                     settings_.tolerable_failures, ")");
  }
  return out;
}

std::optional<CheckpointCoordinator::Aborted> CheckpointCoordinator::ExpireOverdue(
    Clock::time_point now) {
  // A savepoint that could not start in time (a drain whose sources do not end) fails.
  if (savepoint_request_ && !(pending_ && pending_->savepoint) &&
      now - savepoint_requested_ > settings_.timeout) {
    EndSavepoint(savepoint_request_->request_id, "",
                 absl::StrCat("it did not start within ", settings_.timeout.count(),
                              " ms (execution.checkpointing.timeout)",
                              drain_sent_ ? ": the sources did not end their input" : ""));
  }
  if (!pending_ || pending_->writing || pending_->waiting.empty()) return std::nullopt;
  if (now - pending_->started <= settings_.timeout) return std::nullopt;
  return AbortPending(
      absl::StrCat("expired after ", settings_.timeout.count(), " ms (", pending_->waiting.size(),
                   " tasks had not acknowledged; execution.checkpointing.timeout)"),
      /*count_failure=*/true, now);
}

std::optional<CheckpointCoordinator::ToWrite> CheckpointCoordinator::TakeAcknowledged(
    const proto::JobGraph& graph) {
  if (!pending_ || pending_->writing || !pending_->waiting.empty()) return std::nullopt;
  pending_->writing = true;
  ToWrite out;
  proto::CheckpointMetadata& m = out.metadata;
  m.set_job_id(job_id_);
  m.set_checkpoint_id(pending_->id);
  m.set_timestamp_ms(pending_->timestamp_ms);
  m.set_job_name(graph.name());
  m.set_max_parallelism(graph.max_parallelism());
  m.set_savepoint(pending_->savepoint.has_value());
  for (const auto& v : graph.vertices()) {
    m.add_vertex_parallelism(v.parallelism());
    m.add_vertex_nodes(absl::StrJoin(v.node_ids(), ","));
  }
  // A graph built before operator ids gets none: its checkpoints restore by node id.
  if (HasOperatorIds(graph)) {
    for (const auto& v : graph.vertices()) {
      proto::VertexOperators* ops = m.add_vertex_operators();
      *ops->mutable_node_ids() = v.node_ids();
      *ops->mutable_operator_ids() = v.operator_ids();
      *ops->mutable_names() = v.node_names();
    }
  }
  for (const auto& h : pending_->handles) *m.add_handles() = h;
  out.dir = pending_->savepoint ? pending_->savepoint->folder
                                : CheckpointDirectory(settings_.root, job_id_, pending_->id);
  out.job_dir = settings_.job_dir;
  return out;
}

CheckpointCoordinator::WriteOutcome CheckpointCoordinator::OnMetadataWritten(
    const proto::CheckpointMetadata& meta, const absl::Status& written, Clock::time_point now) {
  WriteOutcome out;
  if (!IsPending(meta.checkpoint_id())) {
    out.stale = true;
    return out;
  }
  pending_->writing = false;
  if (!written.ok()) {
    out.aborted = AbortPending(std::string(written.message()), /*count_failure=*/true, now);
    return out;
  }
  const int64_t duration = std::chrono::duration_cast<Millis>(now - pending_->started).count();
  if (pending_->savepoint) {
    // Not for recovery: the job's own checkpoints stay what a failover restores.
    const SavepointRequest r = *pending_->savepoint;
    spdlog::info("job {}: savepoint {} complete in {} ({} state files, {} ms)", job_id_,
                 meta.checkpoint_id(), r.folder, meta.handles_size(), duration);
    stats_.ReportCompleted(meta.checkpoint_id(), pending_->timestamp_ms + duration, duration,
                           r.folder);
    pending_.reset();
    last_end_ = now;
    completed_count_++;
    EndSavepoint(r.request_id, r.folder, "");
    stopped_ = r.stop;
    if (r.stop) stopped_id_ = meta.checkpoint_id();
    out.completed = true;
    out.notify = r.stop;
    out.cancel_job = r.cancel_job;
    return out;
  }
  auto subsumed = store_->Add(meta);
  if (!subsumed.ok()) {
    out.aborted = AbortPending(absl::StrCat("cannot store it: ", subsumed.status().message()),
                               /*count_failure=*/true, now);
    return out;
  }
  spdlog::info(
      "job {}: checkpoint {} complete ({} state files, {} ms; longest task pause {} us, "
      "longest write {} us)",
      job_id_, meta.checkpoint_id(), meta.handles_size(),
      std::chrono::duration_cast<Millis>(now - pending_->started).count(), pending_->max_sync_us,
      pending_->max_async_us);
  stats_.ReportCompleted(meta.checkpoint_id(), pending_->timestamp_ms + duration, duration,
                         CheckpointDirectory(settings_.root, job_id_, meta.checkpoint_id()));
  for (const auto& c : *subsumed) stats_.ReportDiscarded(c.checkpoint_id());
  pending_.reset();
  last_end_ = now;
  completed_count_++;
  consecutive_failures_ = 0;
  out.completed = true;
  out.notify = true;
  for (const auto* c : store_->Retained()) {
    out.keep.insert(absl::StrCat("chk-", c->checkpoint_id()));
    for (const auto& h : c->handles()) out.keep.insert(h.file().substr(0, h.file().find('/')));
  }
  std::set<std::string> named = SharedFilesOfRetained();
  for (const std::string& f : shared_unreferenced_) {
    if (!named.count(f)) out.shared_to_remove.push_back(f);
  }
  shared_unreferenced_.clear();
  for (const auto& c : *subsumed) {
    for (const auto& h : c.handles()) {
      for (const std::string& f : h.shared_files()) {
        if (!named.count(f)) shared_unreferenced_.insert(f);
      }
    }
  }
  return out;
}

absl::Status CheckpointCoordinator::RequestSavepoint(SavepointRequest request) {
  if (!enabled()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id_,
        " runs without checkpointing (execution.checkpointing.interval is not set): a savepoint "
        "needs it"));
  }
  if (savepoint_request_) {
    return absl::FailedPreconditionError(absl::StrCat("savepoint ", savepoint_request_->request_id,
                                                      " of job ", job_id_, " is under way"));
  }
  if (stopped_) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id_, " is stopping after a savepoint"));
  }
  savepoint_results_[request.request_id] = SavepointResult{false, "", "", request.cancel_job};
  drain_sent_ = false;
  savepoint_requested_ = Clock::now();
  savepoint_request_ = std::move(request);
  return absl::OkStatus();
}

absl::StatusOr<CheckpointCoordinator::SavepointResult> CheckpointCoordinator::GetSavepoint(
    const std::string& request_id) const {
  auto it = savepoint_results_.find(request_id);
  if (it == savepoint_results_.end()) {
    return absl::NotFoundError(
        absl::StrCat("job ", job_id_, " has no savepoint request ", request_id));
  }
  return it->second;
}

void CheckpointCoordinator::FailSavepointRequest(const std::string& reason) {
  if (!savepoint_request_ || (pending_ && pending_->savepoint)) return;
  EndSavepoint(savepoint_request_->request_id, "", reason);
}

void CheckpointCoordinator::EndSavepoint(const std::string& request_id, std::string location,
                                         std::string failure) {
  SavepointResult& r = savepoint_results_[request_id];
  r.done = true;
  r.location = std::move(location);
  r.failure = std::move(failure);
  if (!r.failure.empty()) {
    spdlog::warn("job {}: savepoint request {} failed: {}", job_id_, request_id, r.failure);
  }
  if (savepoint_request_ && savepoint_request_->request_id == request_id) {
    savepoint_request_.reset();
    drain_sent_ = false;
  }
}

absl::StatusOr<proto::CheckpointMetadata> CheckpointCoordinator::LoadForRestore(
    const std::string& path, const proto::JobGraph& graph, bool allow_non_restored_state,
    std::string* dir) {
  auto meta = ReadMetadata(path);
  if (!meta.ok()) return meta.status();
  std::filesystem::path p(path);
  if (p.filename() == "_metadata") p = p.parent_path();
  if (p.filename().empty()) p = p.parent_path();  // a trailing slash
  // A savepoint names its files relative to its own folder, a checkpoint relative to the job's.
  *dir = meta->savepoint() ? p.string() : p.parent_path().string();
  absl::Status fits = CheckCheckpointFits(*meta, graph, path);
  if (!fits.ok()) return fits;
  // Every file is read whole (size and checksum checked), and tells which operators have state.
  std::set<std::pair<int, int>> stateful;  // (node id, vertex id)
  for (const auto& h : meta->handles()) {
    auto snapshots = ReadStateFile(absl::StrCat(*dir, "/", h.file()), &h);
    if (!snapshots.ok()) return snapshots.status();
    for (const internal::OperatorSnapshot& s : *snapshots) {
      if (!s.empty()) stateful.emplace(s.node_id, h.vertex_id());
    }
  }
  fits = CheckStateFits(*meta, graph, stateful, allow_non_restored_state, path);
  if (!fits.ok()) return fits;
  return meta;
}

absl::Status CheckpointCoordinator::WriteMetadataFile(const ToWrite& checkpoint) {
  std::error_code ec;
  std::filesystem::create_directories(checkpoint.dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("cannot create '", checkpoint.dir, "': ", ec.message()));
  std::string job_dir = std::filesystem::path(checkpoint.dir).parent_path().string();
  for (const auto& h : checkpoint.metadata.handles()) {
    for (const std::string& f : h.shared_files()) {
      std::string path = absl::StrCat(job_dir, "/", f);
      if (!std::filesystem::exists(path, ec)) {
        return absl::DataLossError(absl::StrCat("shared state file '", path, "' of vertex ",
                                                h.vertex_id(), " subtask ", h.subtask(),
                                                " is missing"));
      }
    }
  }
  return WriteMetadata(checkpoint.dir, checkpoint.metadata);
}

void CheckpointCoordinator::Discard(const std::string& job_dir, const Aborted& aborted) {
  std::error_code ec;
  std::filesystem::remove_all(aborted.dir, ec);
  for (const std::string& f : aborted.shared_files)
    std::filesystem::remove(absl::StrCat(job_dir, "/", f), ec);
}

void CheckpointCoordinator::DiscardSubsumed(const std::string& job_dir, int64_t completed_id,
                                            const WriteOutcome& outcome) {
  std::error_code ec;
  for (const std::string& f : outcome.shared_to_remove)
    std::filesystem::remove(absl::StrCat(job_dir, "/", f), ec);
  // Older checkpoints, unless a retained one still refers to their files.
  for (const auto& e : std::filesystem::directory_iterator(job_dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("chk-", 0) != 0 || outcome.keep.count(name)) continue;
    int64_t n = std::atoll(name.c_str() + 4);
    if (n >= completed_id) continue;  // a newer one may be in progress
    std::filesystem::remove_all(e.path(), ec);
  }
}

}  // namespace sluice
