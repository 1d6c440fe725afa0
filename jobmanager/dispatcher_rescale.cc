// The Dispatcher's parallelism: rescales of running jobs, and Flink's adaptive scheduler and
// reactive mode (jobmanager/adaptive_scheduler.h holds the arithmetic).
//
// A rescale is a failover that is not a failure: the job becomes RESTARTING, its tasks are
// cancelled, and once all have ended the coordinator thread's Restart() deploys the next attempt
// at the new parallelism from the newest completed checkpoint (tasks redistribute key groups and
// operator state on restore). The restart strategy is not asked and `restarts` does not grow;
// `rescales` does. Slots a rescale up needs are taken when it is requested, so no other job can
// take them meanwhile.
//
// The adaptive scheduler (jobmanager.scheduler: adaptive, or scheduler-mode: reactive) keeps per
// job the bounds of each vertex's parallelism. A job that cannot have the slots its lower bounds
// need waits in CREATED; one that can have them but not its upper bounds' waits
// resource-stabilization-timeout for more, then starts with what is free. A running job scales
// up when more slots stay free for the stabilization timeout, and a restart after a failure
// (a lost TaskManager) deploys at what the remaining slots allow.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/job_graph.h"
#include "common/job_states.h"
#include "common/status_macros.h"
#include "jobmanager/dispatcher.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

using Millis = std::chrono::milliseconds;

// Rescales kept per job for GetRescaleStatus.
constexpr size_t kRescaleHistory = 16;

std::string Slots(int n) { return absl::StrCat(n, n == 1 ? " task slot" : " task slots"); }

int64_t ToMillis(Dispatcher::Clock::duration d) {
  return std::chrono::duration_cast<Millis>(d).count();
}

void ToProto(const VertexParallelism& p, google::protobuf::Map<int32_t, int32_t>* out) {
  out->clear();
  for (size_t v = 0; v < p.size(); ++v) (*out)[static_cast<int32_t>(v)] = p[v];
}

}  // namespace

// ---- Deployments at a parallelism ----

absl::StatusOr<Dispatcher::Deployments> Dispatcher::ScheduleNewJobLocked(Job& job,
                                                                         Clock::time_point now) {
  const AdaptiveSchedulerSettings& sched = options_.scheduler;
  job.requirements = AdaptiveScheduler::InitialRequirements(job.graph, sched.reactive());
  Deployments out;
  if (!sched.adaptive()) {
    const int needed = SlotsNeeded(job.graph);
    if (!DeployAtLocked(job, AdaptiveScheduler::Current(job.graph), out)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "job '", job.graph.name(), "' needs ", needed, " task slots but only ",
          resources_.FreeSlots(), " of ", resources_.TotalSlots(), " are free (", resources_.size(),
          " TaskManagers registered); lower the parallelism or add TaskManagers"));
    }
    return out;
  }
  job.waiting_since = now;
  job.slots_released = true;  // it holds none yet
  if (!TryStartWaitingLocked(job, now, out) && job.state == proto::JOB_CREATED) {
    spdlog::warn("job {} is waiting for task slots (CREATED, {} scheduler): needs {}", job.id,
                 sched.name(), job.waiting_for);
  }
  return out;
}

bool Dispatcher::DeployAtLocked(Job& job, const VertexParallelism& p, Deployments& out) {
  auto slots = resources_.AllocateSlots(AdaptiveScheduler::SlotsNeeded(p));
  if (!slots.ok()) return false;
  AdaptiveScheduler::Apply(p, &job.graph);
  job.slots = std::move(*slots);
  job.slots_released = false;
  if (job.deployed) {
    job.attempt++;
    job.checkpoints->OnRestart(Clock::now());
  }
  job.deployed = true;
  job.recovering = false;
  out = DeployAttemptLocked(job);
  SetStateLocked(job, proto::JOB_RUNNING);
  job.running_since_ms = NowMillis();
  job.waiting_for.clear();
  job.sufficient_since.reset();
  job.scale_up_since.reset();
  return true;
}

