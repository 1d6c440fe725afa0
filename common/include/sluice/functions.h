// The interfaces user code implements: collectors, sources, process functions and sinks.
#pragma once

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <utility>
#include <vector>

#include "sluice/core.h"
#include "sluice/internal/runtime.h"
#include "sluice/internal/state_backend.h"
#include "sluice/state.h"
#include "sluice/watermarks.h"

namespace sluice {

namespace internal {
// What every Collector<T> is, so that the engine can own collectors of any type alike.
class CollectorBase {
 public:
  virtual ~CollectorBase();
};
}  // namespace internal

// Receives records. collect() copies or moves the value downstream.
template <class T>
class Collector : public internal::CollectorBase {
 public:
  void collect(T&& v) { emit(std::move(v)); }
  void collect(const T& v) { emit(T(v)); }
  virtual void emit(T&& v) = 0;
};

// Names a side output of records of type T: a function emits to it with ctx.output(tag, value),
// and DataStream::get_side_output(tag) is the stream of what it emitted.
template <class T>
class OutputTag {
 public:
  using value_type = T;
  explicit OutputTag(std::string id) : id_(std::move(id)) {
    if (id_.empty()) throw std::invalid_argument("an OutputTag needs a non-empty id");
  }
  const std::string& id() const { return id_; }

 private:
  std::string id_;
};

// The side outputs of one operator, by tag id; the runtime binds those that have consumers.
// What goes to a tag nothing consumes is dropped.
class SideOutputs {
 public:
  // `collector` is a Collector<T>* for the tag's T, `type` is typeid(T).
  void bind(const std::string& id, const std::type_info& type, void* collector) {
    outs_.push_back(Out{id, &type, collector});
  }
  bool empty() const { return outs_.empty(); }
  template <class T>
  void emit(const OutputTag<T>& tag, T&& v) {
    Collector<T>* last = nullptr;
    for (const Out& o : outs_) {
      if (o.id != tag.id()) continue;
      if (*o.type != typeid(T)) {
        throw std::logic_error("side output '" + tag.id() + "' is used with two record types");
      }
      if (last) last->emit(T(v));
      last = static_cast<Collector<T>*>(o.collector);
    }
    if (last) last->emit(std::move(v));
  }

 private:
  struct Out {
    std::string id;
    const std::type_info* type;
    void* collector;
  };
  std::vector<Out> outs_;
};

enum class TimeDomain { kEventTime, kProcessingTime };

// Timers of a function on a keyed stream (Flink's TimerService). A timer belongs to the current
// key; there is at most one per key and time, so registering it again does nothing. Event-time
// timers fire when the watermark reaches their time, processing-time timers when the clock
// does; both fire in time order on the task's thread, between records, and both are stored in
// checkpoints (processing-time timers that came due meanwhile fire right after a restore).
class TimerService {
 public:
  virtual ~TimerService() = default;
  virtual int64_t current_processing_time() const = 0;
  virtual int64_t current_watermark() const = 0;
  virtual void register_event_time_timer(int64_t time) = 0;
  virtual void register_processing_time_timer(int64_t time) = 0;
  virtual void delete_event_time_timer(int64_t time) = 0;
  virtual void delete_processing_time_timer(int64_t time) = 0;
};

// What a function can see of the subtask running it, and its state: in functions on a keyed
// stream, keyed state (see sluice/state.h); in every function with a RuntimeContext, operator
// list state. The get_*_state calls belong in open(); each returns the same state object for the
// same name every time, filled with what was restored under that name.
class RuntimeContext {
 public:
  explicit RuntimeContext(internal::TaskRuntime& rt, internal::KeyedStateBackend* keyed = nullptr,
                          internal::OperatorStateStore* operator_state = nullptr,
                          bool is_restored = false)
      : rt_(rt), keyed_(keyed), operator_state_(operator_state), is_restored_(is_restored) {}
  const TaskInfo& task_info() const { return rt_.info(); }
  int index_of_this_subtask() const { return rt_.info().subtask_index; }
  int number_of_parallel_subtasks() const { return rt_.info().parallelism; }
  bool cancelled() const { return rt_.cancelled(); }
  // True when the subtask starts from a checkpoint rather than afresh, even if nothing was
  // stored for this function: after a restore at a higher parallelism a subtask may get no
  // elements of a list, and must then not start over.
  bool is_restored() const { return is_restored_; }

