#include "jobmanager/scheduler.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/job_graph.h"
#include "jobmanager/state_assignment.h"
#include "sluice/keys.h"

namespace sluice {

absl::Status Scheduler::ValidateGraph(const proto::JobGraph& g) {
  if (g.vertices_size() == 0) return absl::InvalidArgumentError("the job graph has no vertices");
  if (g.max_parallelism() < 1)
    return absl::InvalidArgumentError("max parallelism must be at least 1");
  for (int i = 0; i < g.vertices_size(); ++i) {
    const auto& v = g.vertices(i);
    if (v.id() != i) return absl::InvalidArgumentError("vertex ids must be 0..n-1 in order");
    if (v.parallelism() < 1) {
      return absl::InvalidArgumentError(absl::StrCat("vertex '", v.name(), "' has parallelism ",
                                                     v.parallelism(), "; it must be at least 1"));
    }
    if (v.parallelism() > g.max_parallelism()) {
      return absl::InvalidArgumentError(absl::StrCat("vertex '", v.name(), "' has parallelism ",
                                                     v.parallelism(), " above max parallelism ",
                                                     g.max_parallelism()));
    }
    if (v.node_ids_size() == 0) return absl::InvalidArgumentError("a vertex has no operators");
  }
  // Operator ids: none (a graph built before them), or one per operator, each unique.
  bool with_ids = false;
  for (const auto& v : g.vertices()) with_ids = with_ids || v.operator_ids_size() > 0;
  std::set<std::string> operator_ids;
  for (const auto& v : g.vertices()) {
    if (!with_ids) break;
    if (v.operator_ids_size() != v.node_ids_size()) {
      return absl::InvalidArgumentError(absl::StrCat("vertex '", v.name(), "' has ",
                                                     v.node_ids_size(), " operators but ",
                                                     v.operator_ids_size(), " operator ids"));
    }
    for (const std::string& id : v.operator_ids()) {
      if (id.empty() || !operator_ids.insert(id).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            "vertex '", v.name(), "' has an empty or repeated operator id '", id, "'"));
      }
    }
  }
  for (const auto& e : g.edges()) {
    if (e.source_vertex() < 0 || e.source_vertex() >= g.vertices_size() || e.target_vertex() < 0 ||
        e.target_vertex() >= g.vertices_size()) {
      return absl::InvalidArgumentError("an edge names a vertex that does not exist");
    }
    if (e.partitioner() == proto::PARTITIONER_UNSPECIFIED ||
        !proto::Partitioner_IsValid(e.partitioner())) {
      return absl::InvalidArgumentError(
          absl::StrCat("an edge has an unknown partitioner (", e.partitioner(), ")"));
    }
    if (e.partitioner() == proto::PARTITIONER_FORWARD &&
        g.vertices(e.source_vertex()).parallelism() !=
            g.vertices(e.target_vertex()).parallelism()) {
      return absl::InvalidArgumentError("a forward edge joins vertices of different parallelism");
    }
  }
  return absl::OkStatus();
}

std::string Scheduler::PartitionId(const std::string& job_id, int edge, int producer, int attempt) {
  return absl::StrCat(job_id, ".e", edge, ".s", producer, ".a", attempt);
}

std::vector<Scheduler::Deployment> Scheduler::BuildDeployments(
    const JobSpec& job, const std::vector<std::string>& slots,
    const std::function<std::string(const std::string&)>& address_of) {
  std::vector<Deployment> out;
  const proto::JobGraph& g = *job.graph;
  std::map<int, int> matched;  // old node id -> node id, for the operators that take state
  if (job.restore) matched = MatchOperators(*job.restore, g);
  for (const auto& v : g.vertices()) {
    std::vector<proto::RestoreGroup> groups;
    if (job.restore) groups = RestoreGroupsOf(*job.restore, matched, g, v.id());
    for (int s = 0; s < v.parallelism(); ++s) {
      const std::string& tm_id = slots[s];
      proto::TaskDeploymentDescriptor tdd;
      proto::ExecutionAttemptId* task = tdd.mutable_task();
      task->set_job_id(job.job_id);
      task->set_vertex_id(v.id());
      task->set_subtask(s);
      task->set_attempt(job.attempt);
      tdd.set_job_name(g.name());
      tdd.set_library_sha256(job.library_sha256);
      for (const auto& a : job.args) tdd.add_args(a);
      *tdd.mutable_graph() = g;
      tdd.mutable_config()->insert(job.config.begin(), job.config.end());
      tdd.set_auto_watermark_interval_ms(job.auto_watermark_interval_ms);
      if (!job.checkpoint_dir.empty()) {
        tdd.set_checkpoint_dir(job.checkpoint_dir);
        tdd.set_exactly_once(job.exactly_once);
      }
      if (job.restore) {
        tdd.set_restore_checkpoint_id(job.restore->checkpoint_id());
        tdd.set_restore_dir(job.restore_dir);
        for (const proto::RestoreGroup& group : groups) *tdd.add_restore_groups() = group;
      }
      for (int e = 0; e < g.edges_size(); ++e) {
        const auto& edge = g.edges(e);
        if (edge.source_vertex() == v.id()) {
          auto* o = tdd.add_outputs();
          o->set_partition_id(PartitionId(job.job_id, e, s, job.attempt));
          o->set_edge_index(e);
          o->set_num_subpartitions(g.vertices(edge.target_vertex()).parallelism());
        }
        if (edge.target_vertex() == v.id()) {
          int producers = g.vertices(edge.source_vertex()).parallelism();
          SubtaskRange range{0, producers};
          if (edge.partitioner() == proto::PARTITIONER_FORWARD ||
              edge.partitioner() == proto::PARTITIONER_RESCALE) {
            range = pointwise_producers(s, producers, v.parallelism());
          }
          auto* gate = tdd.add_inputs();
          gate->set_target_input(edge.target_input());
          for (int p = range.begin; p < range.end; ++p) {
            const std::string& producer_tm = slots[p];
            auto* ch = gate->add_channels();
            ch->set_partition_id(PartitionId(job.job_id, e, p, job.attempt));
            ch->set_subpartition(s);
            ch->set_producer_tm_id(producer_tm);
            ch->set_producer_address(address_of(producer_tm));
            ch->set_local(producer_tm == tm_id);
          }
        }
      }
      out.push_back(Deployment{tm_id, std::move(tdd)});
    }
  }
  return out;
}

}  // namespace sluice
