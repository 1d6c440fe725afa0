#include "jobmanager/dispatcher.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/job_graph.h"
#include "common/job_states.h"
#include "jobmanager/savepoints.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

using Millis = std::chrono::milliseconds;

// Finished, failed and cancelled jobs kept for `sluice list -a` and the REST API.
constexpr size_t kRetainedTerminalJobs = 1000;
// Failures kept per job for its exception history (Flink's web.exception-history-size).
constexpr size_t kExceptionHistorySize = 16;

}  // namespace

Dispatcher::Dispatcher(Configuration conf, Options options, std::unique_ptr<BlobStore> blobs,
                       TaskManagerGatewayFactory gateways)
    : conf_(std::move(conf)),
      options_(std::move(options)),
      blobs_(std::move(blobs)),
      resources_(std::move(gateways)),
      provider_(conf_),
      autoscale_interval_(conf_.GetDurationMs("metrics.fetcher.update-interval")),
      registration_timeout_(
          conf_.GetDurationMs("resourcemanager.taskmanager-registration.timeout")) {
  RegisterClusterMetrics();
  if (options_.start_threads) {
    // Under the lock: each thread's body takes it before it reads the other's pointer.
    absl::MutexLock lock(&mu_);
    monitor_ = std::make_unique<PeriodicThread>("jm-monitor",
                                                absl::FromChrono(options_.heartbeat_interval / 2),
                                                [this] { RunMonitorOnce(); });
    coordinator_ = std::make_unique<PeriodicThread>("jm-coordinator",
                                                    absl::FromChrono(options_.coordinator_period),
                                                    [this] { RunCoordinatorOnce(); });
  }
}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Stop() {
  PeriodicThread* monitor;
  PeriodicThread* coordinator;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    monitor = monitor_.get();
    coordinator = coordinator_.get();
  }
  // Not under the lock: Stop() joins threads whose bodies take it.
  if (monitor) monitor->Stop();
  if (coordinator) coordinator->Stop();
  RecordJobEnds();  // the last chance for ends the coordinator had no round for
}

void Dispatcher::WakeCoordinatorLocked() {
  if (coordinator_) coordinator_->Wake();
}

void Dispatcher::WakeMonitorLocked() {
  if (monitor_) monitor_->Wake();
}

void Dispatcher::Run(Calls& calls) {
  for (auto& call : calls) call();
  calls.clear();
}

Dispatcher::Job* Dispatcher::FindJobLocked(const std::string& job_id) {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : &it->second;
}

std::set<std::string> Dispatcher::TaskManagersOf(const Job& job) {
  return std::set<std::string>(job.slots.begin(), job.slots.end());
}

void Dispatcher::DeferLocked(std::function<void()> call) {
  deferred_.push_back(std::move(call));
  WakeCoordinatorLocked();
}

// ---- Calls to TaskManagers (never under mu_) ----

std::shared_ptr<TaskManagerGateway> Dispatcher::GatewayOf(const std::string& tm_id) {
  absl::MutexLock lock(&mu_);
  return resources_.Gateway(tm_id);
}

void Dispatcher::SendCancel(const std::string& tm_id, const std::string& job_id) {
  auto gateway = GatewayOf(tm_id);
  if (!gateway) return;
  absl::Status st = gateway->CancelJobTasks(job_id);
  if (!st.ok() && !absl::IsNotFound(st)) {
    spdlog::warn("cancelling job {} on TaskManager {}: {}", job_id, tm_id,
                 std::string(st.message()));
  }
}

void Dispatcher::SendRelease(const std::string& tm_id, const std::string& job_id) {
  if (auto gateway = GatewayOf(tm_id)) gateway->ReleaseJob(job_id).IgnoreError();
}

void Dispatcher::SendNotify(const std::string& tm_id, const std::string& job_id, int attempt,
                            int64_t id, bool aborted) {
  auto gateway = GatewayOf(tm_id);
  if (!gateway) return;
  proto::NotifyCheckpointRequest req;
  req.set_job_id(job_id);
  req.set_attempt(attempt);
  req.set_checkpoint_id(id);
  req.set_aborted(aborted);
  absl::Status st = gateway->NotifyCheckpoint(req);
  if (!st.ok() && !absl::IsNotFound(st)) {
    spdlog::warn("job {}: notifying TaskManager {} of checkpoint {}: {}", job_id, tm_id, id,
                 std::string(st.message()));
  }
}