Dispatcher::Deployments Dispatcher::RedeployLocked(Job& job, Clock::time_point now) {
  const AdaptiveSchedulerSettings& sched = options_.scheduler;
  const bool rescale = job.rescale_to.has_value();
  const VertexParallelism before = AdaptiveScheduler::Current(job.graph);
  VertexParallelism target = rescale ? *job.rescale_to : before;
  const int free = resources_.FreeSlots();
  Deployments out;
  // The adaptive scheduler restarts at what the free slots allow (up or down); a rescale takes
  // its own target when that fits.
  if (sched.adaptive() && (!rescale || AdaptiveScheduler::SlotsNeeded(target) > free)) {
    auto fit = AdaptiveScheduler::Fit(job.graph, job.requirements, free);
    if (!fit) {
      if (rescale) {
        if (auto* op = FindRescaleLocked(job, job.rescale_trigger)) {
          op->set_state("FAILED");
          op->set_failure(absl::StrCat("the ", Slots(AdaptiveScheduler::SlotsNeeded(target)),
                                       " it needs were no longer free (", free, " are)"));
        }
        job.rescale_to.reset();
        job.rescale_trigger.clear();
      } else {
        job.restarts++;
      }
      WaitForResourcesLocked(job,
                             rescale ? "its rescale found too few free task slots"
                                     : absl::StrCat("restarting after: ", job.failure),
                             now);
      return out;
    }
    target = *fit;
  }
  const bool deployed = rescale && DeployAtLocked(job, target, out);
  if (rescale && !deployed) {
    // The slots taken for the rescale were lost meanwhile (a TaskManager went): the rescale
    // failed, and the job restarts at the parallelism it had.
    if (auto* op = FindRescaleLocked(job, job.rescale_trigger)) {
      op->set_state("FAILED");
      op->set_failure(absl::StrCat("the ", Slots(AdaptiveScheduler::SlotsNeeded(target)),
                                   " it needs were no longer free (", free, " are)"));
    }
    spdlog::warn("job {}: rescale {} failed: {} task slots needed, {} free; restarting at {}",
                 job.id, job.rescale_trigger, AdaptiveScheduler::SlotsNeeded(target), free,
                 AdaptiveScheduler::Describe(job.graph, before));
    job.rescale_to.reset();
    job.rescale_trigger.clear();
    return RedeployLocked(job, now);
  }
  if (!deployed && !DeployAtLocked(job, target, out)) {
    // The default scheduler: too few slots to restart counts as another failure.
    std::string cause =
        absl::StrCat("cannot restart: the job needs ", AdaptiveScheduler::SlotsNeeded(target),
                     " task slots but ", free, " are free");
    auto delay = job.restart_strategy->OnFailure(now);
    if (!delay) {
      FailJobLocked(job, absl::StrCat(cause, " (", job.restart_strategy->Describe(), ")"));
      MaybeCompleteLocked(job);
      return out;
    }
    spdlog::warn("job {}: {}; trying again in {} ms", job.id, cause, delay->count());
    job.restart_at = now + *delay;
    return out;
  }
  const proto::CheckpointMetadata* latest = job.checkpoints->latest();
  const std::string from =
      latest ? absl::StrCat(" from checkpoint ", latest->checkpoint_id()) : " from the start";
  if (rescale) {
    job.rescales++;
    job.rescale_to.reset();
    if (auto* op = FindRescaleLocked(job, job.rescale_trigger)) {
      ToProto(target, op->mutable_to_parallelism());
    }
    spdlog::info("job {} rescaled (attempt {}){}: {}; deploying {} tasks in {}", job.id,
                 job.attempt, from, AdaptiveScheduler::DescribeChange(job.graph, before, target),
                 out.size(), Slots(static_cast<int>(job.slots.size())));
  } else {
    job.restarts++;
    spdlog::info("job {} restarted (attempt {}){}{}", job.id, job.attempt, from,
                 before == target
                     ? ""
                     : absl::StrCat(" at the parallelism the free slots allow: ",
                                    AdaptiveScheduler::DescribeChange(job.graph, before, target)));
  }
  return out;
}

// ---- The adaptive scheduler ----

void Dispatcher::WaitForResourcesLocked(Job& job, const std::string& why, Clock::time_point now) {
  SetStateLocked(job, proto::JOB_CREATED);
  job.tasks.clear();
  job.waiting_since = now;
  job.sufficient_since.reset();
  job.scale_up_since.reset();
  job.waiting_for =
      absl::StrCat(Slots(AdaptiveScheduler::SlotsForLowerBounds(job.graph, job.requirements)), " (",
                   resources_.FreeSlots(), " of ", resources_.TotalSlots(), " free)");
  spdlog::warn("job {} is waiting for task slots (CREATED): {}; needs {}", job.id, why,
               job.waiting_for);
  WakeCoordinatorLocked();
}

