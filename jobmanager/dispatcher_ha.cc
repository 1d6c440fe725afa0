// The Dispatcher's part in high availability (see dispatcher.h and jobmanager/high_availability.h):
// each job's stores, persisting a submission, recovering a new leader's jobs, and recording the
// end of a job so that no leader runs it again.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/job_states.h"
#include "jobmanager/dispatcher.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

int64_t ToMillis(Dispatcher::Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

}  // namespace

absl::StatusOr<Dispatcher::NewJob> Dispatcher::PrepareJob(const std::string& job_id,
                                                          const proto::SubmitJobRequest& req,
                                                          bool recovering) {
  NewJob out;
  out.conf = conf_;
  for (const auto& [k, v] : req.config()) {
    absl::Status st = out.conf.Set(k, v);
    if (!st.ok()) return absl::InvalidArgumentError(st.message());
  }
  CheckpointSettings settings = CheckpointSettings::FromConfig(out.conf, job_id);
  std::unique_ptr<CompletedCheckpointStore> store;
  std::unique_ptr<CheckpointIdCounter> ids;
  if (options_.ha) {
    auto ha_store = options_.ha->CreateCheckpointStore(job_id, settings.num_retained);
    if (!ha_store.ok()) return ha_store.status();
    auto ha_ids = options_.ha->CreateCheckpointIdCounter(job_id);
    if (!ha_ids.ok()) return ha_ids.status();
    store = std::move(*ha_store);
    ids = std::move(*ha_ids);
  } else {
    store = std::make_unique<StandaloneCompletedCheckpointStore>(settings.num_retained);
    ids = std::make_unique<StandaloneCheckpointIdCounter>();
  }
  // A recovered job restores its own newest checkpoint; only without one does it start from
  // where it was submitted to start.
  const bool own_checkpoint = recovering && store->Latest() != nullptr;
  out.checkpoints = std::make_unique<CheckpointCoordinator>(
      job_id, std::move(settings), std::move(store), std::move(ids), Clock::now());
  if (!req.restore_path().empty() && !own_checkpoint) {
    std::string restore_dir;
    auto meta = CheckpointCoordinator::LoadForRestore(req.restore_path(), req.graph(),
                                                      req.allow_non_restored_state(), &restore_dir);
    if (!meta.ok()) return absl::InvalidArgumentError(meta.status().message());
    absl::Status st = out.checkpoints->SetRestoreFrom(std::move(*meta), restore_dir);
    if (!st.ok()) return st;
  }
  return out;
}

absl::Status Dispatcher::PersistSubmittedJob(const std::string& job_id,
                                             const proto::SubmitJobRequest& req) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("JobManager is stopping");
  }
  proto::PersistedJob persisted;
  persisted.set_job_id(job_id);
  *persisted.mutable_request() = req;
  persisted.set_start_time_ms(NowMillis());
  auto library = blobs_->Path(req.library_sha256());
  absl::Status st = library.ok() ? options_.ha->PutJob(persisted, *library) : library.status();
  if (!st.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "job not submitted: it cannot be persisted for high availability: ", st.message()));
  }
  return absl::OkStatus();
}