void Dispatcher::Deploy(const Scheduler::Deployment& d) {
  const proto::ExecutionAttemptId& task = d.tdd.task();
  {
    // A job cancelled or failed while its tasks were being deployed gets no more tasks.
    absl::MutexLock lock(&mu_);
    Job* job = FindJobLocked(task.job_id());
    if (!job || task.attempt() != job->attempt) return;  // gone, or restarted meanwhile
    if (job->state != proto::JOB_RUNNING) {
      auto& t = job->tasks[{task.vertex_id(), task.subtask()}];
      if (!IsTerminalTaskState(t.state)) EndTaskLocked(t, proto::TASK_CANCELED);
      MaybeCompleteLocked(*job);
      return;
    }
  }
  auto gateway = GatewayOf(d.tm_id);
  absl::Status st = gateway
                        ? gateway->DeployTask(d.tdd)
                        : absl::NotFoundError(absl::StrCat("TaskManager ", d.tm_id, " is gone"));
  if (st.ok()) return;
  std::set<std::string> cancel_on;
  {
    absl::MutexLock lock(&mu_);
    Job* job = FindJobLocked(task.job_id());
    if (!job || task.attempt() != job->attempt) return;
    auto& t = job->tasks[{task.vertex_id(), task.subtask()}];
    EndTaskLocked(t, proto::TASK_FAILED);
    t.failure = std::string(st.message());
    cancel_on = HandleFailureLocked(
        *job, absl::StrCat("could not deploy ", job->graph.vertices(task.vertex_id()).name(), " (",
                           task.subtask() + 1, ") to TaskManager ", d.tm_id, ": ", st.message()));
    MaybeCompleteLocked(*job);
  }
  for (const auto& tm : cancel_on) SendCancel(tm, task.job_id());
}

// ---- TaskManagers ----

absl::StatusOr<std::string> Dispatcher::RegisterTaskManager(
    const proto::RegisterTaskManagerRequest& req) {
  absl::MutexLock lock(&mu_);
  int used = 0;
  for (const auto& [id, job] : jobs_) {
    if (job.slots_released) continue;
    for (const auto& s : job.slots) used += s == req.tm_id() ? 1 : 0;
  }
  for (const auto& [id, job] : jobs_) {
    for (const auto& s : job.reserved_slots) used += s == req.tm_id() ? 1 : 0;
  }
  auto added = resources_.Register(req.tm_id(), req.address(), req.num_slots(), used, Clock::now());
  if (!added.ok()) return added.status();
  if (*added)
    spdlog::info("TaskManager {} registered from {} with {} slots", req.tm_id(), req.address(),
                 req.num_slots());
  return options_.jm_id;
}

bool Dispatcher::HeartbeatFromTaskManager(const std::string& tm_id) {
  absl::MutexLock lock(&mu_);
  return resources_.Heartbeat(tm_id, Clock::now());
}

bool Dispatcher::IsTaskManagerRegistered(const std::string& tm_id) {
  absl::MutexLock lock(&mu_);
  return !stopping_ && resources_.Contains(tm_id);
}

void Dispatcher::DisconnectTaskManager(const std::string& tm_id) {
  Calls cancels;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !resources_.Contains(tm_id)) return;
    LoseTaskManagerLocked(tm_id,
                          absl::StrCat("TaskManager ", tm_id, " at ", resources_.Address(tm_id),
                                       " was lost: its connection to the JobManager closed"),
                          cancels);
  }
  Run(cancels);
}

void Dispatcher::LoseTaskManagerLocked(const std::string& id, const std::string& cause,
                                       Calls& cancels) {
  if (!resources_.Contains(id)) return;
  spdlog::warn("{}", cause);
  resources_.Remove(id);
  for (auto& [job_id, job] : jobs_) {
    if (IsTerminalJobState(job.state)) continue;
    bool affected = false;
    for (auto& [key, t] : job.tasks) {
      if (t.tm_id == id && !IsTerminalTaskState(t.state)) {
        EndTaskLocked(t, proto::TASK_FAILED);
        t.failure = cause;
        affected = true;
      }
    }
    if (!affected) continue;
    for (const auto& tm : HandleFailureLocked(job, cause)) {
      if (tm != id) cancels.push_back([this, tm, jid = job_id] { SendCancel(tm, jid); });
    }
    MaybeCompleteLocked(job);
  }
}