bool Dispatcher::TryStartWaitingLocked(Job& job, Clock::time_point now, Deployments& out) {
  const AdaptiveSchedulerSettings& sched = options_.scheduler;
  const int free = resources_.FreeSlots();
  const int lowest = AdaptiveScheduler::SlotsForLowerBounds(job.graph, job.requirements);
  const int wanted = AdaptiveScheduler::SlotsForUpperBounds(job.graph, job.requirements);
  const bool timed_out =
      sched.resource_wait_timeout && now - job.waiting_since >= *sched.resource_wait_timeout;
  auto fit = AdaptiveScheduler::Fit(job.graph, job.requirements, free);
  if (fit) {
    if (!job.sufficient_since) job.sufficient_since = now;
    const int slots = AdaptiveScheduler::SlotsNeeded(*fit);
    if (slots >= wanted || timed_out ||
        now - *job.sufficient_since >= sched.stabilization_timeout) {
      const bool waited = !job.waiting_for.empty();
      if (!DeployAtLocked(job, *fit, out)) return false;  // Fit took at most the free slots
      spdlog::info("job {} {}at parallelism {} ({} of the {} its bounds allow): {}", job.id,
                   waited ? absl::StrCat("got its task slots after ",
                                         ToMillis(now - job.waiting_since), " ms and runs ")
                          : "runs ",
                   slots, Slots(slots), wanted, AdaptiveScheduler::Describe(job.graph, *fit));
      return true;
    }
    job.waiting_for = absl::StrCat(
        Slots(wanted), " for its full parallelism; the ", free, " free allow parallelism ", slots,
        ", with which it starts after ", sched.stabilization_timeout.count(),
        " ms without more (jobmanager.adaptive-scheduler.resource-stabilization-timeout)");
    return false;
  }
  job.sufficient_since.reset();
  job.waiting_for = absl::StrCat(Slots(lowest), " (", free, " of ", resources_.TotalSlots(),
                                 " free, ", resources_.size(), " TaskManagers registered)");
  if (timed_out) {
    FailJobLocked(job, absl::StrCat("could not get the ", Slots(lowest),
                                    " its lowest parallelism needs within ",
                                    sched.resource_wait_timeout->count(),
                                    " ms (jobmanager.adaptive-scheduler.resource-wait-timeout): ",
                                    free, " of ", resources_.TotalSlots(), " are free"));
    MaybeCompleteLocked(job);
  }
  return false;
}

void Dispatcher::AdaptLocked(Clock::time_point now, Deployments& deployments,
                             std::vector<std::pair<std::string, std::set<std::string>>>& cancels) {
  const AdaptiveSchedulerSettings& sched = options_.scheduler;
  if (!sched.adaptive()) return;
  // Waiting jobs first, oldest first: they get the free slots before running jobs grow. By id:
  // a job that fails here may make the oldest ended ones be forgotten.
  std::vector<std::pair<int64_t, std::string>> order;
  for (const auto& [id, job] : jobs_) order.emplace_back(job.start_time_ms, id);
  std::sort(order.begin(), order.end());
  for (const auto& [start, id] : order) {
    Job* job = FindJobLocked(id);
    if (!job || job->state != proto::JOB_CREATED) continue;
    Deployments out;
    if (TryStartWaitingLocked(*job, now, out)) {
      deployments.insert(deployments.end(), out.begin(), out.end());
    }
  }
  for (const auto& [start, id] : order) {
    Job* job = FindJobLocked(id);
    if (!job) continue;
    Job& j = *job;
    if (j.state != proto::JOB_RUNNING || !j.rescale_trigger.empty()) continue;
    const int free = resources_.FreeSlots();
    bool running = free > 0 && !j.checkpoints->writing();
    for (const auto& [key, t] : j.tasks) running &= t.state == proto::TASK_RUNNING;
    const VertexParallelism current = AdaptiveScheduler::Current(j.graph);
    std::optional<VertexParallelism> fit;
    if (running) {
      fit =
          AdaptiveScheduler::Fit(j.graph, j.requirements, static_cast<int>(j.slots.size()) + free);
    }
    bool grows = fit.has_value();
    for (size_t v = 0; grows && v < current.size(); ++v) grows = (*fit)[v] >= current[v];
    if (!grows ||
        !AdaptiveScheduler::ShouldRescale(current, *fit, sched.min_parallelism_increase)) {
      j.scale_up_since.reset();
      continue;
    }
    if (!j.checkpoints->enabled()) {
      if (!j.scale_up_refused_logged) {
        spdlog::info(
            "job {} could run at parallelism {} on the free task slots but is not rescaled: it "
            "has no checkpointing, so its state would be lost",
            j.id, AdaptiveScheduler::SlotsNeeded(*fit));
      }
      j.scale_up_refused_logged = true;
      continue;
    }
    if (!j.scale_up_since) j.scale_up_since = now;
    if (now - *j.scale_up_since < sched.stabilization_timeout) continue;
    std::set<std::string> cancel_on;
    auto trigger = StartRescaleLocked(
        j, *fit, absl::StrCat("task slots became free: ", free, " (", sched.name(), " scheduler)"),
        cancel_on);
    if (!trigger.ok()) {
      spdlog::warn("job {}: cannot scale up: {}", j.id, std::string(trigger.status().message()));
      j.scale_up_since.reset();
      continue;
    }
    cancels.emplace_back(j.id, std::move(cancel_on));
  }
}

