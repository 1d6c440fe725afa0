// From a job's stream nodes to the job graph the JobManager schedules: parallelism resolved,
// partitioners resolved, operators chained into vertices, network edges between vertices.
//
// Chaining: node v is chained to its single input u when the edge is forward (explicit, or by
// default with equal parallelism), both have the same parallelism and neither disabled chaining.
// Every consumer of u that qualifies is, so a chain is a tree: a vertex lists its nodes in
// pre-order (each after the one it reads) and is named "a -> b", "a -> (b, c -> d)" where it
// forks.
//
// Every operator gets its operator id (common/operator_ids.h) in its vertex's operator_ids.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "proto/model.pb.h"
#include "sluice/datastream.h"

namespace sluice {

struct JobGraphOptions {
  int default_parallelism = 1;  // for nodes and environments that set none
  int max_parallelism = kDefaultMaxParallelism;
};

// InvalidArgument names the operator when a parallelism is out of range or a forward edge joins
// operators of different parallelism, and both operators when two have the same id.
absl::StatusOr<proto::JobGraph> BuildJobGraph(const StreamExecutionEnvironment& env,
                                              const JobGraphOptions& options);

// The job graph as JSON, for `sluice info`: vertices with their chained operators, edges with
// their partitioners.
std::string JobGraphToJson(const proto::JobGraph& graph, const StreamExecutionEnvironment& env);

// The SDK's partitioner on the wire and back; an unknown wire value is kDefault.
proto::Partitioner PartitionerToProto(internal::Partitioner p);
internal::Partitioner PartitionerFromProto(proto::Partitioner p);

// The highest parallelism of the graph's vertices: the slots the job needs.
int SlotsNeeded(const proto::JobGraph& graph);

}  // namespace sluice