absl::Status Dispatcher::UpdateTaskState(const proto::TaskStateUpdate& u) {
  std::set<std::string> cancel_on;
  {
    absl::MutexLock lock(&mu_);
    const proto::ExecutionAttemptId& task = u.task();
    Job* job = FindJobLocked(task.job_id());
    if (!job) return absl::OkStatus();
    TaskKey key{task.vertex_id(), task.subtask()};
    auto t = job->tasks.find(key);
    if (t == job->tasks.end() || t->second.attempt != task.attempt()) return absl::OkStatus();
    // The task's final figures (a final state's update carries them), stored before the state
    // is visible: a job seen FINISHED shows its final counts. Also when the JobManager had given
    // the task up already.
    if (options_.metrics && u.has_metrics()) {
      proto::MetricDump dump = u.metrics();
      dump.set_tm_id(u.tm_id());
      options_.metrics->store().Add(dump, /*final=*/true);
    }
    if (IsTerminalTaskState(t->second.state)) return absl::OkStatus();
    if (!u.end_of_data() && u.state() != proto::TASK_RUNNING && !IsTerminalTaskState(u.state())) {
      return absl::InvalidArgumentError(
          absl::StrCat("a task cannot report the state ", std::string(TaskStateName(u.state()))));
    }
    if (u.end_of_data()) {
      // Not a state of its own: the task keeps running until the final checkpoint.
      if (job->checkpoints) job->checkpoints->OnEndOfData(key);
      WakeCoordinatorLocked();
      return absl::OkStatus();
    }
    if (IsTerminalTaskState(u.state())) {
      EndTaskLocked(t->second, u.state());
    } else {
      t->second.state = u.state();
      if (u.state() == proto::TASK_RUNNING) OnTaskRunningLocked(*job);
    }
    t->second.failure = u.failure();
    if (u.state() == proto::TASK_FINISHED && job->checkpoints &&
        job->checkpoints->OnTaskFinished(key)) {
      WakeCoordinatorLocked();
    }
    if (u.state() == proto::TASK_FAILED) {
      const auto& v = job->graph.vertices(task.vertex_id());
      cancel_on = HandleFailureLocked(
          *job,
          absl::StrCat(v.name(), " (", task.subtask() + 1, "/", v.parallelism(),
                       ") on TaskManager ", u.tm_id(), " failed: ", u.failure()),
          FailureSource{absl::StrCat(v.name(), " (", task.subtask() + 1, "/", v.parallelism(), ")"),
                        u.tm_id()});
    }
    MaybeCompleteLocked(*job);
  }
  for (const auto& tm : cancel_on) SendCancel(tm, u.task().job_id());
  return absl::OkStatus();
}

absl::Status Dispatcher::AcknowledgeCheckpoint(const proto::AcknowledgeCheckpointRequest& a) {
  absl::MutexLock lock(&mu_);
  Job* job = FindJobLocked(a.task().job_id());
  // Late acknowledgements (of an aborted checkpoint or an old attempt) are ignored.
  if (!job || a.task().attempt() != job->attempt || !job->checkpoints) return absl::OkStatus();
  // The coordinator writes the checkpoint once the last awaited task has acknowledged.
  if (job->checkpoints->Acknowledge(a) && job->checkpoints->AllAcknowledged())
    WakeCoordinatorLocked();
  return absl::OkStatus();
}

absl::Status Dispatcher::DeclineCheckpoint(const proto::DeclineCheckpointRequest& d) {
  absl::MutexLock lock(&mu_);
  const proto::ExecutionAttemptId& task = d.task();
  Job* job = FindJobLocked(task.job_id());
  if (!job || task.attempt() != job->attempt || !job->checkpoints ||
      !job->checkpoints->IsPending(d.checkpoint_id())) {
    return absl::OkStatus();
  }
  if (task.vertex_id() < 0 || task.vertex_id() >= job->graph.vertices_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no vertex ", task.vertex_id(), " in job ", job->id));
  }
  const auto& v = job->graph.vertices(task.vertex_id());
  AbortPendingLocked(*job,
                     absl::StrCat(v.name(), " (", task.subtask() + 1, "/", v.parallelism(),
                                  ") declined it: ", d.reason()),
                     /*count_failure=*/true);
  return absl::OkStatus();
}

// ---- Libraries ----

absl::StatusOr<std::string> Dispatcher::UploadLibrary(std::string_view bytes) {
  return blobs_->Put(bytes);
}

absl::StatusOr<std::string> Dispatcher::LibraryPath(const std::string& sha256) {
  return blobs_->Path(sha256);
}

// ---- Jobs ----

void Dispatcher::InitJobLocked(Job& job, const std::string& job_id,
                               const proto::SubmitJobRequest& req, NewJob prepared) {
  job.id = job_id;
  job.graph = req.graph();
  job.library_sha256 = req.library_sha256();
  job.args.assign(req.args().begin(), req.args().end());
  job.config.insert(req.config().begin(), req.config().end());
  SetStateLocked(job, proto::JOB_CREATED);
  job.start_time_ms = NowMillis();
  job.conf = std::move(prepared.conf);
  job.auto_watermark_interval_ms = job.conf.GetDurationMs("pipeline.auto-watermark-interval");
  job.restart_strategy = RestartStrategy::Create(job.conf, prepared.checkpoints->enabled());
  job.checkpoints = std::move(prepared.checkpoints);
  SetUpAutoscalerLocked(job);
}

