// Redistribution of checkpointed state over the subtasks of a restore: which part of the old
// subtasks' snapshots one new subtask starts from, at any parallelism, and (when the job
// changed) which of its operators each old operator's state goes to.
//
// Pure functions over snapshots already read (common/checkpoint_storage.h reads them); the
// TaskManager's Task calls them before it opens its operators.
#pragma once

#include <map>
#include <vector>

#include "sluice/internal/runtime.h"

namespace sluice {

// The state subtask `subtask` of `parallelism` starts from, given the snapshots every subtask
// of the vertex wrote (`by_subtask[i]`: what old subtask i wrote; the old parallelism is
// by_subtask.size()). Keyed state: the key groups in the new subtask's range, and every native
// snapshot overlapping it (the backend clips it). Operator list state: unchanged when the
// parallelism is; otherwise each list's elements, concatenated in old-subtask order, split into
// `parallelism` contiguous near-equal parts.
std::vector<internal::OperatorSnapshot> NarrowSnapshots(
    const std::vector<std::vector<internal::OperatorSnapshot>>& by_subtask, int subtask,
    int parallelism, int max_parallelism);

// What one vertex of a checkpoint gives a restoring subtask: the snapshots each of its subtasks
// wrote, and which of its operators' state the subtask's operators take.
struct SnapshotGroup {
  // by_subtask[i]: what old subtask i wrote; by_subtask.size() is the old parallelism.
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  // Old node id -> the node id of the operator that takes its state; other nodes' snapshots
  // are left out.
  std::map<int, int> node_ids;
};

// The state subtask `subtask` of `parallelism` starts from, taking from every group the
// snapshots of its mapped operators, narrowed as NarrowSnapshots does at the group's own old
// parallelism, with their node ids mapped. Groups must map to distinct node ids (one old
// operator per new one); the result lists them in group order.
std::vector<internal::OperatorSnapshot> AssignSnapshots(std::vector<SnapshotGroup> groups,
                                                        int subtask, int parallelism,
                                                        int max_parallelism);

}  // namespace sluice
