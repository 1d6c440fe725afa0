#include "jobmanager/state_assignment.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

// An operator of a checkpoint.
struct OldOperator {
  int vertex = -1;
  std::string id;    // "" without operator ids
  std::string name;  // "" without operator ids
};

// The node ids of vertex `v` of the checkpoint, head first.
std::vector<int> OldVertexNodes(const proto::CheckpointMetadata& c, int v) {
  if (v < c.vertex_operators_size()) {
    const auto& ops = c.vertex_operators(v).node_ids();
    return {ops.begin(), ops.end()};
  }
  std::vector<int> out;
  if (v >= c.vertex_nodes_size()) return out;
  for (absl::string_view s : absl::StrSplit(c.vertex_nodes(v), ',', absl::SkipEmpty())) {
    int n = 0;
    if (absl::SimpleAtoi(s, &n)) out.push_back(n);
  }
  return out;
}

// The checkpoint's operators by node id.
std::map<int, OldOperator> OldOperators(const proto::CheckpointMetadata& c) {
  std::map<int, OldOperator> out;
  for (int v = 0; v < c.vertex_parallelism_size(); ++v) {
    std::vector<int> nodes = OldVertexNodes(c, v);
    for (size_t k = 0; k < nodes.size(); ++k) {
      OldOperator& op = out[nodes[k]];
      op.vertex = v;
      if (v < c.vertex_operators_size()) {
        const proto::VertexOperators& ops = c.vertex_operators(v);
        if (static_cast<int>(k) < ops.operator_ids_size()) op.id = ops.operator_ids(k);
        if (static_cast<int>(k) < ops.names_size()) op.name = ops.names(k);
      }
    }
  }
  return out;
}

// The check of a checkpoint without operator ids: the same vertices with the same node ids.
absl::Status CheckSameShape(const proto::CheckpointMetadata& c, const proto::JobGraph& graph,
                            const std::string& path) {
  if (c.vertex_parallelism_size() != graph.vertices_size() ||
      c.vertex_nodes_size() != graph.vertices_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint ", path, " has ", c.vertex_parallelism_size(), " tasks but job '",
                     graph.name(), "' has ", graph.vertices_size(), ": it belongs to another job"));
  }
  for (int v = 0; v < graph.vertices_size(); ++v) {
    std::string nodes = absl::StrJoin(graph.vertices(v).node_ids(), ",");
    if (c.vertex_nodes(v) != nodes) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint ", path, " does not fit job '",
                                                     graph.name(), "': task ", v, " has operators ",
                                                     c.vertex_nodes(v), ", the job ", nodes));
    }
  }
  return absl::OkStatus();
}

// The checkpoint's operator ids are whole (one per node) and unique.
absl::Status CheckOperatorIds(const proto::CheckpointMetadata& c, const std::string& path) {
  std::map<std::string, int> seen;
  for (int v = 0; v < c.vertex_operators_size(); ++v) {
    const proto::VertexOperators& ops = c.vertex_operators(v);
    if (ops.operator_ids_size() != ops.node_ids_size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint ", path, " lists ", ops.node_ids_size(), " operators of task ",
                       v, " but ", ops.operator_ids_size(), " operator ids"));
    }
    for (const std::string& id : ops.operator_ids()) {
      if (!seen.emplace(id, v).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("checkpoint ", path, " lists operator id '", id, "' twice"));
      }
    }
  }
  return absl::OkStatus();
}

std::string Describe(int node, const OldOperator& op) {
  if (op.id.empty()) return absl::StrCat("node ", node);
  return absl::StrCat("'", op.name, "' (id '", op.id, "')");
}

}  // namespace

bool HasOperatorIds(const proto::JobGraph& graph) {
  for (const auto& v : graph.vertices()) {
    if (v.operator_ids_size() == 0 || v.operator_ids_size() != v.node_ids_size()) return false;
  }
  return graph.vertices_size() > 0;
}

bool MatchesByOperatorId(const proto::CheckpointMetadata& checkpoint,
                         const proto::JobGraph& graph) {
  return checkpoint.vertex_operators_size() > 0 &&
         checkpoint.vertex_operators_size() == checkpoint.vertex_parallelism_size() &&
         HasOperatorIds(graph);
}

