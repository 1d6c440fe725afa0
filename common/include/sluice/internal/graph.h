// The graph a job's entry point builds (stream nodes and their inputs), and the operator chain of
// one subtask that the runtime asks the job library to build from it.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>
#include <vector>

#include "sluice/functions.h"
#include "sluice/internal/collectors.h"
#include "sluice/internal/operator.h"
#include "sluice/internal/runtime.h"

namespace sluice::internal {

// Makes the collector that writes the upstream's records to one edge; the last argument is the
// chain's record timestamp on an edge that carries timestamps, else null.
using WriterFactory =
    std::function<ErasedCollector(RecordWriter*, Partitioner, const TaskInfo&, const int64_t*)>;

// One input of a node: the upstream node, how records are partitioned, and how the upstream's
// typed records are written to the network for this edge.
struct InputSpec {
  int node = -1;
  Partitioner partitioner = Partitioner::kDefault;
  WriterFactory make_writer;
  // The records carry timestamps over the network (the upstream's records have them).
  bool timestamped = false;
  // For a two-input node: 0 for the first input's streams, 1 for the second's.
  int logical_input = 0;
  // For the stream of a side output: the tag's id and record type (the upstream's side output,
  // not its main output, feeds this input).
  std::string side_tag;
  const std::type_info* side_type = nullptr;
};

class Node {
 public:
  virtual ~Node();
  int id = -1;
  std::string name;
  // "source", "map", "flat_map", "filter", "reduce", "process", "sink", ...: part of the
  // operator's structural id (common/operator_ids.h), so a kind is never renamed.
  std::string kind;
  // The id the operator's state is known by (DataStream::uid); empty: its structural id.
  std::string uid;
  int parallelism = 0;             // 0: the job's default
  bool fixed_parallelism = false;  // non-parallel sources always run with parallelism 1
  bool chaining = true;
  // The node's records carry timestamps (event time): set after assign_timestamps_and_watermarks
  // and on what follows it, so that network edges keep them.
  bool timestamped = false;
  std::vector<InputSpec> inputs;

  bool is_source() const { return inputs.empty(); }
  // Creates this node's operator for one subtask; `out` is its Collector<OUT>* (never null).
  virtual std::unique_ptr<OperatorBase> create(void* out) const = 0;
  // One Collector<OUT> that forwards to all of `outs` (discards when empty).
  virtual ErasedCollector fan_out(const std::vector<void*>& outs) const = 0;
  // Deserializes the records of a buffer that arrived on input `input` into `in`, a
  // Collector<IN>*, setting `*timestamp` to each record's timestamp first. Adds the number of
  // records passed on to `count` (when not null), also when one of them throws.
  virtual void read_buffer(int input, std::string_view bytes, void* in, int64_t* timestamp,
                           SingleWriterCounter* count) const = 0;
};

// Sets `node`'s uid; throws std::invalid_argument naming the operator when `uid` is empty.
void set_uid(Node& node, std::string uid);

// A node whose operator emits records of type OUT; `Make` is called as make(out, name) with the
// operator's Collector<OUT>* and the node's name, and returns the operator.
template <class OUT, class Make>
class TypedNode : public Node {
 public:
  explicit TypedNode(Make make) : make_(std::move(make)) {}
  std::unique_ptr<OperatorBase> create(void* out) const override {
    return make_(static_cast<Collector<OUT>*>(out), name);
  }
  ErasedCollector fan_out(const std::vector<void*>& outs) const override {
    if (outs.empty()) return erase_collector<OUT>(std::make_unique<DiscardCollector<OUT>>());
    std::vector<Collector<OUT>*> typed;
    for (void* o : outs) typed.push_back(static_cast<Collector<OUT>*>(o));
    auto c = std::make_unique<FanOutCollector<OUT>>(std::move(typed));
    OutputCounters* counters = &c->counters;
    return erase_collector<OUT>(std::move(c), counters);
  }
  void read_buffer(int, std::string_view, void*, int64_t*, SingleWriterCounter*) const override {
    throw std::logic_error("node '" + name + "' has no network input");
  }

