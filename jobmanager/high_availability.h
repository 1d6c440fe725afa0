// HighAvailabilityServices: what a leading JobManager keeps where the next leader finds it, as
// Flink's JobGraphStore, JobResultStore, CompletedCheckpointStore and CheckpointIDCounter
// together: the jobs it runs (graph, library, configuration), the ids of the jobs that ended (so
// that none is recovered again), and each job's completed checkpoints and checkpoint counter.
// Without high availability the Dispatcher has none and keeps it all in memory
// (jobmanager/completed_checkpoint_store.h); jobmanager/ha/ implements it on ZooKeeper and
// high-availability.storageDir.
//
// Every write needs the leader's ZooKeeper session: a JobManager that lost it (and with it
// leadership) can no longer add a checkpoint or a job, which is what keeps an old leader from
// acting beside a new one.
//
// Threads: every method may be called from any thread; the stores it creates are used under the
// Dispatcher's lock, as the standalone ones are.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "jobmanager/completed_checkpoint_store.h"
#include "proto/jobmanager.pb.h"

namespace sluice {

class HighAvailabilityServices {
 public:
  virtual ~HighAvailabilityServices() = default;

  // Persists a submitted job with its library (the file at `library_path`) before the job is
  // acknowledged. An error (naming the node or the file) means it must not run.
  virtual absl::Status PutJob(const proto::PersistedJob& job, const std::string& library_path) = 0;
  // The job reached a final state: that is recorded first (so it is never recovered again), then
  // its graph, checkpoints and counter are removed. The checkpoint files stay where the job's
  // settings put them, as without high availability.
  virtual absl::Status JobEnded(const std::string& job_id, proto::JobState state) = 0;

  struct RecoveredJob {
    proto::PersistedJob job;
    std::string library_path;  // the persisted copy of its library
  };
  // The jobs a new leader must run again: persisted and not ended. A job whose graph cannot be
  // read is left out with an error in the log, not an error here: the others still recover.
  virtual absl::StatusOr<std::vector<RecoveredJob>> RecoverJobs() = 0;

  // The job's completed checkpoints (those its last leader completed, read back) and its counter.
  virtual absl::StatusOr<std::unique_ptr<CompletedCheckpointStore>> CreateCheckpointStore(
      const std::string& job_id, size_t num_retained) = 0;
  virtual absl::StatusOr<std::unique_ptr<CheckpointIdCounter>> CreateCheckpointIdCounter(
      const std::string& job_id) = 0;
};

}  // namespace sluice