std::map<int, int> MatchOperators(const proto::CheckpointMetadata& checkpoint,
                                  const proto::JobGraph& graph) {
  const bool by_id = MatchesByOperatorId(checkpoint, graph);
  std::map<std::string, int> new_node_of_id;
  std::set<int> new_nodes;
  for (const auto& v : graph.vertices()) {
    for (int k = 0; k < v.node_ids_size(); ++k) {
      new_nodes.insert(v.node_ids(k));
      if (by_id) new_node_of_id[v.operator_ids(k)] = v.node_ids(k);
    }
  }
  std::map<int, int> out;
  for (const auto& [node, op] : OldOperators(checkpoint)) {
    if (by_id) {
      auto it = new_node_of_id.find(op.id);
      if (it != new_node_of_id.end()) out[node] = it->second;
    } else if (new_nodes.count(node)) {
      out[node] = node;
    }
  }
  return out;
}

std::vector<proto::RestoreGroup> RestoreGroupsOf(const proto::CheckpointMetadata& checkpoint,
                                                 const std::map<int, int>& matched,
                                                 const proto::JobGraph& graph, int vertex) {
  const auto& ids = graph.vertices(vertex).node_ids();
  const std::set<int> here(ids.begin(), ids.end());
  std::vector<proto::RestoreGroup> out;
  for (int w = 0; w < checkpoint.vertex_parallelism_size(); ++w) {
    proto::RestoreGroup g;
    for (int node : OldVertexNodes(checkpoint, w)) {
      auto it = matched.find(node);
      if (it != matched.end() && here.count(it->second)) (*g.mutable_node_ids())[node] = it->second;
    }
    if (g.node_ids().empty()) continue;
    g.set_vertex_id(w);
    g.set_parallelism(checkpoint.vertex_parallelism(w));
    for (const auto& h : checkpoint.handles()) {
      if (h.vertex_id() == w) *g.add_handles() = h;
    }
    out.push_back(std::move(g));
  }
  return out;
}

absl::Status CheckCheckpointFits(const proto::CheckpointMetadata& checkpoint,
                                 const proto::JobGraph& graph, const std::string& path) {
  if (checkpoint.max_parallelism() != graph.max_parallelism()) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint ", path, " was taken with max parallelism ",
                     checkpoint.max_parallelism(), " but the job has ", graph.max_parallelism(),
                     " (pipeline.max-parallelism must not change)"));
  }
  if (MatchesByOperatorId(checkpoint, graph)) return CheckOperatorIds(checkpoint, path);
  return CheckSameShape(checkpoint, graph, path);
}

absl::Status CheckStateFits(const proto::CheckpointMetadata& checkpoint,
                            const proto::JobGraph& graph,
                            const std::set<std::pair<int, int>>& stateful,
                            bool allow_non_restored_state, const std::string& path) {
  const std::map<int, OldOperator> old_ops = OldOperators(checkpoint);
  const std::map<int, int> matched = MatchOperators(checkpoint, graph);
  std::vector<std::string> unmatched;
  for (const auto& [node, vertex] : stateful) {
    auto op = old_ops.find(node);
    if (op == old_ops.end() || op->second.vertex != vertex) {
      return absl::InvalidArgumentError(
          absl::StrCat("checkpoint ", path, ": the state files of task ", vertex,
                       " hold state of node ", node, ", which its metadata does not list there"));
    }
    if (!matched.count(node)) unmatched.push_back(Describe(node, op->second));
  }
  if (unmatched.empty()) return absl::OkStatus();
  if (allow_non_restored_state) {
    for (const std::string& op : unmatched) {
      spdlog::warn(
          "checkpoint {}: the state of operator {} is not restored: job '{}' has no "
          "operator with its id (--allowNonRestoredState)",
          path, op, graph.name());
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "checkpoint ", path, " holds state of operator", unmatched.size() > 1 ? "s " : " ",
      absl::StrJoin(unmatched, ", "), " that job '", graph.name(),
      "' has no operator with the same id for (an operator removed, or its uid changed). Give "
      "the operator that should take it that id with uid(...), or drop the state with "
      "--allowNonRestoredState (-n)"));
}

}  // namespace sluice
