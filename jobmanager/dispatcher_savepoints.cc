// The Dispatcher's savepoint requests: the CheckpointCoordinator runs them as checkpoints of
// their type; jobmanager/savepoints.h does their file work.
#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/job_states.h"
#include "jobmanager/dispatcher.h"
#include "jobmanager/savepoints.h"
#include "spdlog/spdlog.h"

namespace sluice {

absl::StatusOr<std::string> Dispatcher::TriggerSavepoint(
    const proto::TriggerSavepointRequest& req) {
  if (req.drain() && !req.stop()) {
    return absl::InvalidArgumentError("drain applies only to stop-with-savepoint");
  }
  if (req.stop() && req.cancel_job()) {
    return absl::InvalidArgumentError("a savepoint either stops the job or cancels it, not both");
  }
  absl::MutexLock lock(&mu_);
  Job* job = FindJobLocked(req.job_id());
  if (!job) return absl::NotFoundError("no job " + req.job_id());
  if (job->state != proto::JOB_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job->id, " is ",
                                                      std::string(JobStateName(job->state)),
                                                      ": a savepoint needs it RUNNING"));
  }
  auto target = SavepointTargetDirectory(job->conf, req.target_directory());
  if (!target.ok()) return target.status();
  CheckpointCoordinator::SavepointRequest r;
  r.request_id = NewJobId();
  r.folder = NewSavepointFolder(*target, job->id);
  r.stop = req.stop();
  r.drain = req.drain();
  r.cancel_job = req.cancel_job();
  absl::Status st = job->checkpoints->RequestSavepoint(r);
  if (!st.ok()) return st;
  spdlog::info(
      "job {}: {} requested into {} (request {})", job->id,
      r.stop ? (r.drain ? "stop with savepoint, draining," : "stop with savepoint") : "savepoint",
      *target, r.request_id);
  WakeCoordinatorLocked();
  return r.request_id;
}

absl::StatusOr<proto::SavepointStatus> Dispatcher::GetSavepoint(const std::string& job_id,
                                                                const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  Job* job = FindJobLocked(job_id);
  if (!job) return absl::NotFoundError("no job " + job_id);
  auto r = job->checkpoints->GetSavepoint(request_id);
  if (!r.ok()) return r.status();
  proto::SavepointStatus out;
  out.set_done(r->done);
  out.set_location(r->location);
  out.set_failure(r->failure);
  return out;
}

absl::Status Dispatcher::DisposeSavepoint(const std::string& path) {
  absl::Status st = sluice::DisposeSavepoint(path);
  if (st.ok()) spdlog::info("savepoint {} disposed of", path);
  return st;
}

}  // namespace sluice
