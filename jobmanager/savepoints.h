// Savepoints on a file system: where a new one goes, how its state files become a folder of
// their own, and disposal. The CheckpointCoordinator runs a savepoint as a checkpoint of type
// SAVEPOINT (tasks write the canonical format into the job's chk-<n> folder, as for any
// checkpoint); once every task has acknowledged it, WriteSavepoint moves the files into
//   <target directory>/savepoint-<first 6 characters of the job id>-<8 hex characters>/
//     v<vertex>-s<subtask>   the state files, named relative to this folder
//     _metadata              CheckpointMetadata with `savepoint` set
// so that the folder stands alone: it may be moved or copied to another cluster, and a job
// started from it (`sluice run -s`) needs nothing else. File work only; no lock held.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "jobmanager/checkpoint_coordinator.h"

namespace sluice {

// The folder a new savepoint of `job_id` gets under `target_directory`.
std::string NewSavepointFolder(const std::string& target_directory, const std::string& job_id);

// Where a savepoint of a job with configuration `conf` goes when the request names no folder:
// execution.checkpointing.savepoint-dir (or Flink 1's state.savepoints.dir). InvalidArgument when
// it is not set or the folder is not an absolute path.
absl::StatusOr<std::string> SavepointTargetDirectory(const Configuration& conf,
                                                     const std::string& requested);

// Moves the acknowledged savepoint's state files from the job's folder into `sp.dir` (a copy
// for a file an earlier checkpoint stored, kept for a task that had finished), rewrites the
// handles relative to it, and writes its _metadata, all in `<sp.dir>.inprogress`, renamed to
// sp.dir when whole. On failure nothing of the savepoint remains; the error names the file.
// Incremental state carried forward from a finished task cannot go into a savepoint
// (FailedPrecondition naming the task).
absl::Status WriteSavepoint(CheckpointCoordinator::ToWrite& sp);

// Removes the savepoint at `path` (its folder or _metadata file; an absolute path). Refuses
// anything that is not a savepoint: a retained checkpoint, a folder without _metadata.
absl::Status DisposeSavepoint(const std::string& path);

}  // namespace sluice