void Dispatcher::LogSubmittedLocked(Job& job, size_t deployments) {
  // (A job whose wait for slots timed out at once has ended already.)
  if (!IsTerminalJobState(job.state)) RegisterJobMetricsLocked(job);
  std::string dir;
  const proto::CheckpointMetadata* from = job.checkpoints->RestoreSource(&dir);
  spdlog::info("job {} ({}) submitted: {}{}", job.id, job.graph.name(),
               job.deployed ? absl::StrCat(deployments, " tasks in ", job.slots.size(), " slots")
               : job.state == proto::JOB_CREATED ? "waiting for task slots"
                                                 : std::string(JobStateName(job.state)),
               from ? absl::StrCat(", from checkpoint ", from->checkpoint_id(), " in ", dir) : "");
}

absl::StatusOr<std::string> Dispatcher::SubmitJob(const proto::SubmitJobRequest& req) {
  absl::Status valid = Scheduler::ValidateGraph(req.graph());
  if (!valid.ok()) return valid;
  if (!blobs_->Contains(req.library_sha256())) {
    return absl::FailedPreconditionError("job library " + req.library_sha256() +
                                         " was not uploaded");
  }
  std::string job_id = NewJobId();
  auto prepared = PrepareJob(job_id, req, /*recovering=*/false);
  if (!prepared.ok()) return prepared.status();
  if (options_.ha) {
    // Persisted before it runs: a job a client was told about survives the loss of this leader.
    absl::Status st = PersistSubmittedJob(job_id, req);
    if (!st.ok()) return st;
  }
  Deployments deployments;
  absl::Status refused;
  {
    absl::MutexLock lock(&mu_);
    refused = stopping_ ? absl::UnavailableError("JobManager is stopping") : absl::OkStatus();
    if (refused.ok()) {
      Job& job = jobs_[job_id];
      InitJobLocked(job, job_id, req, std::move(*prepared));
      auto scheduled = ScheduleNewJobLocked(job, Clock::now());
      if (scheduled.ok()) {
        deployments = std::move(*scheduled);
        LogSubmittedLocked(job, deployments.size());
      } else {
        jobs_.erase(job_id);
        refused = scheduled.status();
      }
    }
  }
  if (!refused.ok()) {
    // The client is told it has no job: no leader may run the persisted one.
    if (options_.ha) ForgetPersistedJob(job_id, proto::JOB_FAILED);
    return refused;
  }
  for (const auto& d : deployments) Deploy(d);
  return job_id;
}

Dispatcher::Deployments Dispatcher::DeployAttemptLocked(Job& job) {
  Scheduler::JobSpec spec;
  spec.job_id = job.id;
  spec.graph = &job.graph;
  spec.library_sha256 = job.library_sha256;
  spec.args = job.args;
  spec.config = job.config;
  // The backend is the cluster's unless the job overrides it; TaskManagers are told which.
  for (const char* key : {"state.backend.type", "state.backend.incremental"})
    spec.config[key] = job.conf.GetString(key);
  spec.attempt = job.attempt;
  spec.auto_watermark_interval_ms = job.auto_watermark_interval_ms;
  if (job.checkpoints->enabled()) {
    spec.checkpoint_dir = job.checkpoints->settings().job_dir;
    spec.exactly_once = job.checkpoints->settings().exactly_once;
  }
  spec.restore = job.checkpoints->RestoreSource(&spec.restore_dir);
  if (spec.restore) job.checkpoints->OnRestored(NowMillis());
  if (job.autoscaler) job.autoscaler->OnRedeployed(Clock::now());
  // The old attempt's figures must not pass for the new one's (REST views, the autoscaler).
  if (options_.metrics) options_.metrics->store().StartAttempt(job.id, job.attempt);
  std::map<std::string, std::string> addresses;
  for (const auto& tm : job.slots) addresses[tm] = resources_.Address(tm);
  Deployments out = Scheduler::BuildDeployments(
      spec, job.slots, [&addresses](const std::string& tm) { return addresses[tm]; });
  job.tasks.clear();
  const int64_t now = NowMillis();
  for (const auto& d : out) {
    job.tasks[{d.tdd.task().vertex_id(), d.tdd.task().subtask()}] =
        TaskEntry{proto::TASK_DEPLOYING, d.tm_id, "", job.attempt, now, 0};
  }
  return out;
}

std::vector<proto::JobStatus> Dispatcher::ListJobs(bool include_terminated) {
  absl::MutexLock lock(&mu_);
  std::vector<const Job*> jobs;
  for (const auto& [id, job] : jobs_) {
    if (include_terminated || !IsTerminalJobState(job.state)) jobs.push_back(&job);
  }
  std::sort(jobs.begin(), jobs.end(),
            [](const Job* a, const Job* b) { return a->start_time_ms < b->start_time_ms; });
  std::vector<proto::JobStatus> out(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i)
    FillStatusLocked(*jobs[i], &out[i], /*with_tasks=*/false);
  return out;
}

absl::StatusOr<proto::JobStatus> Dispatcher::GetJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Job* job = FindJobLocked(job_id);
  if (!job) return absl::NotFoundError("no job " + job_id);
  proto::JobStatus s;
  FillStatusLocked(*job, &s, /*with_tasks=*/true);
  return s;
}