// ---- Rescales ----

absl::StatusOr<std::string> Dispatcher::StartRescaleLocked(Job& job,
                                                           const VertexParallelism& target,
                                                           const std::string& reason,
                                                           std::set<std::string>& cancel_on) {
  if (job.state != proto::JOB_RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job.id, " is ", std::string(JobStateName(job.state)),
                     job.state == proto::JOB_RESTARTING && !job.rescale_trigger.empty()
                         ? absl::StrCat(" (rescale ", job.rescale_trigger, " in progress)")
                         : "",
                     ": only a RUNNING job can be rescaled"));
  }
  if (!job.checkpoints->enabled()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job.id,
        " has no checkpointing (execution.checkpointing.interval is 0): a rescale restarts it "
        "from its latest checkpoint, so its state would be lost; submit it with checkpointing "
        "to rescale it"));
  }
  if (job.checkpoints->stopped() || job.checkpoints->savepoint_under_way()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job.id,
        job.checkpoints->stopped() ? " stopped with a savepoint and is finishing"
                                   : " is taking a savepoint; try again once it completes",
        ": it cannot be rescaled"));
  }
  for (const auto& [key, t] : job.tasks) {
    if (t.state == proto::TASK_RUNNING) continue;
    const auto& v = job.graph.vertices(key.first);
    std::string task = absl::StrCat(v.name(), " (", key.second + 1, "/", v.parallelism(), ")");
    return absl::FailedPreconditionError(
        t.state == proto::TASK_FINISHED
            ? absl::StrCat("job ", job.id, " is finishing (", task,
                           " has FINISHED): it cannot be rescaled")
            : absl::StrCat("job ", job.id, " has tasks not RUNNING yet (", task, " is ",
                           std::string(TaskStateName(t.state)), "); try again once they run"));
  }
  RETURN_IF_ERROR(AdaptiveScheduler::CheckParallelism(job.graph, target));
  const VertexParallelism current = AdaptiveScheduler::Current(job.graph);
  const int held = job.slots_released ? 0 : static_cast<int>(job.slots.size());
  const int free = resources_.FreeSlots();
  const int needed = AdaptiveScheduler::SlotsNeeded(target);
  if (needed > held + free) {
    return absl::ResourceExhaustedError(
        absl::StrCat("job ", job.id, " needs ", Slots(needed), " at the new parallelism but only ",
                     held + free, " are available to it (", held, " it holds and ", free,
                     " free, of ", resources_.TotalSlots(),
                     " in the cluster); add TaskManagers or choose a lower parallelism"));
  }
  proto::RescaleStatus op;
  op.set_trigger_id(NewJobId());
  ToProto(current, op.mutable_from_parallelism());
  ToProto(target, op.mutable_to_parallelism());
  op.set_reason(reason);
  op.set_requested_ms(NowMillis());
  if (target == current) {
    op.set_state("COMPLETED");
    op.set_completed_ms(op.requested_ms());
    spdlog::info("job {}: rescale to its current parallelism ({}) leaves it as it is ({})", job.id,
                 AdaptiveScheduler::Describe(job.graph, target), reason);
  } else {
    op.set_state("IN_PROGRESS");
    if (needed > held) job.reserved_slots = *resources_.AllocateSlots(needed - held);
    AbortPendingLocked(job, "the job is rescaling", /*count_failure=*/false);
    const Clock::time_point now = Clock::now();
    SetStateLocked(job, proto::JOB_RESTARTING);
    job.stop_requested = now;
    job.restart_at = now;
    job.rescale_to = target;
    job.rescale_trigger = op.trigger_id();
    job.rescale_requested = now;
    job.scale_up_since.reset();
    const proto::CheckpointMetadata* latest = job.checkpoints->latest();
    spdlog::info("job {} rescaling ({}): {}; restoring {}", job.id, reason,
                 AdaptiveScheduler::DescribeChange(job.graph, current, target),
                 latest ? absl::StrCat("checkpoint ", latest->checkpoint_id())
                        : "no checkpoint (none has completed yet): it starts over");
    cancel_on = TaskManagersOf(job);
    WakeCoordinatorLocked();
  }
  job.rescale_history.push_back(op);
  while (job.rescale_history.size() > kRescaleHistory) job.rescale_history.pop_front();
  return op.trigger_id();
}