  template <class T>
  ValueState<T>& get_state(const ValueStateDescriptor<T>& d) {
    return keyed().template get<ValueState<T>>(d);
  }
  template <class T>
  ListState<T>& get_list_state(const ListStateDescriptor<T>& d) {
    return keyed().template get<ListState<T>>(d);
  }
  template <class K, class V>
  MapState<K, V>& get_map_state(const MapStateDescriptor<K, V>& d) {
    return keyed().template get<MapState<K, V>>(d);
  }
  template <class T>
  ReducingState<T>& get_reducing_state(const ReducingStateDescriptor<T>& d) {
    return keyed().template get<ReducingState<T>>(d);
  }
  template <class IN, class ACC, class OUT>
  AggregatingState<IN, ACC, OUT>& get_aggregating_state(
      const AggregatingStateDescriptor<IN, ACC, OUT>& d) {
    return keyed().template get<AggregatingState<IN, ACC, OUT>>(d);
  }
  // Operator state (Flink's CheckpointedFunction with an operator ListState): a list this
  // subtask keeps, stored element by element at every checkpoint. Update it in the function's
  // snapshot_state() hook (or as it goes); after a restore at another parallelism the elements
  // of all old subtasks are spread over the new ones.
  template <class T>
  OperatorListState<T>& get_operator_list_state(const ListStateDescriptor<T>& d) {
    if (!operator_state_) {
      throw std::logic_error("operator state is not available to this function");
    }
    return operator_state_->get_list_state(d);
  }
  // Operator state every subtask gets whole after a restore (Flink's union list state): the
  // elements of all old subtasks. A Kafka source keeps its partitions' offsets in one, and each
  // subtask takes those of the partitions it is assigned.
  template <class T>
  OperatorListState<T>& get_union_list_state(const ListStateDescriptor<T>& d) {
    if (!operator_state_) {
      throw std::logic_error("operator state is not available to this function");
    }
    return operator_state_->get_list_state(d, internal::ListDistribution::kUnion);
  }

 private:
  internal::KeyedStateBackend& keyed() {
    if (!keyed_) {
      throw std::logic_error(
          "keyed state is only available in functions on a keyed stream "
          "(after key_by)");
    }
    return *keyed_;
  }
  internal::TaskRuntime& rt_;
  internal::KeyedStateBackend* keyed_;
  internal::OperatorStateStore* operator_state_;
  bool is_restored_;
};

// A user source, in the style of Flink's SourceFunction: run() emits records until the input
// ends or cancel() is called (from another thread). One copy of the function runs per subtask;
// a source is parallel when given a parallelism above 1 (use the RuntimeContext to split work).
//
// Checkpoints: a source that keeps its position in operator state (RuntimeContext::
// get_operator_list_state) rewinds to it on a restore. A checkpoint can be taken at the start of
// collect() (and of flush()), before the record is emitted: the position snapshot_state()
// stores must point at the record being collected, so that it and everything after it are
// emitted again after a restore, and nothing before it. snapshot_state() runs on the thread of
// run(), from inside collect(), so it sees run()'s progress without locking.
template <class T>
class SourceFunction {
 public:
  using value_type = T;
  class SourceContext {
   public:
    virtual ~SourceContext() = default;
    // May take a checkpoint (calling snapshot_state()) before emitting `v`.
    virtual void collect(T&& v) = 0;
    void collect(const T& v) { collect(T(v)); }
    // collect(), giving the record the event timestamp `timestamp` (ms). For sources that know
    // their records' times (Kafka) and emit their own watermarks through watermark_output().
    virtual void collect_with_timestamp(T&& v, int64_t timestamp) = 0;
    // Where the source emits watermarks and idleness; watermarks that do not advance are
    // ignored. A source that emits none leaves event time to a timestamp assigner downstream.
    virtual WatermarkOutput& watermark_output() = 0;
    // Sends what was collected so far downstream at once. Call it before waiting for input
    // (a socket, a queue, a sleep): otherwise those records wait for the next collect(). May
    // take a checkpoint, like collect().
    virtual void flush() {}
  };
  virtual ~SourceFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void run(SourceContext& ctx) = 0;
  virtual void cancel() { running_.store(false); }
  virtual void close() {}
  // At checkpoint `checkpoint_id`, before the operator state is stored: bring the operator
  // state up to date.
  virtual void snapshot_state(int64_t /*checkpoint_id*/) {}
  // Checkpoint `checkpoint_id` is complete.
  virtual void notify_checkpoint_complete(int64_t /*checkpoint_id*/) {}
  // False for a source that must run as one subtask (a socket): its parallelism is fixed at 1.
  virtual bool is_parallel() const { return true; }

