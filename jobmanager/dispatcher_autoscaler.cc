// The Dispatcher's autoscaler (job.autoscaler.*, jobmanager/autoscaler.h) and its use of the
// TaskManager provider (resourcemanager.taskmanager.*, jobmanager/taskmanager_provider.h).
//
// Every metrics.fetcher.update-interval the coordinator brings the metric store up to date
// (outside the lock) and, under it, hands each running job's autoscaler one sample per vertex:
// the busiest subtask's busy time, the subtasks' mean back-pressured time and their summed
// record rates. A decision rescales the vertices it names through StartRescaleLocked, the path
// `sluice rescale` takes; when the cluster lacks the slots, the provider's request command is run
// for the TaskManagers missing and the decision waits (the autoscaler decides again next round,
// and the rescale starts once the slots are there). TaskManagers without a task are released by
// the monitor after resourcemanager.taskmanager-timeout.
#include <algorithm>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/job_states.h"
#include "jobmanager/dispatcher.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

// Decisions kept per job for the REST view.
constexpr size_t kDecisionHistory = 16;

double Value(const MetricStore::Values& values, const char* name) {
  auto it = values.find(name);
  double x = 0;
  if (it == values.end() || !absl::SimpleAtod(it->second, &x) || !std::isfinite(x)) return 0;
  return x;
}

void ToProto(const VertexEvaluation& e, proto::AutoscalerVertex* out) {
  out->set_vertex_id(e.vertex);
  out->set_parallelism(e.parallelism);
  out->set_wanted(e.wanted);
  out->set_true_rate(e.true_rate);
  out->set_target_rate(e.target_rate);
  out->set_utilization(e.utilization);
  out->set_reason(e.reason);
}

// The outcome's kind ("rescaling", "waiting for task slots", ...): a decision that repeats the
// newest one's target and kind is not recorded again.
std::string OutcomeKind(const std::string& outcome) { return outcome.substr(0, outcome.find(':')); }

}  // namespace

void Dispatcher::SetUpAutoscalerLocked(Job& job) {
  AutoscalerSettings settings = AutoscalerSettings::FromConfig(job.conf);
  if (!settings.enabled) return;
  if (!job.checkpoints->enabled()) {
    spdlog::warn(
        "job {}: job.autoscaler.enabled is set but the job has no checkpointing "
        "(execution.checkpointing.interval is 0): a rescale restarts it from its latest "
        "checkpoint, so the autoscaler only reports what it would do",
        job.id);
    settings.scaling_enabled = false;
  }
  spdlog::info(
      "job {}: autoscaler on (target utilization {:.2f} +- {:.2f}, metrics window {} ms, "
      "stabilization {} ms{})",
      job.id, settings.target_utilization, settings.boundary, settings.metrics_window.count(),
      settings.stabilization.count(), settings.scaling_enabled ? "" : ", decisions not applied");
  job.autoscaler = std::make_unique<JobAutoscaler>(settings, Clock::now());
  autoscaling_ = true;
}

