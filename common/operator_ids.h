// Operator ids: the names a job's operators give their state in checkpoints, so that a job
// started from a checkpoint of another version of itself finds each operator's state (Flink's
// operator uids and the hashes its StreamGraphHasher makes for operators without one).
//
// An operator's id is its uid (DataStream::uid) when it has one, else its structural id: the
// first 32 hex digits of the SHA-256 of
//   - the operator's kind ("map", "process", "sink", ...),
//   - per input, in order: the input's structural id, which logical input it feeds (two-input
//     operators), whether it is partitioned by key, and the side output it reads (if any),
//   - its ordinal among the operators built before it with the same kind and inputs (0 for the
//     first; the only thing that tells apart two sources, or two identical consumers of one
//     stream).
// So a structural id depends only on the operator and what lies upstream of it: it stays when
// operators are added downstream or as new branches (of another kind or inputs, or built after
// the existing ones), and it never depends on names, parallelism or chaining. Uids do not enter
// it either, so giving an operator a uid leaves the ids of the others as they were.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/internal/graph.h"

namespace sluice {

// The structural id of every node, by node id (nodes[i]->id == i, inputs before consumers).
std::vector<std::string> StructuralOperatorIds(
    const std::vector<std::unique_ptr<internal::Node>>& nodes);

// The operator id of every node, by node id: its uid, else its structural id. InvalidArgument
// naming both operators when two have the same id (a uid given twice, or a uid that is another
// operator's structural id), or naming the operator whose uid is not valid UTF-8.
absl::StatusOr<std::vector<std::string>> OperatorIds(
    const std::vector<std::unique_ptr<internal::Node>>& nodes);

}  // namespace sluice
