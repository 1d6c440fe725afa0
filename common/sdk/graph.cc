// The operator chain of one subtask: built from the job's nodes, driven by the runtime.
#include "sluice/internal/graph.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>

namespace sluice::internal {

std::unique_ptr<ChainTask> OperatorChain::build(const std::vector<std::unique_ptr<Node>>& nodes,
                                                const std::vector<int>& chain,
                                                const std::vector<OutputBinding>& outputs,
                                                TaskRuntime& rt) {
  if (chain.empty()) throw std::invalid_argument("empty chain");
  for (int id : chain) {
    if (id < 0 || id >= static_cast<int>(nodes.size())) {
      throw std::invalid_argument("chain names node " + std::to_string(id) + " but the job has " +
                                  std::to_string(nodes.size()) + " nodes");
    }
  }
  // The chain is a tree listed in pre-order: every operator but the head reads the output of
  // one before it, its parent.
  const size_t n = chain.size();
  std::vector<int> parent(n, -1);
  for (size_t k = 1; k < n; ++k) {
    const Node& node = *nodes[chain[k]];
    if (node.inputs.size() == 1) {
      auto it = std::find(chain.begin(), chain.begin() + static_cast<std::ptrdiff_t>(k),
                          node.inputs[0].node);
      if (it != chain.begin() + static_cast<std::ptrdiff_t>(k)) {
        parent[k] = static_cast<int>(it - chain.begin());
      }
    }
    if (parent[k] < 0) {
      throw std::invalid_argument("chained operator '" + node.name +
                                  "' does not read one operator before it in the chain");
    }
  }
  auto task = std::make_unique<OperatorChain>(rt, nodes[chain.front()].get());
  std::vector<std::unique_ptr<OperatorBase>> ops(n);
  // A consumer of a node's side output (rather than its main output) is bound to the tag.
  struct SideTarget {
    const InputSpec* spec;
    void* collector;
  };
  for (size_t k = n; k-- > 0;) {  // the operators chained after k are built before it
    const Node& node = *nodes[chain[k]];
    OperatorCounters* counters = rt.operator_counters(node.id);
    if (counters) counters->parent.store(parent[k]);
    std::vector<void*> targets;
    // By target: the network edge it writes (>= 0), or -1 - the index of a chained operator.
    std::vector<int> target_edges;
    std::vector<SideTarget> side_targets;
    std::vector<OperatorBase*> chained;
    std::vector<RecordWriter*> writers;
    for (size_t j = k + 1; j < n; ++j) {
      if (parent[j] != static_cast<int>(k)) continue;
      chained.push_back(ops[j].get());
      const InputSpec& spec = nodes[chain[j]]->inputs.at(0);
      if (spec.side_tag.empty()) {
        targets.push_back(ops[j]->input());
        target_edges.push_back(-1 - static_cast<int>(j));
      } else {
        side_targets.push_back({&spec, ops[j]->input()});
      }
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      const OutputBinding& b = outputs[i];
      if (b.source_node != node.id) continue;
      const Node& target = *nodes.at(b.target_node);
      const InputSpec& spec = target.inputs.at(b.target_input);
      ErasedCollector c = spec.make_writer(b.writer, b.partitioner, rt.info(),
                                           spec.timestamped ? &task->context_.timestamp : nullptr);
      if (c.counters) c.counters->records = rt.edge_records_out(i);
      if (spec.side_tag.empty()) {
        targets.push_back(c.ptr);
        target_edges.push_back(static_cast<int>(i));
      } else {
        side_targets.push_back({&spec, c.ptr});
      }
      writers.push_back(b.writer);
      task->collectors_.push_back(std::move(c));
    }
    // The operator's records out are counted by what forms its output: a chained operator's
    // input, a network edge, or a fan-out (see OperatorCounters).
    void* out;
    if (targets.size() == 1) {
      out = targets[0];
      if (counters && target_edges[0] < 0) counters->out_is_in_of.store(-1 - target_edges[0]);
      if (counters && target_edges[0] >= 0) counters->out_edge.store(target_edges[0]);
    } else {
      ErasedCollector c = node.fan_out(targets);
      out = c.ptr;
      if (counters && c.counters) c.counters->records = &counters->records_out;
      task->collectors_.push_back(std::move(c));
    }
    ops[k] = node.create(out);
    ops[k]->bind(chain[k], &task->context_, std::move(chained), std::move(writers), counters);
    for (const SideTarget& t : side_targets) {
      SideOutputs* side = ops[k]->side_outputs();
      if (!side) {
        throw std::invalid_argument("'" + node.name + "' has no side outputs, but side output '" +
                                    t.spec->side_tag + "' of it is consumed");
      }
      side->bind(t.spec->side_tag, *t.spec->side_type, t.collector);
    }
  }
  task->head_input_ = ops.front()->input();
  // Counted once where it is cheapest: the head's input once per network buffer, and the input
  // of an operator fed alone by a one-to-one operator (a map) not at all, as it equals the map's.
  if (OperatorCounters* head = rt.operator_counters(chain.front());
      head && !nodes[chain.front()]->is_source()) {
    task->head_in_count_ = &head->records_in;
    ops.front()->count_input_elsewhere();
  }
  for (size_t k = 1; k < n; ++k) {
    const int p = parent[k];
    OperatorCounters* prev = rt.operator_counters(chain[static_cast<size_t>(p)]);
    OperatorCounters* mine = rt.operator_counters(chain[k]);
    if (prev && mine && ops[static_cast<size_t>(p)]->one_to_one() &&
        prev->out_is_in_of.load() == static_cast<int>(k)) {
      mine->in_is_in_of.store(p);
      ops[k]->count_input_elsewhere();
    }
  }
  task->ops_ = std::move(ops);
  task->node_ids_ = chain;
  return task;
}

void OperatorChain::initialize_state(const std::vector<OperatorSnapshot>* restored) {
  for (size_t k = ops_.size(); k-- > 0;) {
    const OperatorSnapshot* mine = nullptr;
    if (restored) {
      for (const auto& s : *restored) {
        if (s.node_id == node_ids_[k]) mine = &s;
      }
    }
    ops_[k]->initialize_state(rt_, mine, restored != nullptr);
  }
}

void OperatorChain::open() {
  for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) (*it)->open(rt_);
}