void Dispatcher::AutoscaleLocked(
    Clock::time_point now, std::vector<std::pair<std::string, std::set<std::string>>>& cancels) {
  bool any = false;
  for (const auto& [id, job] : jobs_) any |= job.autoscaler && !IsTerminalJobState(job.state);
  autoscaling_ = any;
  if (!any || !options_.metrics) return;
  if (now - last_autoscale_ < autoscale_interval_) return;
  last_autoscale_ = now;
  for (auto& [id, job] : jobs_) {
    if (!job.autoscaler || job.state != proto::JOB_RUNNING || !job.rescale_trigger.empty()) {
      continue;
    }
    bool running = true;
    for (const auto& [key, t] : job.tasks) running &= t.state == proto::TASK_RUNNING;
    if (!running) continue;
    const int held = job.slots_released ? 0 : static_cast<int>(job.slots.size());
    const int available = held + resources_.FreeSlots();
    const VertexParallelism current = AdaptiveScheduler::Current(job.graph);
    if (job.autoscaler_pending) {
      const VertexParallelism pending = *job.autoscaler_pending;
      if (now - job.autoscaler_pending_since > registration_timeout_) {
        job.autoscaler_pending.reset();
      } else if (AdaptiveScheduler::SlotsNeeded(pending) <= available) {
        // The slots asked for are there: the rest of the decision, before they are released
        // as idle (the autoscaler would wait for stabilization and a window first).
        proto::AutoscalerDecision d;
        d.set_timestamp_ms(NowMillis());
        for (size_t v = 0; v < pending.size(); ++v) {
          if (pending[v] == current[v]) continue;
          (*d.mutable_from_parallelism())[static_cast<int>(v)] = current[v];
          (*d.mutable_to_parallelism())[static_cast<int>(v)] = pending[v];
        }
        d.set_description(job.autoscaler_pending_why);
        job.autoscaler_pending.reset();
        std::set<std::string> cancel_on;
        auto trigger = StartRescaleLocked(
            job, pending,
            absl::StrCat("autoscaler, the task slots asked for are there: ", d.description()),
            cancel_on);
        if (trigger.ok()) {
          BoundToRescaleLocked(job, current, pending);
          d.set_outcome(absl::StrCat(
              "rescaling to the rest of the decision, the task slots being there: trigger id ",
              *trigger));
          d.set_trigger_id(*trigger);
          if (!cancel_on.empty()) cancels.emplace_back(job.id, std::move(cancel_on));
          RecordDecisionLocked(job, std::move(d));
          continue;
        }
      }
    }
    // One sample per vertex, from the subtasks of the running attempt that reported.
    std::map<int, VertexSample> sample;
    bool complete = true;
    for (const auto& v : job.graph.vertices()) {
      const auto subtasks = options_.metrics->store().Vertex(job.id, v.id());
      if (static_cast<int>(subtasks.size()) < v.parallelism()) complete = false;
      VertexSample s;
      for (const auto& [index, values] : subtasks) {
        if (index >= v.parallelism()) continue;
        s.busy_ms_per_s = std::max(s.busy_ms_per_s, Value(values, "busyTimeMsPerSecond"));
        s.backpressured_ms_per_s += Value(values, "backPressuredTimeMsPerSecond");
        s.records_in_per_s += Value(values, "numRecordsInPerSecond");
        s.records_out_per_s += Value(values, "numRecordsOutPerSecond");
      }
      s.backpressured_ms_per_s /= std::max(1, v.parallelism());
      sample[v.id()] = s;
    }
    if (!complete) continue;  // a new subtask has not reported yet
    JobAutoscaler& autoscaler = *job.autoscaler;
    autoscaler.AddSample(now, std::move(sample));
    std::optional<ScalingDecision> decision = autoscaler.Evaluate(job.graph, now);
    if (!decision || decision->parallelism.empty()) continue;

    proto::AutoscalerDecision d;
    d.set_timestamp_ms(NowMillis());
    VertexParallelism target = AdaptiveScheduler::Current(job.graph);
    for (const auto& [v, p] : decision->parallelism) {
      (*d.mutable_from_parallelism())[v] = target[v];
      (*d.mutable_to_parallelism())[v] = p;
      target[v] = p;
    }
    d.set_description(decision->Describe(job.graph));
    for (const VertexEvaluation& e : decision->vertices) ToProto(e, d.add_vertices());
    if (!autoscaler.settings().scaling_enabled) {
      d.set_outcome(job.checkpoints->enabled()
                        ? "not applied: job.autoscaler.scaling.enabled is false"
                        : "not applied: the job has no checkpointing");
      RecordDecisionLocked(job, std::move(d));
      continue;
    }
    std::set<std::string> cancel_on;
    auto trigger =
        StartRescaleLocked(job, target, absl::StrCat("autoscaler: ", d.description()), cancel_on);
    if (trigger.ok()) {
      BoundToRescaleLocked(job, current, target);
      job.autoscaler_pending.reset();
      d.set_outcome(absl::StrCat("rescaling: trigger id ", *trigger));
      d.set_trigger_id(*trigger);
      if (!cancel_on.empty()) cancels.emplace_back(job.id, std::move(cancel_on));
    } else if (trigger.status().code() == absl::StatusCode::kResourceExhausted) {
      // Too few slots: as far as they allow now (as the adaptive scheduler would run it), and
      // the TaskManagers missing are asked for; the rest starts once their slots are there.
      const int missing = AdaptiveScheduler::SlotsNeeded(target) - available;
      const std::string asked =
          RequestTaskManagersLocked(missing, absl::StrCat("job ", job.id, " (autoscaler)"), now);
      if (!job.autoscaler_pending || *job.autoscaler_pending != target) {
        job.autoscaler_pending_since = now;
      }
      job.autoscaler_pending = target;
      job.autoscaler_pending_why = d.description();
      VertexParallelism fit = target;
      for (size_t v = 0; v < fit.size(); ++v) {
        if (fit[v] > current[v]) fit[v] = std::max(current[v], std::min(fit[v], available));
      }
      std::set<std::string> partial_cancel;
      auto partial = fit == current
                         ? absl::StatusOr<std::string>(trigger.status())
                         : StartRescaleLocked(job, fit,
                                              absl::StrCat("autoscaler, as far as the ", available,
                                                           " task slots allow: ", d.description()),
                                              partial_cancel);
      if (partial.ok()) {
        BoundToRescaleLocked(job, current, fit);
        for (auto& [v, p] : *d.mutable_to_parallelism()) p = fit[v];
        d.set_outcome(absl::StrCat("rescaling to what the task slots allow (",
                                   AdaptiveScheduler::Describe(job.graph, fit), ", of ",
                                   AdaptiveScheduler::Describe(job.graph, target),
                                   " wanted): trigger id ", *partial, "; ", asked));
        d.set_trigger_id(*partial);
        if (!partial_cancel.empty()) cancels.emplace_back(job.id, std::move(partial_cancel));
      } else {
        d.set_outcome(absl::StrCat(
            "waiting for task slots: ", std::string(trigger.status().message()), "; ", asked));
      }
    } else if (trigger.status().code() == absl::StatusCode::kFailedPrecondition) {
      // Not now (a savepoint, a checkpoint being written): the next round decides again.
      spdlog::debug("job {}: autoscaler decision not applied now: {}", job.id,
                    std::string(trigger.status().message()));
      continue;
    } else {
      d.set_outcome(absl::StrCat("not applied: ", std::string(trigger.status().message())));
    }
    RecordDecisionLocked(job, std::move(d));
  }
}

