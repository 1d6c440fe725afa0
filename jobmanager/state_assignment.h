// State assignment: which operator of a job takes the state of each operator of the checkpoint
// it starts from, and what the tasks of each of its vertices read (Flink's
// StateAssignmentOperation and the checks of Checkpoints.loadAndValidateCheckpoint).
//
// Operators are matched by operator id (common/operator_ids.h), so operators may sit in other
// chains, vertices and parallelisms than when the checkpoint was taken; a job restarting from
// its own checkpoints is the case where every operator matches itself. A checkpoint taken
// before operator ids (no vertex_operators in its metadata) matches by node id, and restores
// only into a job with the same vertices and operators, as it did then.
//
// Threads: pure functions of their arguments; any thread.
#pragma once

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "proto/checkpoint.pb.h"
#include "proto/model.pb.h"

namespace sluice {

// True when every vertex of `graph` names its operators' ids (graphs built before them do not).
bool HasOperatorIds(const proto::JobGraph& graph);

// True when `checkpoint` and `graph` both name their operators by operator id.
bool MatchesByOperatorId(const proto::CheckpointMetadata& checkpoint, const proto::JobGraph& graph);

// Old node id -> the job's node id, for every operator of `checkpoint` that an operator of
// `graph` takes the state of: the operator with the same operator id, or (when not
// MatchesByOperatorId) the node with the same id.
std::map<int, int> MatchOperators(const proto::CheckpointMetadata& checkpoint,
                                  const proto::JobGraph& graph);

// What the tasks of vertex `vertex` of `graph` restore: one group per vertex of `checkpoint`
// holding an operator that `matched` (MatchOperators) maps into `vertex`, with that vertex's
// parallelism then, its state handles and the node ids of the mapped operators. In the
// checkpoint's vertex order.
std::vector<proto::RestoreGroup> RestoreGroupsOf(const proto::CheckpointMetadata& checkpoint,
                                                 const std::map<int, int>& matched,
                                                 const proto::JobGraph& graph, int vertex);

// Whether `graph` may start from `checkpoint` (read from `path`), before its state files are
// read. InvalidArgument naming the difference when the max parallelism differs, when the
// checkpoint has no operator ids and the job's vertices or their operators differ, or when its
// operator ids are incomplete or repeated.
absl::Status CheckCheckpointFits(const proto::CheckpointMetadata& checkpoint,
                                 const proto::JobGraph& graph, const std::string& path);

// Whether `graph` has an operator for the state of every operator of `checkpoint` (which
// CheckCheckpointFits accepted) that has some: `stateful` lists them as pairs of old node id and
// the vertex whose state files hold its state. InvalidArgument when a node of `stateful` is not
// an operator of that vertex in the checkpoint's metadata, or when an operator with state has no
// match in the job, unless `allow_non_restored_state` (its state is then left out, and logged):
// the error names the operator and its id, and tells of --allowNonRestoredState.
absl::Status CheckStateFits(const proto::CheckpointMetadata& checkpoint,
                            const proto::JobGraph& graph,
                            const std::set<std::pair<int, int>>& stateful,
                            bool allow_non_restored_state, const std::string& path);

}  // namespace sluice
