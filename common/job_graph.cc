#include "common/job_graph.h"

#include <algorithm>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/operator_ids.h"
#include "sluice/sluice.h"

namespace sluice {

namespace {
// The one mapping between the SDK's partitioners and the wire's; kDefault is
// PARTITIONER_UNSPECIFIED, both ways.
constexpr std::pair<internal::Partitioner, proto::Partitioner> kPartitioners[] = {
    {internal::Partitioner::kForward, proto::PARTITIONER_FORWARD},
    {internal::Partitioner::kRebalance, proto::PARTITIONER_REBALANCE},
    {internal::Partitioner::kRescale, proto::PARTITIONER_RESCALE},
    {internal::Partitioner::kHash, proto::PARTITIONER_HASH},
    {internal::Partitioner::kBroadcast, proto::PARTITIONER_BROADCAST},
    {internal::Partitioner::kCustom, proto::PARTITIONER_CUSTOM},
};
}  // namespace

proto::Partitioner PartitionerToProto(internal::Partitioner p) {
  for (const auto& [sdk, wire] : kPartitioners) {
    if (sdk == p) return wire;
  }
  return proto::PARTITIONER_UNSPECIFIED;
}

internal::Partitioner PartitionerFromProto(proto::Partitioner p) {
  for (const auto& [sdk, wire] : kPartitioners) {
    if (wire == p) return sdk;
  }
  return internal::Partitioner::kDefault;
}

int SlotsNeeded(const proto::JobGraph& graph) {
  int n = 0;
  for (const auto& v : graph.vertices()) n = std::max(n, v.parallelism());
  return n;
}

absl::StatusOr<proto::JobGraph> BuildJobGraph(const StreamExecutionEnvironment& env,
                                              const JobGraphOptions& options) {
  const auto& nodes = env.nodes();
  const int n = static_cast<int>(nodes.size());
  int max_p = env.max_parallelism() > 0 ? env.max_parallelism() : options.max_parallelism;
  if (max_p < 1) return absl::InvalidArgumentError("max parallelism must be at least 1");
  int default_p = env.parallelism() > 0 ? env.parallelism() : options.default_parallelism;
  if (default_p < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("parallelism must be at least 1, got ", default_p));
  }

  std::vector<int> par(n);
  for (int i = 0; i < n; ++i) {
    const internal::Node& node = *nodes[i];
    par[i] = node.parallelism > 0 ? node.parallelism : default_p;
    if (node.fixed_parallelism) par[i] = 1;
    // The stream of a side output runs beside the operator that emits it.
    if (!node.inputs.empty() && !node.inputs[0].side_tag.empty()) par[i] = par[node.inputs[0].node];
    if (par[i] > max_p) {
      return absl::InvalidArgumentError(absl::StrCat("operator '", node.name, "' has parallelism ",
                                                     par[i], " above the max parallelism ", max_p,
                                                     " (pipeline.max-parallelism)"));
    }
  }

  // Resolve every input's partitioner.
  std::vector<std::vector<internal::Partitioner>> resolved(n);
  for (int v = 0; v < n; ++v) {
    for (const internal::InputSpec& in : nodes[v]->inputs) {
      internal::Partitioner p = in.partitioner;
      if (p == internal::Partitioner::kDefault) {
        p = par[in.node] == par[v] ? internal::Partitioner::kForward
                                   : internal::Partitioner::kRebalance;
      }
      if (p == internal::Partitioner::kForward && par[in.node] != par[v]) {
        return absl::InvalidArgumentError(
            absl::StrCat("forward partitioning needs equal parallelism, but '",
                         nodes[in.node]->name, "' has ", par[in.node], " and '", nodes[v]->name,
                         "' has ", par[v], ": use rebalance() or rescale()"));
      }
      resolved[v].push_back(p);
    }
  }