 protected:
  bool is_running() const { return running_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> running_{true};

 public:
  SourceFunction() = default;
  SourceFunction(const SourceFunction&) : running_(true) {}
  SourceFunction& operator=(const SourceFunction&) { return *this; }
};

// The part of every function context that emits to side outputs.
class SideOutputContext {
 public:
  virtual ~SideOutputContext() = default;
  // Emits `v` to the side output `tag`.
  template <class T>
  void output(const OutputTag<T>& tag, T v) {
    side_outputs().emit(tag, std::move(v));
  }

 protected:
  virtual SideOutputs& side_outputs() = 0;
};

// What a function on a plain stream sees beside a record (ProcessFunction::Context,
// CoProcessFunction::Context).
class ElementContext : public SideOutputContext {
 public:
  // The record's timestamp, or kNoTimestamp.
  virtual int64_t timestamp() const = 0;
  virtual int64_t current_processing_time() const = 0;
  virtual int64_t current_watermark() const = 0;
};

// What a function on a keyed stream sees beside a record (KeyedProcessFunction::Context,
// KeyedCoProcessFunction::Context); in on_timer, also the timer's time domain.
template <class K>
class KeyedContext : public SideOutputContext {
 public:
  virtual const K& current_key() const = 0;
  // The record's timestamp (in on_timer: the timer's time for event time), or kNoTimestamp.
  virtual int64_t timestamp() const = 0;
  virtual TimerService& timer_service() = 0;
};
template <class K>
class KeyedOnTimerContext : public KeyedContext<K> {
 public:
  virtual TimeDomain time_domain() const = 0;
};

// A function over a keyed stream. process_element() sees one record and its key; end_input() is
// called once when a bounded input has ended, and may emit final results.
template <class K, class IN, class OUT>
class KeyedProcessFunction {
 public:
  using key_type = K;
  using input_type = IN;
  using output_type = OUT;
  using Context = KeyedContext<K>;
  using OnTimerContext = KeyedOnTimerContext<K>;
  virtual ~KeyedProcessFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void process_element(const IN& value, Context& ctx, Collector<OUT>& out) = 0;
  // A timer of the current key fired; state accesses refer to that key.
  virtual void on_timer(int64_t /*time*/, OnTimerContext& /*ctx*/, Collector<OUT>& /*out*/) {}
  // When a bounded input has ended: called once for every key that has keyed state in this
  // subtask, with state accesses referring to that key (in key-group order), then end_input().
  virtual void end_input_of_key(const K& /*key*/, Collector<OUT>&) {}
  virtual void end_input(Collector<OUT>&) {}
  virtual void close() {}
  // At checkpoint `checkpoint_id`, before state is stored (keyed state is stored as it is;
  // bring operator state up to date here).
  virtual void snapshot_state(int64_t /*checkpoint_id*/) {}
  // Checkpoint `checkpoint_id` is complete.
  virtual void notify_checkpoint_complete(int64_t /*checkpoint_id*/) {}
};

// A function over a plain stream, with the same hooks as KeyedProcessFunction but no key and
// no timers.
template <class IN, class OUT>
class ProcessFunction {
 public:
  using input_type = IN;
  using output_type = OUT;
  using Context = ElementContext;
  virtual ~ProcessFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void process_element(const IN& value, Context& ctx, Collector<OUT>& out) = 0;
  virtual void end_input(Collector<OUT>&) {}
  virtual void close() {}
  // At checkpoint `checkpoint_id`, before the operator state is stored: bring it up to date.
  virtual void snapshot_state(int64_t /*checkpoint_id*/) {}
  // Checkpoint `checkpoint_id` is complete.
  virtual void notify_checkpoint_complete(int64_t /*checkpoint_id*/) {}
};

// A function over two connected streams (DataStream::connect): records of the first input go to
// process_element1(), of the second to process_element2(), one at a time on one thread.
template <class IN1, class IN2, class OUT>
class CoProcessFunction {
 public:
  using output_type = OUT;
  using Context = ElementContext;
  virtual ~CoProcessFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void process_element1(const IN1& value, Context& ctx, Collector<OUT>& out) = 0;
  virtual void process_element2(const IN2& value, Context& ctx, Collector<OUT>& out) = 0;
  virtual void end_input(Collector<OUT>&) {}
  virtual void close() {}
  virtual void snapshot_state(int64_t /*checkpoint_id*/) {}
  virtual void notify_checkpoint_complete(int64_t /*checkpoint_id*/) {}
};

// A function over two connected streams keyed alike (connect(...).key_by(ks1, ks2)): records of
// both inputs with the same key share that key's state and timers.
template <class K, class IN1, class IN2, class OUT>
class KeyedCoProcessFunction {
 public:
  using key_type = K;
  using output_type = OUT;
  using Context = KeyedContext<K>;
  using OnTimerContext = KeyedOnTimerContext<K>;
  virtual ~KeyedCoProcessFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void process_element1(const IN1& value, Context& ctx, Collector<OUT>& out) = 0;
  virtual void process_element2(const IN2& value, Context& ctx, Collector<OUT>& out) = 0;
  // A timer of the current key fired; state accesses refer to that key.
  virtual void on_timer(int64_t /*time*/, OnTimerContext& /*ctx*/, Collector<OUT>& /*out*/) {}
  virtual void end_input(Collector<OUT>&) {}
  virtual void close() {}
  virtual void snapshot_state(int64_t /*checkpoint_id*/) {}
  virtual void notify_checkpoint_complete(int64_t /*checkpoint_id*/) {}
};

// ---------------------------------------------------------------------------------------------
// Broadcast functions: a data stream connected with a broadcast stream (DataStream::broadcast),
// as Flink's BroadcastProcessFunction. Every subtask gets every record of the broadcast side
// (rules, configuration) and keeps what it needs in broadcast state, a map that only the
// broadcast side may change; the data side reads it. Checkpoints store the broadcast state, and
// a restore at any parallelism gives every subtask a copy.

// What both sides of a broadcast function see beside a record.
class BroadcastContextBase : public SideOutputContext {
 public:
  // The record's timestamp (in on_timer: the timer's time for event time), or kNoTimestamp.
  virtual int64_t timestamp() const = 0;
  virtual int64_t current_processing_time() const = 0;
  // The operator's input watermark: the lower of its two inputs'.
  virtual int64_t current_watermark() const = 0;