absl::Status Dispatcher::RecoverJobs() {
  if (!options_.ha) return absl::OkStatus();
  auto recovered = options_.ha->RecoverJobs();
  if (!recovered.ok()) return recovered.status();
  for (auto& r : *recovered) {
    const std::string& job_id = r.job.job_id();
    const proto::SubmitJobRequest& req = r.job.request();
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::UnavailableError("JobManager is stopping");
      if (FindJobLocked(job_id)) continue;  // taken up by an earlier try
    }
    // Its library into this JobManager's blob store, where TaskManagers download it.
    std::ifstream in(r.library_path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto sha = in ? blobs_->Put(bytes) : absl::NotFoundError("cannot read it");
    if (!sha.ok() || *sha != req.library_sha256()) {
      spdlog::error("job {} cannot be recovered: its library '{}': {}", job_id, r.library_path,
                    sha.ok() ? "has another hash" : std::string(sha.status().message()));
      continue;
    }
    // A new term of the job: its attempts are numbered apart from any its last leader may still
    // have running (TaskManagers match checkpoint calls to the attempt). Terms wrap around
    // before the attempt overflows.
    constexpr int kTerms = std::numeric_limits<int32_t>::max() / kAttemptsPerTerm;
    r.job.set_recoveries(r.job.recoveries() % (kTerms - 1) + 1);
    absl::Status st = options_.ha->PutJob(r.job, r.library_path);
    auto prepared =
        st.ok() ? PrepareJob(job_id, req, /*recovering=*/true) : absl::StatusOr<NewJob>(st);
    if (!prepared.ok()) {
      spdlog::error("job {} cannot be recovered: {}", job_id,
                    std::string(prepared.status().message()));
      continue;
    }
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("JobManager is stopping");
    Job& job = jobs_[job_id];
    InitJobLocked(job, job_id, req, std::move(*prepared));
    job.start_time_ms = r.job.start_time_ms();
    job.attempt = r.job.recoveries() * kAttemptsPerTerm;
    job.recovering = true;
    job.waiting_since = Clock::now();
    job.slots_released = true;  // it holds none yet
    job.requirements =
        AdaptiveScheduler::InitialRequirements(job.graph, options_.scheduler.reactive());
    RegisterJobMetricsLocked(job);
    std::string dir;
    const proto::CheckpointMetadata* from = job.checkpoints->RestoreSource(&dir);
    spdlog::info(
        "job {} ({}) recovered{}; it runs again once its task slots are there", job_id,
        job.graph.name(),
        from ? absl::StrCat(" at checkpoint ", from->checkpoint_id()) : " (no checkpoint)");
    WakeCoordinatorLocked();
  }
  return absl::OkStatus();
}

bool Dispatcher::ForgetPersistedJob(const std::string& job_id, proto::JobState state) {
  absl::Status s = options_.ha->JobEnded(job_id, state);
  if (!s.ok()) {
    spdlog::error("job {} ended {} but that cannot be recorded for high availability yet: {}",
                  job_id, JobStateName(state), std::string(s.message()));
    return false;
  }
  return true;
}

void Dispatcher::RecordJobEnds() {
  if (!options_.ha) return;
  std::vector<std::pair<std::string, proto::JobState>> ends;
  {
    absl::MutexLock lock(&mu_);
    ends.swap(unrecorded_ends_);
  }
  std::vector<std::pair<std::string, proto::JobState>> failed;
  for (const auto& [id, state] : ends) {
    if (ForgetPersistedJob(id, state)) {
      spdlog::info("job {}: its end ({}) is recorded for high availability", id,
                   JobStateName(state));
    } else {
      failed.emplace_back(id, state);
    }
  }
  if (failed.empty()) return;
  // Tried again at the next round: until it is recorded, a new leader would run the job again.
  absl::MutexLock lock(&mu_);
  unrecorded_ends_.insert(unrecorded_ends_.begin(), failed.begin(), failed.end());
}

void Dispatcher::StartRecoveredLocked(Clock::time_point now, Deployments& deployments) {
  // The adaptive scheduler starts waiting jobs, recovered ones among them, itself.
  if (options_.scheduler.adaptive()) return;
  std::vector<std::string> failed;
  for (auto& [id, job] : jobs_) {
    if (!job.recovering || job.state != proto::JOB_CREATED) continue;
    const VertexParallelism p = AdaptiveScheduler::Current(job.graph);
    Deployments out;
    if (DeployAtLocked(job, p, out)) {
      spdlog::info("recovered job {} runs again after {} ms: {} tasks in {} slots", id,
                   ToMillis(now - job.waiting_since), out.size(), job.slots.size());
      deployments.insert(deployments.end(), out.begin(), out.end());
      continue;
    }
    if (now - job.waiting_since >= registration_timeout_) failed.push_back(id);
  }
  for (const std::string& id : failed) {
    Job& job = jobs_.at(id);
    const int needed = AdaptiveScheduler::SlotsNeeded(AdaptiveScheduler::Current(job.graph));
    FailJobLocked(job,
                  absl::StrCat("recovered, but the ", needed, " task slots it needs were not ",
                               "free within ", registration_timeout_.count(),
                               " ms (resourcemanager.taskmanager-registration.timeout): ",
                               resources_.FreeSlots(), " of ", resources_.TotalSlots(), " are"));
    MaybeCompleteLocked(job);
  }
}

}  // namespace sluice