void Dispatcher::BoundToRescaleLocked(Job& job, const VertexParallelism& from,
                                      const VertexParallelism& to) {
  for (size_t v = 0; v < to.size() && v < from.size(); ++v) {
    if (to[v] == from[v]) continue;
    job.requirements[v].upper = to[v];
    job.requirements[v].lower = std::min(job.requirements[v].lower, to[v]);
  }
}

proto::RescaleStatus* Dispatcher::FindRescaleLocked(Job& job, const std::string& trigger_id) {
  for (auto& op : job.rescale_history) {
    if (op.trigger_id() == trigger_id) return &op;
  }
  return nullptr;
}

void Dispatcher::OnTaskRunningLocked(Job& job) {
  if (job.rescale_trigger.empty() || job.rescale_to || job.state != proto::JOB_RUNNING) return;
  for (const auto& [key, t] : job.tasks) {
    if (t.state != proto::TASK_RUNNING) return;
  }
  const int64_t took = ToMillis(Clock::now() - job.rescale_requested);
  if (auto* op = FindRescaleLocked(job, job.rescale_trigger)) {
    op->set_state("COMPLETED");
    op->set_completed_ms(NowMillis());
    ToProto(AdaptiveScheduler::Current(job.graph), op->mutable_to_parallelism());
  }
  spdlog::info("job {} rescale {} complete: all {} tasks RUNNING at {}, {} ms after the request",
               job.id, job.rescale_trigger, job.tasks.size(),
               AdaptiveScheduler::Describe(job.graph, AdaptiveScheduler::Current(job.graph)), took);
  job.rescale_trigger.clear();
}

void Dispatcher::EndRescaleLocked(Job& job) {
  if (job.rescale_trigger.empty()) return;
  if (auto* op = FindRescaleLocked(job, job.rescale_trigger)) {
    op->set_state("FAILED");
    op->set_failure(absl::StrCat("the job became ", std::string(JobStateName(job.state)),
                                 " before the rescale completed",
                                 job.failure.empty() ? "" : absl::StrCat(": ", job.failure)));
  }
  job.rescale_to.reset();
  job.rescale_trigger.clear();
}