absl::StatusOr<JobCheckpointStats> Dispatcher::GetCheckpointStats(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Job* job = FindJobLocked(job_id);
  if (!job) return absl::NotFoundError("no job " + job_id);
  JobCheckpointStats out;
  out.settings = job->checkpoints->settings();
  out.state_backend = job->conf.GetString("state.backend.type");
  out.stats = job->checkpoints->stats().snapshot();
  return out;
}

absl::Status Dispatcher::CancelJob(const std::string& job_id) {
  std::set<std::string> tms;
  {
    absl::MutexLock lock(&mu_);
    Job* job = FindJobLocked(job_id);
    if (!job) return absl::NotFoundError("no job " + job_id);
    if (IsTerminalJobState(job->state)) {
      return absl::FailedPreconditionError(
          absl::StrCat("job ", job->id, " is already ", std::string(JobStateName(job->state))));
    }
    if (job->state == proto::JOB_CANCELLING) return absl::OkStatus();
    SetStateLocked(*job, proto::JOB_CANCELLING);
    job->stop_requested = Clock::now();
    tms = TaskManagersOf(*job);
    spdlog::info("job {} cancelling", job->id);
    MaybeCompleteLocked(*job);
  }
  for (const auto& tm : tms) SendCancel(tm, job_id);
  return absl::OkStatus();
}

proto::ClusterOverview Dispatcher::GetOverview() {
  absl::MutexLock lock(&mu_);
  proto::ClusterOverview ov = resources_.Overview(Clock::now());
  ov.set_scheduler(options_.scheduler.name());
  return ov;
}

void Dispatcher::FillStatusLocked(const Job& job, proto::JobStatus* s, bool with_tasks) const {
  s->set_job_id(job.id);
  s->set_name(job.graph.name());
  s->set_state(job.state);
  s->set_start_time_ms(job.start_time_ms);
  s->set_end_time_ms(job.end_time_ms);
  s->set_parallelism(SlotsNeeded(job.graph));
  s->set_failure(job.failure);
  s->set_restarts(job.restarts);
  s->set_rescales(job.rescales);
  if (job.state == proto::JOB_CREATED) s->set_waiting_for_resources(job.waiting_for);
  s->set_completed_checkpoints(job.checkpoints->completed_count());
  s->set_failed_checkpoints(job.checkpoints->failed_count());
  if (const proto::CheckpointMetadata* latest = job.checkpoints->latest()) {
    s->set_last_checkpoint_id(latest->checkpoint_id());
    s->set_last_checkpoint_path(job.checkpoints->LatestPath());
  }
  if (!with_tasks) return;
  FillAutoscalerStatusLocked(job, s);
  for (const auto& [key, t] : job.tasks) {
    auto* ts = s->add_tasks();
    ts->set_vertex_id(key.first);
    ts->set_subtask(key.second);
    ts->set_state(t.state);
    ts->set_tm_id(t.tm_id);
    ts->set_failure(t.failure);
    ts->set_start_time_ms(t.start_ms);
    ts->set_end_time_ms(t.end_ms);
    ts->set_attempt(t.attempt);
  }
  *s->mutable_graph() = job.graph;
  for (const auto& [state, ms] : job.state_timestamps) {
    (*s->mutable_state_timestamps())[std::string(
        JobStateName(static_cast<proto::JobState>(state)))] = ms;
  }
  for (const auto& e : job.exceptions) *s->add_exceptions() = e;
}

// ---- Job states ----

void Dispatcher::FailJobLocked(Job& job, const std::string& cause) {
  SetStateLocked(job, proto::JOB_FAILING);
  job.failure = cause;
  job.stop_requested = Clock::now();
  spdlog::warn("job {} failing: {}", job.id, cause);
}

// Moves a job whose tasks have all ended to its final state and frees its slots.
void Dispatcher::MaybeCompleteLocked(Job& job) {
  if (IsTerminalJobState(job.state)) return;
  if (job.state == proto::JOB_CREATED) return;  // waiting for slots: no tasks yet
  bool all_terminal = true, all_finished = true;
  for (const auto& [key, t] : job.tasks) {
    all_terminal &= IsTerminalTaskState(t.state);
    all_finished &= t.state == proto::TASK_FINISHED;
  }
  if (!all_terminal) return;
  if (job.state == proto::JOB_RESTARTING) {
    WakeCoordinatorLocked();  // it redeploys once the delay has passed
    return;
  }
  AbortPendingLocked(job, "the job ended", /*count_failure=*/false);
  job.checkpoints->FailSavepointRequest("the job ended");
  if (job.state == proto::JOB_RUNNING && all_finished) {
    SetStateLocked(job, proto::JOB_FINISHED);
  } else if (job.state == proto::JOB_CANCELLING) {
    SetStateLocked(job, proto::JOB_CANCELED);
  } else {
    SetStateLocked(job, proto::JOB_FAILED);
    if (job.failure.empty()) job.failure = "tasks ended without finishing";
  }
  job.end_time_ms = NowMillis();
  EndRescaleLocked(job);
  job.metrics.reset();  // an ended job's metrics leave the reporters
  ReleaseSlotsLocked(job);
  spdlog::info("job {} ({}) {}", job.id, job.graph.name(), JobStateName(job.state));
  for (const auto& tm : TaskManagersOf(job)) releases_.emplace_back(tm, job.id);
  WakeMonitorLocked();
  if (options_.ha) {
    unrecorded_ends_.emplace_back(job.id, job.state);
    WakeCoordinatorLocked();
  }
  terminal_order_.push_back(job.id);
  while (terminal_order_.size() > kRetainedTerminalJobs) {
    if (options_.metrics) options_.metrics->store().ForgetJob(terminal_order_.front());
    jobs_.erase(terminal_order_.front());
    terminal_order_.pop_front();
  }
}