bool OperatorChain::is_source() const { return head_->is_source(); }

void OperatorChain::run_source() { ops_.front()->run(rt_); }

void OperatorChain::process_buffer(int input, std::string_view bytes) {
  head_->read_buffer(input, bytes, head_input_, &context_.timestamp, head_in_count_);
}

void OperatorChain::end_input() {
  for (auto& op : ops_) op->end_input();
}

void OperatorChain::close() {
  for (auto& op : ops_) op->close();
}

void OperatorChain::cancel() {
  if (!ops_.empty()) ops_.front()->cancel();
}

std::vector<OperatorSnapshot> OperatorChain::snapshot_state(int64_t checkpoint_id) {
  std::vector<OperatorSnapshot> out;
  for (size_t k = 0; k < ops_.size(); ++k) {
    OperatorSnapshot s;
    s.node_id = node_ids_[k];
    ops_[k]->snapshot_state(checkpoint_id, s);
    if (!s.empty()) out.push_back(std::move(s));
  }
  return out;
}

void OperatorChain::notify_checkpoint_complete(int64_t checkpoint_id) {
  for (auto& op : ops_) op->notify_checkpoint_complete(checkpoint_id);
}

void OperatorChain::process_watermark(int64_t watermark) {
  ops_.front()->process_watermark(watermark);
}

void OperatorChain::process_watermark_status(bool idle) {
  ops_.front()->process_watermark_status(idle);
}

void OperatorChain::on_processing_time(int64_t now_ms) {
  for (auto& op : ops_) op->on_processing_time(now_ms);
}

int64_t OperatorChain::num_late_records_dropped() const {
  int64_t n = 0;
  for (const auto& op : ops_) n += op->num_late_records_dropped();
  return n;
}

}  // namespace sluice::internal
