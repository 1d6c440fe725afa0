// Dispatcher: the JobManager's core. It implements JobManagerGateway: it takes submissions,
// keeps every job's state (Flink's names: CREATED, RUNNING, FAILING, FAILED, CANCELLING,
// CANCELED, FINISHED, RESTARTING) and its tasks' states, and drives the units that do the work:
//   ResourceManager        TaskManagers, heartbeats and slots
//   Scheduler              deployment descriptors, slot sharing
//   RestartStrategy        failover: whether and when a failed job restarts
//   AdaptiveScheduler      the parallelism a job runs at: rescales, the adaptive scheduler and
//                          reactive mode (dispatcher_rescale.cc)
//   CheckpointCoordinator  one per job: trigger, acknowledge, complete, retain, abort
//   BlobStore              job libraries
// and talks to TaskManagers only through TaskManagerGateway.
//
// Threads and locking: one lock, `mu_`, guards all of the above (as Flink's JobMaster runs its
// components on one main thread); the units are not thread-safe and are only called under it.
// Calls to TaskManagers and file work never happen under it: a method collects them and makes
// them after unlocking; the work an aborted checkpoint leaves (file removal, notifications, the
// cancellations of a failover it causes) goes to the coordinator thread (`deferred_`), so that
// a TaskManager's acknowledgement or refusal is answered without waiting for calls back to it. Two
// PeriodicThreads: the monitor (declares silent TaskManagers lost, ends stuck cancellations,
// releases finished jobs' resources) and the coordinator (checkpoints, deferred work,
// restarts). Tests may run without them and call RunMonitorOnce / RunCoordinatorOnce.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/config.h"
#include "common/periodic_thread.h"
#include "jobmanager/adaptive_scheduler.h"
#include "jobmanager/autoscaler.h"
#include "jobmanager/blob_store.h"
#include "jobmanager/checkpoint_coordinator.h"
#include "jobmanager/high_availability.h"
#include "jobmanager/job_manager_gateway.h"
#include "jobmanager/job_manager_metrics.h"
#include "jobmanager/resource_manager.h"
#include "jobmanager/restart_strategy.h"
#include "jobmanager/scheduler.h"
#include "jobmanager/taskmanager_provider.h"

namespace sluice {

class Dispatcher final : public JobManagerGateway {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    std::string jm_id;                                   // this JobManager's instance id
    std::chrono::milliseconds heartbeat_interval{1000};  // Default: heartbeat.interval
    std::chrono::milliseconds heartbeat_timeout{5000};   // Default: heartbeat.timeout
    // Tasks that do not confirm cancellation within this are taken as gone. Default: 30 s.
    std::chrono::milliseconds cancel_timeout{30000};
    std::chrono::milliseconds coordinator_period{20};  // Default: 20 ms
    bool start_threads = true;                         // false: the caller runs the loops (tests)
    // The JobManager's metrics: the cluster's and each job's groups go into its registry, and
    // the tasks' final figures into its store. Null: no metrics (must outlive the Dispatcher).
    // Those groups' gauges read the Dispatcher itself (under its lock), so whoever reads them
    // (reporters, the REST server) must stop before the Dispatcher goes, as JobManager::Shutdown
    // does.
    JobManagerMetrics* metrics = nullptr;
    // jobmanager.scheduler, scheduler-mode and jobmanager.adaptive-scheduler.*. Default: the
    // default scheduler.
    AdaptiveSchedulerSettings scheduler;
    // High availability: submitted jobs and their checkpoints are kept there, and RecoverJobs
    // runs them again. Null: kept in memory only (must outlive the Dispatcher).
    HighAvailabilityServices* ha = nullptr;
  };

  // `conf` is the cluster's configuration (jobs add their -D overrides to a copy).
  Dispatcher(Configuration conf, Options options, std::unique_ptr<BlobStore> blobs,
             TaskManagerGatewayFactory gateways);
  // Stops the threads.
  ~Dispatcher() override;

  // Stops the background threads; submissions after this get Unavailable, and no TaskManager
  // counts as registered. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& jm_id() const { return options_.jm_id; }