void Dispatcher::RecordDecisionLocked(Job& job, proto::AutoscalerDecision decision) {
  if (!job.autoscaler_decisions.empty()) {
    const proto::AutoscalerDecision& newest = job.autoscaler_decisions.front();
    std::map<int, int> a(newest.to_parallelism().begin(), newest.to_parallelism().end());
    std::map<int, int> b(decision.to_parallelism().begin(), decision.to_parallelism().end());
    if (a == b && OutcomeKind(newest.outcome()) == OutcomeKind(decision.outcome()) &&
        newest.trigger_id().empty() && decision.trigger_id().empty()) {
      return;  // the same decision, still waiting
    }
  }
  spdlog::info("job {}: autoscaler: {}; {}", job.id, decision.description(), decision.outcome());
  job.autoscaler_decisions.push_front(std::move(decision));
  while (job.autoscaler_decisions.size() > kDecisionHistory) job.autoscaler_decisions.pop_back();
}

std::string Dispatcher::RequestTaskManagersLocked(int slots, const std::string& why,
                                                  Clock::time_point now) {
  if (slots <= 0) return "the slots are free now";
  if (!provider_.can_request()) {
    return "no resourcemanager.taskmanager.request-command is set to ask for TaskManagers";
  }
  const int per_tm = std::max<int64_t>(1, conf_.GetInt("taskmanager.numberOfTaskSlots"));
  const int count = (slots + per_tm - 1) / per_tm;
  const bool asked =
      provider_.Request(count, static_cast<int>(resources_.size()),
                        absl::StrCat(why, " needs ", slots, " more task slots"), now);
  return asked ? absl::StrCat("asked for ", count, " TaskManager", count == 1 ? "" : "s")
               : "TaskManagers asked for earlier are awaited";
}

void Dispatcher::ReleaseIdleTaskManagersLocked(Clock::time_point now) {
  const proto::ClusterOverview overview = resources_.Overview(now);
  std::map<std::string, std::string> idle;
  for (const auto& tm : overview.task_managers()) {
    if (tm.free_slots() == tm.num_slots()) idle[tm.tm_id()] = tm.address();
  }
  // A TaskManager that still runs a task of an ended job (cancelling) is not idle.
  for (const auto& [id, job] : jobs_) {
    for (const auto& [key, t] : job.tasks) {
      if (!IsTerminalTaskState(t.state)) idle.erase(t.tm_id);
    }
  }
  // The TaskManagers released stay registered until they go (their connection closes, or their
  // heartbeats stop): the command may leave one running (one it did not start).
  provider_.ReleaseIdle(idle, now);
}

void Dispatcher::FillAutoscalerStatusLocked(const Job& job, proto::JobStatus* s) const {
  if (!job.autoscaler) return;
  s->set_autoscaler_enabled(true);
  for (const VertexEvaluation& e : job.autoscaler->last_evaluation()) {
    ToProto(e, s->add_autoscaler_vertices());
  }
  for (const auto& d : job.autoscaler_decisions) *s->add_autoscaler_decisions() = d;
}

}  // namespace sluice