void Dispatcher::ReleaseSlotsLocked(Job& job) {
  resources_.ReleaseSlots(job.reserved_slots);
  job.reserved_slots.clear();
  if (job.slots_released) return;
  job.slots_released = true;
  resources_.ReleaseSlots(job.slots);
}

// ---- Failover ----

void Dispatcher::SetStateLocked(Job& job, proto::JobState state) {
  job.state = state;
  job.state_timestamps[state] = NowMillis();
}

void Dispatcher::EndTaskLocked(TaskEntry& task, proto::TaskState state) {
  task.state = state;
  task.end_ms = NowMillis();
}

std::set<std::string> Dispatcher::HandleFailureLocked(Job& job, const std::string& cause,
                                                      const FailureSource& source) {
  if (job.state != proto::JOB_RUNNING)
    return {};  // already restarting, failing, cancelling or over
  proto::JobException e;
  e.set_timestamp_ms(NowMillis());
  e.set_cause(cause);
  e.set_task_name(source.task_name);
  e.set_tm_id(source.tm_id);
  job.exceptions.push_front(std::move(e));
  if (job.exceptions.size() > kExceptionHistorySize) job.exceptions.pop_back();
  AbortPendingLocked(job, "the job failed", /*count_failure=*/false);
  auto now = Clock::now();
  if (job.checkpoints->stopped()) {
    // Its savepoint committed the sinks' output: a restart from an older checkpoint would
    // commit that output again, and the job was asked to stop.
    FailJobLocked(job,
                  absl::StrCat(cause, " (after its stop-with-savepoint completed: not restarted)"));
    return TaskManagersOf(job);
  }
  std::optional<Millis> delay = job.restart_strategy->OnFailure(now);
  if (!delay) {
    FailJobLocked(job, job.restarts > 0 ? absl::StrCat(cause, " (no more restarts: ",
                                                       job.restart_strategy->Describe(), ")")
                                        : cause);
  } else {
    SetStateLocked(job, proto::JOB_RESTARTING);
    job.failure = cause;
    job.stop_requested = now;
    job.restart_at = now + *delay;
    spdlog::warn("job {} restarting in {} ms: {}", job.id, delay->count(), cause);
    WakeCoordinatorLocked();
  }
  return TaskManagersOf(job);
}

// Redeploys a RESTARTING job whose old tasks have all ended: onto the free slots of the
// TaskManagers that answer, from the newest completed checkpoint.
void Dispatcher::Restart(const std::string& job_id) {
  std::set<std::string> old_tms;
  {
    absl::MutexLock lock(&mu_);
    Job* job = FindJobLocked(job_id);
    if (!job || job->state != proto::JOB_RESTARTING) return;
    if (job->checkpoints->stopped()) {
      // Its stop-with-savepoint completed while it was restarting: it stays stopped.
      FailJobLocked(*job, absl::StrCat(job->failure,
                                       " (its stop-with-savepoint had completed: not restarted)"));
      MaybeCompleteLocked(*job);
      return;
    }
    old_tms = TaskManagersOf(*job);
  }
  // A TaskManager that does not answer now is gone: do not wait for its heartbeats to stop.
  Calls cancels;
  for (const auto& tm : old_tms) {
    auto gateway = GatewayOf(tm);
    if (!gateway) continue;  // already forgotten
    absl::Status st = gateway->Heartbeat(options_.jm_id);
    if (!st.ok()) {
      absl::MutexLock lock(&mu_);
      LoseTaskManagerLocked(
          tm,
          absl::StrCat("TaskManager ", tm, " was lost: it does not answer (", st.message(), ")"),
          cancels);
    } else {
      SendRelease(tm, job_id);  // the old attempt's partitions and tasks
    }
  }
  Run(cancels);
  Deployments deployments;
  {
    absl::MutexLock lock(&mu_);
    Job* job = FindJobLocked(job_id);
    if (!job || job->state != proto::JOB_RESTARTING) return;
    ReleaseSlotsLocked(*job);
    deployments = RedeployLocked(*job, Clock::now());
  }
  for (const auto& d : deployments) Deploy(d);
}