  // ---- JobManagerGateway ----
  absl::StatusOr<std::string> RegisterTaskManager(
      const proto::RegisterTaskManagerRequest& req) override ABSL_LOCKS_EXCLUDED(mu_);
  bool HeartbeatFromTaskManager(const std::string& tm_id) override ABSL_LOCKS_EXCLUDED(mu_);
  bool IsTaskManagerRegistered(const std::string& tm_id) override ABSL_LOCKS_EXCLUDED(mu_);
  void DisconnectTaskManager(const std::string& tm_id) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status UpdateTaskState(const proto::TaskStateUpdate& update) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status AcknowledgeCheckpoint(const proto::AcknowledgeCheckpointRequest& ack) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status DeclineCheckpoint(const proto::DeclineCheckpointRequest& decline) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::string> UploadLibrary(std::string_view bytes) override;
  absl::StatusOr<std::string> LibraryPath(const std::string& sha256) override;
  absl::StatusOr<std::string> SubmitJob(const proto::SubmitJobRequest& req) override
      ABSL_LOCKS_EXCLUDED(mu_);
  // High availability, on becoming leader: every persisted job that has not ended is taken up
  // again under its id, from its newest completed checkpoint, and runs once its task slots are
  // free (TaskManagers register with a new leader after it is published). A job that cannot be
  // recovered is logged and left out; an error only when the jobs cannot be listed.
  absl::Status RecoverJobs() ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<proto::JobStatus> ListJobs(bool include_terminated) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<proto::JobStatus> GetJob(const std::string& job_id) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<JobCheckpointStats> GetCheckpointStats(const std::string& job_id) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status CancelJob(const std::string& job_id) override ABSL_LOCKS_EXCLUDED(mu_);
  // Savepoints (dispatcher_savepoints.cc).
  absl::StatusOr<std::string> TriggerSavepoint(const proto::TriggerSavepointRequest& req) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<proto::SavepointStatus> GetSavepoint(const std::string& job_id,
                                                      const std::string& request_id) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status DisposeSavepoint(const std::string& path) override;
  proto::ClusterOverview GetOverview() override ABSL_LOCKS_EXCLUDED(mu_);

  // ---- Rescaling (dispatcher_rescale.cc) ----
  // Rescales a RUNNING job to `parallelism` (vertex id -> new parallelism; vertices not named
  // keep theirs): its tasks are cancelled and the next attempt is deployed at the new
  // parallelism from the newest completed checkpoint, as a failover does, but it is no failure
  // (the restart strategy is not asked, `restarts` does not grow). `reason` goes into the log.
  // Returns the rescale's trigger id (see GetRescaleStatus); a rescale to the parallelism the job
  // has completes at once. Errors: NotFound (job), InvalidArgument (a vertex that does not exist,
  // a parallelism below 1 or above the vertex's max, a forward edge left between unequal
  // parallelisms), FailedPrecondition (the job is not RUNNING, has no checkpointing, or has tasks
  // not RUNNING), ResourceExhausted (too few slots: needed and free named). This is the call an
  // autoscaler makes.
  absl::StatusOr<std::string> RescaleJob(const std::string& job_id,
                                         const std::map<int, int>& parallelism,
                                         const std::string& reason) override
      ABSL_LOCKS_EXCLUDED(mu_);
  // The whole job at `parallelism` (AdaptiveScheduler::WholeJob), then as RescaleJob.
  absl::StatusOr<std::string> RescaleWholeJob(const std::string& job_id, int parallelism,
                                              const std::string& reason) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<proto::RescaleStatus> GetRescaleStatus(const std::string& job_id,
                                                        const std::string& trigger_id) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<ResourceRequirements> GetResourceRequirements(const std::string& job_id) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status SetResourceRequirements(const std::string& job_id,
                                       const ResourceRequirements& requirements) override
      ABSL_LOCKS_EXCLUDED(mu_);

  // The registered TaskManagers with their gateways (for fetching their metrics).
  std::vector<std::pair<std::string, std::shared_ptr<TaskManagerGateway>>> TaskManagerGateways()
      ABSL_LOCKS_EXCLUDED(mu_);
  // The ids of the jobs retained (running and recently ended).
  std::set<std::string> RetainedJobIds() ABSL_LOCKS_EXCLUDED(mu_);

