// Scheduler: turns a job graph and the slots a job holds into one TaskDeploymentDescriptor per
// subtask. Slot sharing: slot i holds subtask i of every vertex, so a job needs as many slots as
// its highest parallelism. Each output edge becomes a result partition per producer subtask and
// attempt; each input a gate of channels to the producers that feed the subtask (all of them,
// or the pointwise subset for forward and rescale), local when the producer shares the
// TaskManager.
//
// Threads: stateless; every function may be called from any thread.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "proto/checkpoint.pb.h"
#include "proto/taskmanager.pb.h"

namespace sluice {

class Scheduler {
 public:
  // What the descriptors of one attempt of a job are made from.
  struct JobSpec {
    std::string job_id;
    const proto::JobGraph* graph = nullptr;
    std::string library_sha256;
    std::vector<std::string> args;
    std::map<std::string, std::string> config;  // passed on to every task
    int attempt = 0;
    int64_t auto_watermark_interval_ms = 0;
    std::string checkpoint_dir;  // empty: checkpointing off
    bool exactly_once = true;
    // The checkpoint to restore from (null: a fresh start; each vertex restores the state of
    // the operators MatchOperators gives it, jobmanager/state_assignment.h) and the folder its
    // state files' names are relative to.
    const proto::CheckpointMetadata* restore = nullptr;
    std::string restore_dir;
  };
  struct Deployment {
    std::string tm_id;
    proto::TaskDeploymentDescriptor tdd;
  };

  // Checks a submitted graph: vertex ids in order, parallelism within [1, max parallelism],
  // edges between existing vertices with a known partitioner, forward only between equal
  // parallelism. InvalidArgument naming what is wrong.
  static absl::Status ValidateGraph(const proto::JobGraph& graph);

  // One descriptor per subtask of every vertex, subtask i in `slots[i]` (a TaskManager id;
  // `slots` has at least the graph's highest parallelism entries). `address_of` gives a
  // TaskManager's address.
  static std::vector<Deployment> BuildDeployments(
      const JobSpec& job, const std::vector<std::string>& slots,
      const std::function<std::string(const std::string&)>& address_of);

  // The id of the result partition of `edge` written by subtask `producer` of an attempt.
  static std::string PartitionId(const std::string& job_id, int edge, int producer, int attempt);
};

}  // namespace sluice