 private:
  Make make_;
};

// Records counted at once by read_records: few enough that a slow operator's count (and the
// rates metered from it) moves smoothly, many enough that counting costs nothing per record.
inline constexpr int64_t kRecordsCountedAtOnce = 128;

// Deserializes a buffer of records (each after its timestamp when `timestamped`) into `c`,
// adding how many were passed on to `count` (when not null) every kRecordsCountedAtOnce records,
// at the end, and when one throws. (A buffer holds thousands of small records: counted only per
// buffer, a sink taking a millisecond a record would count in steps of seconds.)
template <class IN>
void read_records(bool timestamped, std::string_view bytes, Collector<IN>* c, int64_t* timestamp,
                  SingleWriterCounter* count) {
  DataInput di(bytes);
  *timestamp = kNoTimestamp;
  int64_t n = 0;  // passed on and not counted yet
  try {
    while (!di.at_end()) {
      if (timestamped) Serializer<int64_t>::read(di, *timestamp);
      IN v{};
      Serializer<IN>::read(di, v);
      ++n;
      c->emit(std::move(v));
      if (n == kRecordsCountedAtOnce) {
        if (count) count->add(n);
        n = 0;
      }
    }
  } catch (...) {
    if (count) count->add(n);
    throw;
  }
  if (count) count->add(n);
}

template <class IN, class OUT, class Make>
class OneInputNode final : public TypedNode<OUT, Make> {
 public:
  using TypedNode<OUT, Make>::TypedNode;
  void read_buffer(int input, std::string_view bytes, void* in, int64_t* timestamp,
                   SingleWriterCounter* count) const override {
    read_records<IN>(this->inputs.at(static_cast<size_t>(input)).timestamped, bytes,
                     static_cast<Collector<IN>*>(in), timestamp, count);
  }
};

template <class IN1, class IN2, class OUT, class Make>
class TwoInputNode final : public TypedNode<OUT, Make> {
 public:
  using TypedNode<OUT, Make>::TypedNode;
  void read_buffer(int input, std::string_view bytes, void* in, int64_t* timestamp,
                   SingleWriterCounter* count) const override {
    const InputSpec& spec = this->inputs.at(static_cast<size_t>(input));
    auto* inputs = static_cast<typename TwoInputOperator<IN1, IN2>::Inputs*>(in);
    if (spec.logical_input == 0) {
      read_records<IN1>(spec.timestamped, bytes, inputs->first, timestamp, count);
    } else {
      read_records<IN2>(spec.timestamped, bytes, inputs->second, timestamp, count);
    }
  }
};

// Sinks produce nothing; Unit stands for their output type.
struct Unit {};

// Where an edge that leaves a chain writes: bound by the runtime for one subtask.
struct OutputBinding {
  int source_node = -1;
  int target_node = -1;
  int target_input = 0;
  Partitioner partitioner = Partitioner::kForward;  // resolved, never kDefault
  RecordWriter* writer = nullptr;
};

// The operators of one subtask, head first, with the collectors that connect them.
class OperatorChain final : public ChainTask {
 public:
  // Builds the chain of one subtask from the job's `nodes`: `chain` lists node ids head first;
  // `outputs` binds every network edge leaving the chain. Throws std::invalid_argument on an
  // inconsistent spec.
  static std::unique_ptr<ChainTask> build(const std::vector<std::unique_ptr<Node>>& nodes,
                                          const std::vector<int>& chain,
                                          const std::vector<OutputBinding>& outputs,
                                          TaskRuntime& rt);

  OperatorChain(TaskRuntime& rt, const Node* head) : rt_(rt), head_(head) {}
  void initialize_state(const std::vector<OperatorSnapshot>* restored) override;
  void open() override;
  bool is_source() const override;
  void run_source() override;
  void process_buffer(int input, std::string_view bytes) override;
  void end_input() override;
  void close() override;
  void cancel() override;
  std::vector<OperatorSnapshot> snapshot_state(int64_t checkpoint_id) override;
  void notify_checkpoint_complete(int64_t checkpoint_id) override;
  // Watermarks enter at the head and each operator passes them on (see OperatorBase).
  void process_watermark(int64_t watermark) override;
  void process_watermark_status(bool idle) override;
  void on_processing_time(int64_t now_ms) override;
  int64_t num_late_records_dropped() const override;

 private:
  TaskRuntime& rt_;
  const Node* head_;
  ChainContext context_;
  void* head_input_ = nullptr;
  SingleWriterCounter* head_in_count_ = nullptr;    // counted per buffer (metrics; may be null)
  std::vector<std::unique_ptr<OperatorBase>> ops_;  // head first
  std::vector<int> node_ids_;                       // ops_[k] belongs to node node_ids_[k]
  std::vector<ErasedCollector> collectors_;
};

}  // namespace sluice::internal