  // One round of the monitor: silent TaskManagers, stuck cancellations, releases.
  void RunMonitorOnce() ABSL_LOCKS_EXCLUDED(mu_);
  // One round of the coordinator: deferred work, checkpoints, restarts.
  void RunCoordinatorOnce() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct TaskEntry {
    proto::TaskState state = proto::TASK_DEPLOYING;
    std::string tm_id;
    std::string failure;
    int attempt = 0;
    int64_t start_ms = 0;  // deployed
    int64_t end_ms = 0;    // reached a final state
  };
  // Who failed, for the job's exception history.
  struct FailureSource {
    std::string task_name;
    std::string tm_id;
  };
  struct Job {
    std::string id;
    proto::JobGraph graph;
    std::string library_sha256;
    std::vector<std::string> args;
    std::map<std::string, std::string> config;  // the job's -D overrides
    Configuration conf;                         // the cluster's, with the overrides
    proto::JobState state = proto::JOB_CREATED;
    std::string failure;
    int64_t start_time_ms = 0;
    int64_t end_time_ms = 0;
    std::vector<std::string> slots;  // slot index -> TaskManager id
    bool slots_released = false;
    std::map<TaskKey, TaskEntry> tasks;
    Clock::time_point stop_requested;
    // When the completion of its stop-with-savepoint was last sent again.
    Clock::time_point stop_notified;
    // Failover: every restart deploys a new attempt of all tasks.
    int attempt = 0;
    int restarts = 0;
    std::unique_ptr<RestartStrategy> restart_strategy;
    Clock::time_point restart_at;
    int64_t auto_watermark_interval_ms = 0;
    std::unique_ptr<CheckpointCoordinator> checkpoints;
    // Metrics: when the job last became RUNNING, and its group (while it has not ended).
    int64_t running_since_ms = 0;
    std::unique_ptr<metrics::MetricGroup> metrics;
    // When the job entered each state (by state), and its failures, newest first.
    std::map<int, int64_t> state_timestamps;
    std::deque<proto::JobException> exceptions;
    // ---- Parallelism (dispatcher_rescale.cc) ----
    // Per vertex, the parallelism the job may run at (Flink's resource requirements).
    ResourceRequirements requirements;
    // A requested rescale: the parallelism the next deployment takes, the rescale's trigger id
    // and reason, until every task of the new parallelism runs.
    std::optional<VertexParallelism> rescale_to;
    std::string rescale_trigger;
    Clock::time_point rescale_requested;
    int rescales = 0;
    // The last rescales (their status), oldest first.
    std::deque<proto::RescaleStatus> rescale_history;
    // Slots taken for a rescale to a higher parallelism until it deploys.
    std::vector<std::string> reserved_slots;
    // An attempt was deployed: the next one is attempt + 1.
    bool deployed = false;
    // Recovered by this leader and not deployed yet: it waits in CREATED for its slots.
    bool recovering = false;
    // The adaptive scheduler: the job is CREATED and waits for slots since `waiting_since`; with
    // enough for its lower bounds since `sufficient_since`; a running job could scale up since
    // `scale_up_since`. `waiting_for` says what it waits for (the REST view shows it).
    Clock::time_point waiting_since;
    std::optional<Clock::time_point> sufficient_since;
    std::optional<Clock::time_point> scale_up_since;
    std::string waiting_for;
    bool scale_up_refused_logged = false;
    // ---- The autoscaler (dispatcher_autoscaler.cc), when job.autoscaler.enabled ----
    std::unique_ptr<JobAutoscaler> autoscaler;
    std::deque<proto::AutoscalerDecision> autoscaler_decisions;  // newest first
    // A decision applied only as far as the slots allowed: its whole target, started as soon as
    // the slots are there (TaskManagers asked for register), until the registration timeout.
    std::optional<VertexParallelism> autoscaler_pending;
    Clock::time_point autoscaler_pending_since;
    std::string autoscaler_pending_why;
  };
  using Calls = std::vector<std::function<void()>>;
  using Deployments = std::vector<Scheduler::Deployment>;
  // A recovered job's attempts start at recoveries * this, above any of its last leader's.
  static constexpr int kAttemptsPerTerm = 100000;