 protected:
  virtual internal::BroadcastStates& broadcast_states() = 0;
};

// The data side's context: the broadcast states can only be read.
class BroadcastReadOnlyContext : public BroadcastContextBase {
 public:
  // The broadcast state of `d`, which must be one of the descriptors given to broadcast() (else
  // std::invalid_argument).
  template <class K, class V>
  const ReadOnlyBroadcastState<K, V>& get_broadcast_state(const MapStateDescriptor<K, V>& d) {
    return broadcast_states().get(d);
  }
};

// The broadcast side's context: the broadcast states can be changed.
class BroadcastContext : public BroadcastContextBase {
 public:
  // As BroadcastReadOnlyContext::get_broadcast_state, writable.
  template <class K, class V>
  BroadcastState<K, V>& get_broadcast_state(const MapStateDescriptor<K, V>& d) {
    return broadcast_states().get(d);
  }
};

// The data side's context of a keyed broadcast function: also the record's key and timers.
template <class K>
class KeyedBroadcastReadOnlyContext : public BroadcastReadOnlyContext {
 public:
  virtual const K& current_key() const = 0;
  virtual TimerService& timer_service() = 0;
};
template <class K>
class KeyedBroadcastOnTimerContext : public KeyedBroadcastReadOnlyContext<K> {
 public:
  virtual TimeDomain time_domain() const = 0;
};

// The broadcast side's context of a keyed broadcast function. A broadcast record has no key, so
// keyed state is reached only through apply_to_keyed_state, and there are no timers.
template <class K>
class KeyedBroadcastContext : public BroadcastContext {
 public:
  // Calls fn(const K& key, S& state) for every key of this subtask that has an entry in the keyed
  // state `d` declares (S: ValueState<T> for a ValueStateDescriptor<T>, and so on), in key-group
  // order, with state accesses referring to that key; `fn` may read, change and clear it.
  template <class D, class Fn>
  void apply_to_keyed_state(const D& d, Fn&& fn) {
    using S = typename state_of_descriptor<D>::type;
    S& state = keyed_state_backend().template get<S>(d);
    keyed_state_backend().for_each_key_of(
        d.name, [&](const std::string& key) { fn(deserialize<K>(key), state); });
  }