  // Chain: an operator runs in its upstream's task when it reads that one stream alone, forward,
  // at the same parallelism, and neither disables chaining. An operator may have several such
  // consumers, so a chain is a tree (as Flink's are): children[u] are the nodes chained after u.
  std::vector<std::vector<int>> children(n);
  std::vector<int> predecessor(n, -1);
  for (int v = 0; v < n; ++v) {
    const internal::Node& node = *nodes[v];
    if (node.inputs.size() != 1) continue;
    int u = node.inputs[0].node;
    if (resolved[v][0] != internal::Partitioner::kForward || par[u] != par[v]) continue;
    if (!node.chaining || !nodes[u]->chaining) continue;
    children[u].push_back(v);
    predecessor[v] = u;
  }
  // A chain's nodes in pre-order (every node after the one it is chained after), and its name
  // as Flink writes it: "a -> b" for a line, "a -> (b, c -> d)" where it forks.
  std::function<void(int, std::vector<int>&)> list_chain = [&](int k, std::vector<int>& out) {
    out.push_back(k);
    for (int c : children[k]) list_chain(c, out);
  };
  std::function<std::string(int)> chain_name = [&](int k) {
    std::string name = nodes[k]->name;
    if (children[k].size() == 1) return absl::StrCat(name, " -> ", chain_name(children[k][0]));
    if (children[k].empty()) return name;
    std::vector<std::string> parts;
    for (int c : children[k]) parts.push_back(chain_name(c));
    return absl::StrCat(name, " -> (", absl::StrJoin(parts, ", "), ")");
  };

  absl::StatusOr<std::vector<std::string>> operator_ids = OperatorIds(nodes);
  if (!operator_ids.ok()) return operator_ids.status();

  proto::JobGraph graph;
  graph.set_name(env.job_name().empty() ? "Sluice Job" : env.job_name());
  graph.set_max_parallelism(max_p);
  graph.set_abi_stamp(SLUICE_ABI_STAMP);
  std::vector<int> vertex_of(n, -1);
  for (int h = 0; h < n; ++h) {
    if (predecessor[h] != -1) continue;
    proto::JobVertex* vx = graph.add_vertices();
    vx->set_id(graph.vertices_size() - 1);
    vx->set_parallelism(par[h]);
    vx->set_is_source(nodes[h]->is_source());
    std::vector<int> chain;
    list_chain(h, chain);
    for (int k : chain) {
      // A chain with an operator that cannot run in parallel stays at 1 when the job rescales.
      if (nodes[k]->fixed_parallelism) vx->set_max_parallelism(1);
      vx->add_node_ids(k);
      vx->add_node_names(nodes[k]->name);
      vx->add_operator_ids((*operator_ids)[k]);
      vertex_of[k] = vx->id();
    }
    vx->set_name(chain_name(h));
  }
  for (int v = 0; v < n; ++v) {
    for (size_t i = 0; i < nodes[v]->inputs.size(); ++i) {
      int u = nodes[v]->inputs[i].node;
      if (predecessor[v] == u) continue;
      proto::JobEdge* e = graph.add_edges();
      e->set_source_vertex(vertex_of[u]);
      e->set_source_node(u);
      e->set_target_vertex(vertex_of[v]);
      e->set_target_node(v);
      e->set_target_input(static_cast<int>(i));
      e->set_partitioner(PartitionerToProto(resolved[v][i]));
    }
  }
  return graph;
}

std::string JobGraphToJson(const proto::JobGraph& graph, const StreamExecutionEnvironment& env) {
  using nlohmann::json;
  json j;
  j["name"] = graph.name();
  j["max_parallelism"] = graph.max_parallelism();
  j["slots_needed"] = SlotsNeeded(graph);
  json vertices = json::array();
  for (const auto& v : graph.vertices()) {
    json ops = json::array();
    for (int k = 0; k < v.node_ids_size(); ++k) {
      const int id = v.node_ids(k);
      const internal::Node& node = *env.nodes().at(id);
      json op = {{"id", id}, {"name", node.name}, {"kind", node.kind}};
      if (k < v.operator_ids_size()) op["operator_id"] = v.operator_ids(k);
      if (!node.uid.empty()) op["uid"] = node.uid;
      ops.push_back(std::move(op));
    }
    vertices.push_back({{"id", v.id()},
                        {"name", v.name()},
                        {"parallelism", v.parallelism()},
                        {"max_parallelism",
                         v.max_parallelism() > 0 ? v.max_parallelism() : graph.max_parallelism()},
                        {"source", v.is_source()},
                        {"chain", ops}});
  }
  j["vertices"] = vertices;
  json edges = json::array();
  for (const auto& e : graph.edges()) {
    edges.push_back(
        {{"source", e.source_vertex()},
         {"target", e.target_vertex()},
         {"source_operator", e.source_node()},
         {"target_operator", e.target_node()},
         {"partitioner", internal::partitioner_name(PartitionerFromProto(e.partitioner()))}});
  }
  j["edges"] = edges;
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace sluice