  // What a submission or a recovery sets up before it takes the lock.
  struct NewJob {
    Configuration conf;  // the cluster's with the job's overrides
    std::unique_ptr<CheckpointCoordinator> checkpoints;
  };
  // Reads the job's configuration and creates its checkpoint coordinator with its stores (from
  // high availability when there is one: `recovering` reads back the job's checkpoints).
  // InvalidArgument for a bad override or restore path; a store's error as it is.
  absl::StatusOr<NewJob> PrepareJob(const std::string& job_id, const proto::SubmitJobRequest& req,
                                    bool recovering) ABSL_LOCKS_EXCLUDED(mu_);
  // Fills a new job (CREATED) from its submission.
  void InitJobLocked(Job& job, const std::string& job_id, const proto::SubmitJobRequest& req,
                     NewJob prepared) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Logs a job just submitted and registers its metrics.
  void LogSubmittedLocked(Job& job, size_t deployments) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // ---- High availability (dispatcher_ha.cc) ----
  // Persists a submission before it runs. Unavailable (naming the cause) when it cannot be, or
  // the JobManager is stopping.
  absl::Status PersistSubmittedJob(const std::string& job_id, const proto::SubmitJobRequest& req)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Records that the job ended (or was refused), so no leader recovers it. False (logged) when
  // that could not be written.
  bool ForgetPersistedJob(const std::string& job_id, proto::JobState state)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Records the ends queued by MaybeCompleteLocked (from the coordinator, and once more at
  // Stop); those that fail stay queued for the next round.
  void RecordJobEnds() ABSL_LOCKS_EXCLUDED(mu_);
  // The default scheduler: recovered jobs start once their slots are free; one that waited past
  // the registration timeout fails.
  void StartRecoveredLocked(Clock::time_point now, Deployments& deployments)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  static void Run(Calls& calls);
  // Calls to a TaskManager, looked up when made; one that is gone is skipped.
  std::shared_ptr<TaskManagerGateway> GatewayOf(const std::string& tm_id) ABSL_LOCKS_EXCLUDED(mu_);
  void SendCancel(const std::string& tm_id, const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  void SendRelease(const std::string& tm_id, const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  void SendNotify(const std::string& tm_id, const std::string& job_id, int attempt, int64_t id,
                  bool aborted) ABSL_LOCKS_EXCLUDED(mu_);
  void Deploy(const Scheduler::Deployment& d) ABSL_LOCKS_EXCLUDED(mu_);
  void Restart(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  void CompleteCheckpoint(const std::string& job_id, CheckpointCoordinator::ToWrite& checkpoint)
      ABSL_LOCKS_EXCLUDED(mu_);

  Deployments DeployAttemptLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // ---- Parallelism (dispatcher_rescale.cc) ----
  // Sets up a job's requirements at submission and either deploys its first attempt or, with
  // the adaptive scheduler and too few slots, leaves it waiting in CREATED. ResourceExhausted
  // (nothing changed) when the default scheduler finds too few slots.
  absl::StatusOr<Deployments> ScheduleNewJobLocked(Job& job, Clock::time_point now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deploys the next attempt of a RESTARTING job whose slots were released: at the parallelism
  // of a requested rescale (adaptive: when it fits), else (adaptive) at what the free slots
  // allow within the job's bounds, else at the job's own;
  // with too few slots the adaptive scheduler lets it wait, the default one counts a failure.
  Deployments RedeployLocked(Job& job, Clock::time_point now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deploys attempt n (the first, or n+1) of the job at `p` on freshly allocated slots; false
  // (nothing changed) when the slots are not free.
  bool DeployAtLocked(Job& job, const VertexParallelism& p, Deployments& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The adaptive scheduler, for a job waiting in CREATED: deploys it when the free slots allow
  // its upper bounds, or its lower bounds for resource-stabilization-timeout (or the wait
  // timed out); fails it when resource-wait-timeout passes without enough for its lower bounds.
  // True when it deployed.
  bool TryStartWaitingLocked(Job& job, Clock::time_point now, Deployments& out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The adaptive scheduler: the job (CREATED) waits for slots; `why` goes into the log.
  void WaitForResourcesLocked(Job& job, const std::string& why, Clock::time_point now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The checks of a rescale of `job` to `target` and its start: state RESTARTING, tasks to
  // cancel into `cancel_on`. Returns the trigger id.
  absl::StatusOr<std::string> StartRescaleLocked(Job& job, const VertexParallelism& target,
                                                 const std::string& reason,
                                                 std::set<std::string>& cancel_on)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A rescale asked for (sluice rescale, the autoscaler) from `from` to `to`: the new
  // parallelism becomes the changed vertices' upper bound, so the adaptive scheduler does not
  // scale them back and a restart keeps it.
  void BoundToRescaleLocked(Job& job, const VertexParallelism& from, const VertexParallelism& to)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One round of the adaptive scheduler (from the coordinator): waiting jobs start or fail,
  // running jobs scale up.
  void AdaptLocked(Clock::time_point now, Deployments& deployments,
                   std::vector<std::pair<std::string, std::set<std::string>>>& cancels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ---- The autoscaler (dispatcher_autoscaler.cc) ----
  // Creates the job's autoscaler when its configuration enables it (logging why it cannot act
  // when the job has no checkpointing).
  void SetUpAutoscalerLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One round of the autoscalers (from the coordinator, at most every
  // metrics.fetcher.update-interval): each running job's vertices are sampled from the metric
  // store and evaluated; a decision starts a rescale, or asks the TaskManager provider for the
  // slots it lacks. Tasks to cancel go into `cancels`.
  void AutoscaleLocked(Clock::time_point now,
                       std::vector<std::pair<std::string, std::set<std::string>>>& cancels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps `decision` in the job's history (unless it repeats the newest one) and logs it.
  void RecordDecisionLocked(Job& job, proto::AutoscalerDecision decision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks the provider for TaskManagers enough for `slots` more task slots; what it did, for the
  // decision's outcome.
  std::string RequestTaskManagersLocked(int slots, const std::string& why, Clock::time_point now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The monitor: TaskManagers without a task past resourcemanager.taskmanager-timeout are given
  // back through the provider's release command.
  void ReleaseIdleTaskManagersLocked(Clock::time_point now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillAutoscalerStatusLocked(const Job& job, proto::JobStatus* s) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // A task of the job reached RUNNING: a rescale whose tasks all run is complete.
  void OnTaskRunningLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The job ended: a rescale in progress failed.
  void EndRescaleLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  proto::RescaleStatus* FindRescaleLocked(Job& job, const std::string& trigger_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailJobLocked(Job& job, const std::string& cause) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeCompleteLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReleaseSlotsLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Restarts the job as its strategy says, or fails it. Returns the TaskManagers whose tasks of
  // the job must be cancelled.
  std::set<std::string> HandleFailureLocked(Job& job, const std::string& cause,
                                            const FailureSource& source = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the job to `state`, noting when.
  static void SetStateLocked(Job& job, proto::JobState state);
  // Moves a task to a final state, noting when.
  static void EndTaskLocked(TaskEntry& task, proto::TaskState state);
  // Forgets a TaskManager and fails the tasks it ran; `cancels` gets the calls to make.
  void LoseTaskManagerLocked(const std::string& id, const std::string& cause, Calls& cancels)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends the job's pending checkpoint; its file removal, notifications and any failover are
  // left to the coordinator thread.
  void AbortPendingLocked(Job& job, const std::string& reason, bool count_failure)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The files, notifications and any failover an ended checkpoint leaves.
  void HandleAbortedLocked(Job& job, const CheckpointCoordinator::Aborted& aborted)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeCoordinatorLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeMonitorLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DeferLocked(std::function<void()> call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillStatusLocked(const Job& job, proto::JobStatus* s, bool with_tasks) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The cluster's gauges in the JobManager's scope (dispatcher_metrics.cc).
  void RegisterClusterMetrics();
  // The job's group in the JobManager's scope (jobmanager_job): Flink's job metrics.
  void RegisterJobMetricsLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads `read` of job `job_id` under the lock (NaN once the job is gone).
  double ReadJob(const std::string& job_id, const std::function<double(const Job&)>& read)
      ABSL_LOCKS_EXCLUDED(mu_);
  static std::set<std::string> TaskManagersOf(const Job& job);
  Job* FindJobLocked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Configuration conf_;
  const Options options_;
  const std::unique_ptr<BlobStore> blobs_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  ResourceManager resources_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> terminal_order_ ABSL_GUARDED_BY(mu_);  // ids of ended jobs, oldest first
  std::vector<std::pair<std::string, std::string>> releases_
      ABSL_GUARDED_BY(mu_);  // (TaskManager, job)
  Calls deferred_ ABSL_GUARDED_BY(mu_);
  // High availability: jobs that ended and whose end is not recorded yet (RecordJobEnds).
  std::vector<std::pair<std::string, proto::JobState>> unrecorded_ends_ ABSL_GUARDED_BY(mu_);
  // Asks for TaskManagers and gives idle ones back (resourcemanager.taskmanager.*).
  TaskManagerProvider provider_ ABSL_GUARDED_BY(mu_);
  // When the autoscalers last sampled, and whether a running job has one (the coordinator then
  // brings the metric store up to date before its round).
  Clock::time_point last_autoscale_ ABSL_GUARDED_BY(mu_);
  // metrics.fetcher.update-interval and resourcemanager.taskmanager-registration.timeout, read
  // once: the coordinator's round (every 20 ms) consults them.
  const std::chrono::milliseconds autoscale_interval_;
  const std::chrono::milliseconds registration_timeout_;
  std::atomic<bool> autoscaling_{false};
  // The cluster's figures in the JobManager's scope (TaskManagers, slots, running jobs).
  std::unique_ptr<metrics::MetricGroup> cluster_metrics_;

  // Last: the threads start once everything they use exists, and stop first.
  std::unique_ptr<PeriodicThread> monitor_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<PeriodicThread> coordinator_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sluice