absl::StatusOr<std::string> Dispatcher::RescaleJob(const std::string& job_id,
                                                   const std::map<int, int>& parallelism,
                                                   const std::string& reason) {
  std::set<std::string> cancel_on;
  std::string trigger;
  {
    absl::MutexLock lock(&mu_);
    Job* job = FindJobLocked(job_id);
    if (!job) return absl::NotFoundError("no job " + job_id);
    if (parallelism.empty()) {
      return absl::InvalidArgumentError("a rescale needs a new parallelism for some vertex");
    }
    const int n = job->graph.vertices_size();
    const VertexParallelism current = AdaptiveScheduler::Current(job->graph);
    VertexParallelism target = current;
    for (const auto& [v, p] : parallelism) {
      if (v < 0 || v >= n) {
        return absl::InvalidArgumentError(absl::StrCat("job ", job_id, " has no vertex ", v,
                                                       " (its vertices are 0 to ", n - 1, ")"));
      }
      target[v] = p;
    }
    ASSIGN_OR_RETURN(trigger, StartRescaleLocked(*job, target,
                                                 reason.empty() ? "requested" : reason, cancel_on));
    BoundToRescaleLocked(*job, current, target);
  }
  for (const auto& tm : cancel_on) SendCancel(tm, job_id);
  return trigger;
}

absl::StatusOr<std::string> Dispatcher::RescaleWholeJob(const std::string& job_id, int parallelism,
                                                        const std::string& reason) {
  std::map<int, int> target;
  {
    absl::MutexLock lock(&mu_);
    Job* job = FindJobLocked(job_id);
    if (!job) return absl::NotFoundError("no job " + job_id);
    ASSIGN_OR_RETURN(VertexParallelism p, AdaptiveScheduler::WholeJob(job->graph, parallelism));
    for (size_t v = 0; v < p.size(); ++v) target[static_cast<int>(v)] = p[v];
  }
  return RescaleJob(job_id, target, reason);
}

absl::StatusOr<proto::RescaleStatus> Dispatcher::GetRescaleStatus(const std::string& job_id,
                                                                  const std::string& trigger_id) {
  absl::MutexLock lock(&mu_);
  Job* job = FindJobLocked(job_id);
  if (!job) return absl::NotFoundError("no job " + job_id);
  const proto::RescaleStatus* op = FindRescaleLocked(*job, trigger_id);
  if (!op) {
    return absl::NotFoundError(
        absl::StrCat("job ", job_id, " has no rescale with trigger id ", trigger_id));
  }
  return *op;
}

absl::StatusOr<ResourceRequirements> Dispatcher::GetResourceRequirements(
    const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Job* job = FindJobLocked(job_id);
  if (!job) return absl::NotFoundError("no job " + job_id);
  return job->requirements;
}

absl::Status Dispatcher::SetResourceRequirements(const std::string& job_id,
                                                 const ResourceRequirements& requirements) {
  std::set<std::string> cancel_on;
  {
    absl::MutexLock lock(&mu_);
    Job* job = FindJobLocked(job_id);
    if (!job) return absl::NotFoundError("no job " + job_id);
    RETURN_IF_ERROR(AdaptiveScheduler::CheckRequirements(job->graph, requirements));
    const AdaptiveSchedulerSettings& sched = options_.scheduler;
    if (sched.adaptive() && job->state == proto::JOB_CREATED) {
      job->requirements = requirements;
      job->sufficient_since.reset();
      spdlog::info("job {}: new resource requirements while it waits for task slots", job_id);
      WakeCoordinatorLocked();
      return absl::OkStatus();
    }
    if (job->state != proto::JOB_RUNNING) {
      return absl::FailedPreconditionError(absl::StrCat(
          "job ", job_id, " is ", std::string(JobStateName(job->state)),
          ": only a RUNNING job (or one waiting for task slots) takes new resource requirements"));
    }
    const int held = job->slots_released ? 0 : static_cast<int>(job->slots.size());
    const int available = sched.adaptive() ? held + resources_.FreeSlots() : (1 << 30);
    auto target = AdaptiveScheduler::Fit(job->graph, requirements, available);
    if (!target) {
      return absl::ResourceExhaustedError(
          absl::StrCat("job ", job_id, "'s lower bounds need ",
                       Slots(AdaptiveScheduler::SlotsForLowerBounds(job->graph, requirements)),
                       " but only ", available, " are available to it (", held, " it holds and ",
                       resources_.FreeSlots(), " free)"));
    }
    if (*target != AdaptiveScheduler::Current(job->graph)) {
      RETURN_IF_ERROR(
          StartRescaleLocked(*job, *target, "resource requirements changed", cancel_on).status());
    }
    job->requirements = requirements;
  }
  for (const auto& tm : cancel_on) SendCancel(tm, job_id);
  return absl::OkStatus();
}

}  // namespace sluice