// ---- Checkpoints ----

void Dispatcher::AbortPendingLocked(Job& job, const std::string& reason, bool count_failure) {
  if (auto aborted = job.checkpoints->AbortPending(reason, count_failure, Clock::now())) {
    HandleAbortedLocked(job, *aborted);
  }
}

void Dispatcher::HandleAbortedLocked(Job& job, const CheckpointCoordinator::Aborted& aborted) {
  std::set<std::string> tms = TaskManagersOf(job);
  DeferLocked([this, aborted, tms, attempt = job.attempt, job_id = job.id,
               job_dir = job.checkpoints->settings().job_dir] {
    CheckpointCoordinator::Discard(job_dir, aborted);
    for (const auto& tm : tms) SendNotify(tm, job_id, attempt, aborted.id, /*aborted=*/true);
  });
  if (aborted.job_failure) {
    std::set<std::string> cancel = HandleFailureLocked(job, *aborted.job_failure);
    DeferLocked([this, cancel, job_id = job.id] {
      for (const auto& tm : cancel) SendCancel(tm, job_id);
    });
  }
}

void Dispatcher::CompleteCheckpoint(const std::string& job_id,
                                    CheckpointCoordinator::ToWrite& checkpoint) {
  absl::Status written = checkpoint.metadata.savepoint()
                             ? WriteSavepoint(checkpoint)
                             : CheckpointCoordinator::WriteMetadataFile(checkpoint);
  std::set<std::string> tms;
  int attempt = 0;
  std::string job_dir;
  CheckpointCoordinator::WriteOutcome outcome;
  {
    absl::MutexLock lock(&mu_);
    Job* job = FindJobLocked(job_id);
    if (!job) return;
    outcome = job->checkpoints->OnMetadataWritten(checkpoint.metadata, written, Clock::now());
    if (outcome.aborted) {
      HandleAbortedLocked(*job, *outcome.aborted);  // as any other failed checkpoint
      return;
    }
    if (!outcome.completed) return;
    if (job->state == proto::JOB_RUNNING && outcome.notify) tms = TaskManagersOf(*job);
    attempt = job->attempt;
    job_dir = job->checkpoints->settings().job_dir;
  }
  int64_t id = checkpoint.metadata.checkpoint_id();
  // High availability: a completed stop ends the job and its sinks commit the savepoint, so the
  // end is recorded first; a new leader must not run it again from an older checkpoint. When
  // that cannot be written yet, the coordinator's resends try again.
  if (options_.ha && checkpoint.metadata.savepoint() && !tms.empty() &&
      !ForgetPersistedJob(job_id, proto::JOB_FINISHED)) {
    tms.clear();
  }
  for (const auto& tm : tms) SendNotify(tm, job_id, attempt, id, /*aborted=*/false);
  if (checkpoint.metadata.savepoint()) {
    if (outcome.cancel_job) {
      absl::Status st = CancelJob(job_id);
      if (!st.ok())
        spdlog::warn("job {}: cancel after savepoint: {}", job_id, std::string(st.message()));
    }
    return;  // subsumes nothing
  }
  CheckpointCoordinator::DiscardSubsumed(job_dir, id, outcome);
}

// ---- The background loops ----