 protected:
  virtual internal::KeyedStateBackend& keyed_state_backend() = 0;
};

// A function over a data stream connected with a broadcast stream (data.connect(broadcast)):
// records of the data stream go to process_element(), which reads the broadcast state; records of
// the broadcast stream go to process_broadcast_element() in every subtask, which may change it.
// One record at a time, on one thread.
template <class IN1, class IN2, class OUT>
class BroadcastProcessFunction {
 public:
  using output_type = OUT;
  using ReadOnlyContext = BroadcastReadOnlyContext;
  using Context = BroadcastContext;
  virtual ~BroadcastProcessFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void process_element(const IN1& value, ReadOnlyContext& ctx, Collector<OUT>& out) = 0;
  virtual void process_broadcast_element(const IN2& value, Context& ctx, Collector<OUT>& out) = 0;
  virtual void end_input(Collector<OUT>&) {}
  virtual void close() {}
  // At checkpoint `checkpoint_id`, before state is stored (the broadcast state is stored as it
  // is; bring other operator state up to date here).
  virtual void snapshot_state(int64_t /*checkpoint_id*/) {}
  virtual void notify_checkpoint_complete(int64_t /*checkpoint_id*/) {}
};

// A function over a keyed stream connected with a broadcast stream (keyed.connect(broadcast)):
// the data side has the keyed state and timers of its record's key, as a KeyedProcessFunction,
// and reads the broadcast state; the broadcast side changes the broadcast state and may visit
// the keyed state of every key (apply_to_keyed_state).
template <class K, class IN1, class IN2, class OUT>
class KeyedBroadcastProcessFunction {
 public:
  using key_type = K;
  using output_type = OUT;
  using ReadOnlyContext = KeyedBroadcastReadOnlyContext<K>;
  using Context = KeyedBroadcastContext<K>;
  using OnTimerContext = KeyedBroadcastOnTimerContext<K>;
  virtual ~KeyedBroadcastProcessFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void process_element(const IN1& value, ReadOnlyContext& ctx, Collector<OUT>& out) = 0;
  virtual void process_broadcast_element(const IN2& value, Context& ctx, Collector<OUT>& out) = 0;
  // A timer of the current key fired; state accesses refer to that key.
  virtual void on_timer(int64_t /*time*/, OnTimerContext& /*ctx*/, Collector<OUT>& /*out*/) {}
  virtual void end_input(Collector<OUT>&) {}
  virtual void close() {}
  virtual void snapshot_state(int64_t /*checkpoint_id*/) {}
  virtual void notify_checkpoint_complete(int64_t /*checkpoint_id*/) {}
};

// A user sink: invoke() is called once per record.
template <class T>
class SinkFunction {
 public:
  virtual ~SinkFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void invoke(const T& value) = 0;
  virtual void close() {}
  // At checkpoint `checkpoint_id`, before the operator state is stored: bring it up to date.
  virtual void snapshot_state(int64_t /*checkpoint_id*/) {}
  // Checkpoint `checkpoint_id` is complete: a sink that stages its output per checkpoint
  // (two-phase commit) publishes what the checkpoint covers.
  virtual void notify_checkpoint_complete(int64_t /*checkpoint_id*/) {}
};

// A sink that drops every record (Flink's DiscardingSink), for tests and benchmarks.
template <class T>
class DiscardingSink final : public SinkFunction<T> {
 public:
  void invoke(const T&) override {}
};

}  // namespace sluice