void Dispatcher::RunCoordinatorOnce() {
  RecordJobEnds();
  Calls deferred;
  std::vector<std::pair<proto::TriggerCheckpointRequest, std::set<std::string>>> triggers;
  std::vector<std::pair<std::string, CheckpointCoordinator::ToWrite>> completions;
  std::vector<std::string> restarts;
  // (job, attempt, savepoint id, TaskManagers): a stop's completion told again, in case a
  // notification was lost (tasks that have ended ignore it).
  std::vector<std::tuple<std::string, int, int64_t, std::set<std::string>>> stop_notifies;
  Deployments adapted;
  std::vector<std::pair<std::string, std::set<std::string>>> rescales;
  // The autoscalers read the TaskManagers' metrics: fetched outside the lock (at most every
  // metrics.fetcher.update-interval).
  if (autoscaling_ && options_.metrics) options_.metrics->UpdateStore();
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    auto now = Clock::now();
    StartRecoveredLocked(now, adapted);
    AdaptLocked(now, adapted, rescales);
    AutoscaleLocked(now, rescales);
    for (auto& [id, job] : jobs_) {
      CheckpointCoordinator& cc = *job.checkpoints;
      if (job.state == proto::JOB_RUNNING && cc.stopped() &&
          now - job.stop_notified >= std::chrono::seconds(1)) {
        job.stop_notified = now;
        std::set<std::string> tms;
        for (const auto& [key, t] : job.tasks) {
          if (!IsTerminalTaskState(t.state)) tms.insert(t.tm_id);
        }
        stop_notifies.emplace_back(id, job.attempt, cc.stopped_id(), std::move(tms));
      }
      if (job.state == proto::JOB_RESTARTING && now >= job.restart_at && !cc.writing()) {
        bool all_terminal = true;
        for (const auto& [key, t] : job.tasks) all_terminal &= IsTerminalTaskState(t.state);
        if (all_terminal) restarts.push_back(id);
      }
      if (auto ready = cc.TakeAcknowledged(job.graph)) {
        completions.emplace_back(id, std::move(*ready));
      } else if (auto expired = cc.ExpireOverdue(now)) {
        HandleAbortedLocked(job, *expired);
      }
      if (job.state != proto::JOB_RUNNING) continue;
      std::vector<CheckpointCoordinator::TaskView> views;
      for (const auto& [key, t] : job.tasks) {
        views.push_back({key, job.graph.vertices(key.first).is_source(), t.state, t.tm_id});
      }
      if (auto trigger = cc.MaybeTrigger(views, now)) {
        proto::TriggerCheckpointRequest req;
        req.set_job_id(id);
        req.set_attempt(job.attempt);
        req.set_checkpoint_id(trigger->id);
        req.set_timestamp_ms(trigger->timestamp_ms);
        req.set_type(trigger->type);
        triggers.emplace_back(std::move(req), std::move(trigger->task_managers));
      }
    }
    deferred.swap(deferred_);
  }
  Run(deferred);
  for (const auto& [job_id, tms] : rescales) {
    for (const auto& tm : tms) SendCancel(tm, job_id);
  }
  for (const auto& d : adapted) Deploy(d);
  for (auto& [req, tms] : triggers) {
    for (const auto& tm : tms) {
      auto gateway = GatewayOf(tm);
      absl::Status st = gateway ? gateway->TriggerCheckpoint(req)
                                : absl::NotFoundError(absl::StrCat("TaskManager ", tm, " is gone"));
      if (st.ok()) continue;
      absl::MutexLock lock(&mu_);
      Job* job = FindJobLocked(req.job_id());
      if (job && req.type() == proto::CHECKPOINT_TYPE_DRAIN) {
        job->checkpoints->FailSavepointRequest(
            absl::StrCat("cannot send the drain to TaskManager ", tm, ": ", st.message()));
      } else if (job && job->checkpoints->IsPending(req.checkpoint_id())) {
        AbortPendingLocked(
            *job, absl::StrCat("cannot trigger it at TaskManager ", tm, ": ", st.message()),
            /*count_failure=*/true);
      }
    }
  }
  for (auto& [job_id, checkpoint] : completions) CompleteCheckpoint(job_id, checkpoint);
  for (const auto& [job_id, attempt, id, tms] : stop_notifies) {
    if (options_.ha && !ForgetPersistedJob(job_id, proto::JOB_FINISHED)) continue;
    for (const auto& tm : tms) SendNotify(tm, job_id, attempt, id, /*aborted=*/false);
  }
  for (const auto& job_id : restarts) Restart(job_id);
}

void Dispatcher::RunMonitorOnce() {
  Calls cancels;
  std::vector<std::pair<std::string, std::string>> releases;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    auto now = Clock::now();
    for (const auto& id : resources_.Expired(now, options_.heartbeat_timeout)) {
      const auto* tm = resources_.Find(id);
      LoseTaskManagerLocked(
          id,
          absl::StrCat("TaskManager ", id, " at ", tm->address, " was lost: no heartbeat for ",
                       std::chrono::duration_cast<Millis>(now - tm->last_heartbeat).count(),
                       " ms (heartbeat.timeout is ", options_.heartbeat_timeout.count(), " ms)"),
          cancels);
    }
    // Tasks that do not confirm cancellation in time are taken as gone.
    for (auto& [job_id, job] : jobs_) {
      if ((job.state == proto::JOB_FAILING || job.state == proto::JOB_CANCELLING ||
           job.state == proto::JOB_RESTARTING) &&
          now - job.stop_requested > options_.cancel_timeout) {
        for (auto& [key, t] : job.tasks) {
          if (!IsTerminalTaskState(t.state)) {
            EndTaskLocked(t, proto::TASK_CANCELED);
            int64_t ms = options_.cancel_timeout.count();
            t.failure = absl::StrCat(
                "did not confirm cancellation within ",
                ms % 1000 == 0 ? absl::StrCat(ms / 1000, " s") : absl::StrCat(ms, " ms"));
          }
        }
        MaybeCompleteLocked(job);
      }
    }
    releases.swap(releases_);
    ReleaseIdleTaskManagersLocked(now);
  }
  Run(cancels);
  for (const auto& [tm, job] : releases) SendRelease(tm, job);
}

}  // namespace sluice
