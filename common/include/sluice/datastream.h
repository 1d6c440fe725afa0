// The DataStream API: StreamExecutionEnvironment, DataStream<T>, KeyedStream<T, K>.
//
// A job's entry point calls these to describe a graph of stream nodes; nothing runs while it
// does. Every process that needs the job (the client, each TaskManager) runs the entry point
// again and gets the same nodes with the same ids, in construction order. The runtime then asks
// the environment to build the typed operator chain of one subtask (build_chain).
//
// Records inside a chain pass as C++ objects (moved, never serialized); across a network edge
// they are serialized with Serializer<T> by the producer's typed partitioner.
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sluice/format.h"
#include "sluice/functions.h"
#include "sluice/keys.h"
#include "sluice/runtime.h"
#include "sluice/serializer.h"
#include "sluice/sources.h"
#include "sluice/timers.h"
#include "sluice/watermarks.h"

namespace sluice {

enum class Partitioner { kDefault, kForward, kRebalance, kRescale, kHash, kBroadcast, kCustom };

inline const char* partitioner_name(Partitioner p) {
  switch (p) {
    case Partitioner::kDefault:
      return "default";
    case Partitioner::kForward:
      return "forward";
    case Partitioner::kRebalance:
      return "rebalance";
    case Partitioner::kRescale:
      return "rescale";
    case Partitioner::kHash:
      return "hash";
    case Partitioner::kBroadcast:
      return "broadcast";
    case Partitioner::kCustom:
      return "custom";
  }
  return "unknown";
}

// Calls into user code: a std::exception becomes an OperatorError naming the operator.
#define SLUICE_USER_CALL(op_name, ...)                           \
  try {                                                          \
    __VA_ARGS__;                                                 \
  } catch (const ::sluice::OperatorError&) {                     \
    throw;                                                       \
  } catch (const ::sluice::TaskCancelled&) {                     \
    throw;                                                       \
  } catch (const std::exception& e) {                            \
    throw ::sluice::OperatorError(op_name, e.what());            \
  } catch (...) {                                                \
    throw ::sluice::OperatorError(op_name, "unknown exception"); \
  }

// ---------------------------------------------------------------------------------------------
// Operators: the typed objects of one subtask.

// What the operators of one chain share: the timestamp of the record being passed down the
// chain (records pass as plain objects; an operator that gives a record a timestamp sets it here
// before emitting, and the operators after it read it).
struct ChainContext {
  int64_t timestamp = kNoTimestamp;
};

class OperatorBase {
 public:
  explicit OperatorBase(std::string name) : name_(std::move(name)) {}
  virtual ~OperatorBase() = default;
  // Before open(): `restored` is this operator's part of the checkpoint the subtask starts
  // from, or null (a fresh start, or nothing stored for this operator); `is_restored` tells
  // whether the subtask starts from a checkpoint at all.
  virtual void initialize_state(TaskRuntime&, const OperatorSnapshot* /*restored*/,
                                bool /*is_restored*/) {}
  virtual void open(TaskRuntime&) {}
  virtual void end_input() {}
  virtual void close() {}
  // The operator's input as a Collector<IN>*, or nullptr for a source.
  virtual void* input() { return nullptr; }
  // For sources: emits until the input ends or the task is cancelled.
  virtual void run(TaskRuntime&) {}
  // For sources: asks run() to return. Called from another thread.
  virtual void cancel() {}
  // Writes the operator's state at a checkpoint into `out` (its node_id is set already).
  virtual void snapshot_state(int64_t /*checkpoint_id*/, OperatorSnapshot& /*out*/) {}
  virtual void notify_checkpoint_complete(int64_t /*checkpoint_id*/) {}
  // The operator's input watermark advanced (or its inputs went idle, or active again): fire
  // what is due and pass it on. By default it is passed on at once.
  virtual void process_watermark(int64_t watermark) { output_watermark(watermark); }
  virtual void process_watermark_status(bool idle) { output_watermark_status(idle); }
  // The processing-time callback the chain asked for is due (it comes to every operator of the
  // chain; each asks again for the next time it needs, see TaskRuntime).
  virtual void on_processing_time(int64_t /*now_ms*/) {}
  // The operator's side outputs, or nullptr for an operator without any.
  virtual SideOutputs* side_outputs() { return nullptr; }
  // Records dropped for lateness so far (window operators).
  virtual int64_t num_late_records_dropped() const { return 0; }
  const std::string& name() const { return name_; }
  // The id of the operator's node in the job graph.
  int node_id() const { return node_id_; }
  // The timestamp of the record being processed (kNoTimestamp if it has none).
  int64_t element_timestamp() const { return chain_->timestamp; }

  // Called by build_chain: the operator's node id, the chain's context, the next operator of the
  // chain (or null) and the network outputs of this operator, which watermarks go to.
  void bind(int node_id, ChainContext* chain, OperatorBase* next,
            std::vector<RecordWriter*> writers) {
    node_id_ = node_id;
    chain_ = chain;
    next_ = next;
    writers_ = std::move(writers);
  }

 protected:
  void output_watermark(int64_t watermark) {
    if (next_) next_->process_watermark(watermark);
    for (RecordWriter* w : writers_) w->emit_watermark(watermark);
  }
  void output_watermark_status(bool idle) {
    if (next_) next_->process_watermark_status(idle);
    for (RecordWriter* w : writers_) w->emit_watermark_status(idle);
  }
  // The timestamp that the records emitted next carry.
  void set_element_timestamp(int64_t t) { chain_->timestamp = t; }
  // Restores the chain's record timestamp when it goes out of scope.
  struct TimestampGuard {
    explicit TimestampGuard(OperatorBase* o) : op(o), saved(o->element_timestamp()) {}
    ~TimestampGuard() { op->set_element_timestamp(saved); }
    OperatorBase* op;
    int64_t saved;
  };

  std::string name_;

 private:
  ChainContext* chain_ = nullptr;
  int node_id_ = -1;
  OperatorBase* next_ = nullptr;
  std::vector<RecordWriter*> writers_;
};

// The contexts operators hand to user functions next to a record.
class ElementContextImpl final : public ElementContext {
 public:
  ElementContextImpl(const OperatorBase* op, SideOutputs* side) : op_(op), side_(side) {}
  int64_t timestamp() const override { return op_->element_timestamp(); }
  int64_t current_processing_time() const override { return rt->current_processing_time(); }
  int64_t current_watermark() const override { return watermark; }
  TaskRuntime* rt = nullptr;          // set at open()
  int64_t watermark = kMinWatermark;  // the operator's input watermark

 private:
  SideOutputs& side_outputs() override { return *side_; }
  const OperatorBase* op_;
  SideOutputs* side_;
};

template <class K>
class KeyedContextImpl final : public KeyedOnTimerContext<K> {
 public:
  KeyedContextImpl(const OperatorBase* op, SideOutputs* side) : op_(op), side_(side) {}
  const K& current_key() const override { return key; }
  int64_t timestamp() const override { return op_->element_timestamp(); }
  TimerService& timer_service() override { return *timers; }
  TimeDomain time_domain() const override { return domain; }
  K key{};
  TimeDomain domain = TimeDomain::kEventTime;
  TimerService* timers = nullptr;  // set at open()

 private:
  SideOutputs& side_outputs() override { return *side_; }
  const OperatorBase* op_;
  SideOutputs* side_;
};

template <class IN>
class OneInputOperator : public OperatorBase, public Collector<IN> {
 public:
  using OperatorBase::OperatorBase;
  void* input() override { return static_cast<Collector<IN>*>(this); }
};

// An operator with two inputs of types IN1 and IN2 (connected streams). Its input() is an
// Inputs: one collector per input, which call emit1() and emit2().
template <class IN1, class IN2>
class TwoInputOperator : public OperatorBase {
 public:
  struct Inputs {
    Collector<IN1>* first;
    Collector<IN2>* second;
  };
  explicit TwoInputOperator(std::string name)
      : OperatorBase(std::move(name)), first_(this), second_(this), inputs_{&first_, &second_} {}
  void* input() override { return &inputs_; }
  virtual void emit1(IN1&& v) = 0;
  virtual void emit2(IN2&& v) = 0;

 private:
  struct First final : Collector<IN1> {
    explicit First(TwoInputOperator* o) : op(o) {}
    void emit(IN1&& v) override { op->emit1(std::move(v)); }
    TwoInputOperator* op;
  };
  struct Second final : Collector<IN2> {
    explicit Second(TwoInputOperator* o) : op(o) {}
    void emit(IN2&& v) override { op->emit2(std::move(v)); }
    TwoInputOperator* op;
  };
  First first_;
  Second second_;
  Inputs inputs_;
};

template <class IN, class OUT, class F>
class MapOperator final : public OneInputOperator<IN> {
 public:
  MapOperator(std::string name, F f, Collector<OUT>* out)
      : OneInputOperator<IN>(std::move(name)), f_(std::move(f)), out_(out) {}
  void emit(IN&& v) override { SLUICE_USER_CALL(this->name_, out_->emit(f_(std::move(v)))); }

 private:
  F f_;
  Collector<OUT>* out_;
};

template <class IN, class OUT, class F>
class FlatMapOperator final : public OneInputOperator<IN> {
 public:
  FlatMapOperator(std::string name, F f, Collector<OUT>* out)
      : OneInputOperator<IN>(std::move(name)), f_(std::move(f)), out_(out) {}
  void emit(IN&& v) override { SLUICE_USER_CALL(this->name_, f_(v, *out_)); }

 private:
  F f_;
  Collector<OUT>* out_;
};

template <class T, class F>
class FilterOperator final : public OneInputOperator<T> {
 public:
  FilterOperator(std::string name, F f, Collector<T>* out)
      : OneInputOperator<T>(std::move(name)), f_(std::move(f)), out_(out) {}
  void emit(T&& v) override {
    SLUICE_USER_CALL(this->name_, if (f_(static_cast<const T&>(v))) out_->emit(std::move(v)));
  }

 private:
  F f_;
  Collector<T>* out_;
};

// What an operator that runs a user function keeps for it: the function's operator state and
// its RuntimeContext.
class FunctionState {
 public:
  // From OperatorBase::initialize_state. Throws SerializationError on malformed bytes.
  void initialize(const OperatorSnapshot* restored, bool is_restored) {
    is_restored_ = is_restored;
    if (restored) store_.restore(*restored);
  }
  // The context to open the function with; `keyed` for functions on a keyed stream.
  RuntimeContext& context(TaskRuntime& rt, KeyedStateBackend* keyed = nullptr) {
    ctx_ = std::make_unique<RuntimeContext>(rt, keyed, &store_, is_restored_);
    return *ctx_;
  }
  void snapshot(OperatorSnapshot& out) const { store_.snapshot(out); }

 private:
  OperatorStateStore store_;
  bool is_restored_ = false;
  std::unique_ptr<RuntimeContext> ctx_;
};

// An operator (on `Base`: OperatorBase or OneInputOperator<IN>) that runs a non-keyed user
// function F with operator state: opens, closes and checkpoints it.
template <class Base, class F>
class FunctionOperator : public Base {
 public:
  FunctionOperator(std::string name, F f) : Base(std::move(name)), f_(std::move(f)) {}
  void initialize_state(TaskRuntime&, const OperatorSnapshot* restored, bool is_restored) override {
    SLUICE_USER_CALL(this->name_, state_.initialize(restored, is_restored));
  }
  void open(TaskRuntime& rt) override {
    SLUICE_USER_CALL(this->name_, f_.open(state_.context(rt)));
  }
  void close() override { SLUICE_USER_CALL(this->name_, f_.close()); }
  void snapshot_state(int64_t checkpoint_id, OperatorSnapshot& out) override {
    SLUICE_USER_CALL(this->name_, {
      f_.snapshot_state(checkpoint_id);
      state_.snapshot(out);
    });
  }
  void notify_checkpoint_complete(int64_t checkpoint_id) override {
    SLUICE_USER_CALL(this->name_, f_.notify_checkpoint_complete(checkpoint_id));
  }

 protected:
  F f_;
  FunctionState state_;
};

// An operator (on OneInputOperator<IN> or TwoInputOperator<IN1, IN2>) running a non-keyed user
// function that sees an ElementContext: timestamps, its input watermark, side outputs.
template <class Base, class F, class OUT>
class ContextFunctionOperator : public FunctionOperator<Base, F> {
 public:
  ContextFunctionOperator(std::string name, F f, Collector<OUT>* out)
      : FunctionOperator<Base, F>(std::move(name), std::move(f)), out_(out) {}
  void open(TaskRuntime& rt) override {
    ctx_.rt = &rt;
    FunctionOperator<Base, F>::open(rt);
  }
  void process_watermark(int64_t watermark) override {
    ctx_.watermark = watermark;
    this->output_watermark(watermark);
  }
  void end_input() override { SLUICE_USER_CALL(this->name_, this->f_.end_input(*out_)); }
  SideOutputs* side_outputs() override { return &side_; }

 protected:
  Collector<OUT>* out_;
  SideOutputs side_;
  ElementContextImpl ctx_{this, &side_};
};

template <class IN, class OUT, class F>
class ProcessOperator final : public ContextFunctionOperator<OneInputOperator<IN>, F, OUT> {
 public:
  using ContextFunctionOperator<OneInputOperator<IN>, F, OUT>::ContextFunctionOperator;
  void emit(IN&& v) override {
    SLUICE_USER_CALL(this->name_, this->f_.process_element(v, this->ctx_, *this->out_));
  }
};

// Runs a CoProcessFunction over two connected streams.
template <class IN1, class IN2, class OUT, class F>
class CoProcessOperator final : public ContextFunctionOperator<TwoInputOperator<IN1, IN2>, F, OUT> {
 public:
  using ContextFunctionOperator<TwoInputOperator<IN1, IN2>, F, OUT>::ContextFunctionOperator;
  void emit1(IN1&& v) override {
    SLUICE_USER_CALL(this->name_, this->f_.process_element1(v, this->ctx_, *this->out_));
  }
  void emit2(IN2&& v) override {
    SLUICE_USER_CALL(this->name_, this->f_.process_element2(v, this->ctx_, *this->out_));
  }
};

// Gives records their timestamps and emits watermarks, as a WatermarkStrategy says: on every
// record and every pipeline.auto-watermark-interval of processing time. Watermarks from
// upstream are replaced by its own, except the final kMaxWatermark, which it passes on.
template <class T>
class TimestampsAndWatermarksOperator final : public OneInputOperator<T>, WatermarkOutput {
 public:
  TimestampsAndWatermarksOperator(std::string name, WatermarkStrategy<T> strategy,
                                  Collector<T>* out)
      : OneInputOperator<T>(std::move(name)), strategy_(std::move(strategy)), out_(out) {}
  void open(TaskRuntime& rt) override {
    rt_ = &rt;
    SLUICE_USER_CALL(this->name_, generator_ = strategy_.create_generator(
                                      [&rt] { return rt.current_processing_time(); }));
    interval_ = rt.info().auto_watermark_interval_ms;
    if (interval_ > 0) {
      next_emit_ = rt.current_processing_time() + interval_;
      rt.request_processing_time_callback(next_emit_);
    }
  }
  void emit(T&& v) override {
    SLUICE_USER_CALL(this->name_, {
      int64_t ts = strategy_.timestamp(static_cast<const T&>(v), this->element_timestamp());
      this->set_element_timestamp(ts);
      generator_->on_event(static_cast<const T&>(v), ts, *this);
      // A watermark emitted just now may have fired timers downstream, which set the chain's
      // timestamp to theirs.
      this->set_element_timestamp(ts);
    });
    out_->emit(std::move(v));
  }
  void on_processing_time(int64_t now) override {
    if (interval_ <= 0 || current_ == kMaxWatermark) return;
    if (now >= next_emit_) {
      SLUICE_USER_CALL(this->name_, generator_->on_periodic_emit(*this));
      next_emit_ = now + interval_;
    }
    rt_->request_processing_time_callback(next_emit_);
  }
  void process_watermark(int64_t watermark) override {
    if (watermark == kMaxWatermark) emit_watermark(kMaxWatermark);
  }
  void process_watermark_status(bool) override {}

  // WatermarkOutput
  void emit_watermark(int64_t watermark) override {
    if (watermark <= current_) return;
    mark_active();
    current_ = watermark;
    this->output_watermark(watermark);
  }
  void mark_idle() override {
    if (idle_) return;
    idle_ = true;
    this->output_watermark_status(true);
  }
  void mark_active() override {
    if (!idle_) return;
    idle_ = false;
    this->output_watermark_status(false);
  }

 private:
  WatermarkStrategy<T> strategy_;
  Collector<T>* out_;
  TaskRuntime* rt_ = nullptr;
  std::unique_ptr<WatermarkGenerator<T>> generator_;
  int64_t interval_ = 0;
  int64_t next_emit_ = 0;
  int64_t current_ = kMinWatermark;
  bool idle_ = false;
};

// Passes records on unchanged: the operator of a side output's stream.
template <class T>
class PassThroughOperator final : public OneInputOperator<T> {
 public:
  PassThroughOperator(std::string name, Collector<T>* out)
      : OneInputOperator<T>(std::move(name)), out_(out) {}
  void emit(T&& v) override { out_->emit(std::move(v)); }

 private:
  Collector<T>* out_;
};

// Base of the operators on a keyed stream (on `Base`: OneInputOperator<IN> or
// TwoInputOperator<IN1, IN2>): owns the keyed state backend of the subtask's key-group range,
// restores and snapshots it, and makes state accesses refer to the key of the record being
// processed. An operator that creates the timer service has its due timers fired through
// fire_timer(), with the timer's key current, before a watermark is passed on.
template <class Base, class K>
class KeyedOperator : public Base {
 public:
  using Base::Base;
  void initialize_state(TaskRuntime& rt, const OperatorSnapshot* restored, bool) override {
    create_backend(rt);
    if (restored) SLUICE_USER_CALL(this->name_, backend_->restore(*restored));
  }
  void snapshot_state(int64_t checkpoint_id, OperatorSnapshot& out) override {
    if (backend_) SLUICE_USER_CALL(this->name_, backend_->snapshot(out, checkpoint_id));
  }
  void notify_checkpoint_complete(int64_t checkpoint_id) override {
    if (backend_)
      SLUICE_USER_CALL(this->name_, backend_->notify_checkpoint_complete(checkpoint_id));
  }
  void process_watermark(int64_t watermark) override {
    if (timers_) {
      // Watermarks can arrive in the middle of a record's way down the chain (emitted by an
      // assigner before it passes the record on): the record's timestamp is kept.
      typename Base::TimestampGuard keep(this);
      SLUICE_USER_CALL(this->name_,
                       timers_->advance_watermark(watermark, [this](const InternalTimer& t) {
                         this->set_element_timestamp(t.time);
                         fire_timer(t, TimeDomain::kEventTime);
                       }));
    }
    this->output_watermark(watermark);
  }
  void on_processing_time(int64_t now) override {
    if (!timers_) return;
    typename Base::TimestampGuard keep(this);
    SLUICE_USER_CALL(this->name_,
                     timers_->advance_processing_time(now, [this](const InternalTimer& t) {
                       this->set_element_timestamp(kNoTimestamp);
                       fire_timer(t, TimeDomain::kProcessingTime);
                     }));
  }

 protected:
  // A timer of the current key is due (its time is the element timestamp for event time).
  virtual void fire_timer(const InternalTimer&, TimeDomain) {}

  // Creates the backend, empty, unless initialize_state() did.
  void create_backend(TaskRuntime& rt) {
    if (backend_) return;
    const TaskInfo& info = rt.info();
    max_parallelism_ = info.max_parallelism;
    backend_ = rt.create_keyed_state_backend(
        this->node_id(),
        key_group_range(info.subtask_index, info.max_parallelism, info.parallelism));
  }
  // State accesses from now on refer to `key`.
  void set_current_key(const K& key) {
    KeyContext& kc = backend_->key_context();
    kc.key.clear();
    DataOutput key_out(kc.key);
    Serializer<K>::write(key_out, key);
    kc.key_group = key_group_for_hash(KeyHash<K>{}(key), max_parallelism_);
  }

  // Creates the timer service on the backend, unless done already.
  InternalTimerService& create_timer_service(TaskRuntime& rt) {
    if (!timers_) {
      create_backend(rt);
      timers_ = std::make_unique<InternalTimerService>(*backend_, rt);
      user_timers_.timers = timers_.get();
    }
    return *timers_;
  }
  // The timer service a user function sees (valid once create_timer_service ran).
  TimerService* user_timer_service() { return &user_timers_; }

  std::unique_ptr<KeyedStateBackend> backend_;
  std::unique_ptr<InternalTimerService> timers_;
  int max_parallelism_ = kDefaultMaxParallelism;

 private:
  struct UserTimers final : TimerService {
    InternalTimerService* timers = nullptr;
    int64_t current_processing_time() const override { return timers->current_processing_time(); }
    int64_t current_watermark() const override { return timers->current_watermark(); }
    void register_event_time_timer(int64_t t) override { timers->register_event_time_timer(t); }
    void register_processing_time_timer(int64_t t) override {
      timers->register_processing_time_timer(t);
    }
    void delete_event_time_timer(int64_t t) override { timers->delete_event_time_timer(t); }
    void delete_processing_time_timer(int64_t t) override {
      timers->delete_processing_time_timer(t);
    }
  };
  UserTimers user_timers_;
};

template <class IN, class K>
using KeyedOneInputOperator = KeyedOperator<OneInputOperator<IN>, K>;

// Keeps one running value per key, in keyed state, and emits every update (rolling reduce, as
// Flink does).
template <class T, class K, class KS, class F>
class KeyedReduceOperator final : public KeyedOneInputOperator<T, K> {
 public:
  KeyedReduceOperator(std::string name, KS ks, F f, Collector<T>* out)
      : KeyedOneInputOperator<T, K>(std::move(name)),
        ks_(std::move(ks)),
        f_(std::move(f)),
        out_(out) {}
  void open(TaskRuntime& rt) override {
    this->create_backend(rt);
    SLUICE_USER_CALL(this->name_, value_ = &this->backend_->template get<ValueState<T>>(
                                      ValueStateDescriptor<T>("reduce-value")));
  }
  void emit(T&& v) override {
    SLUICE_USER_CALL(this->name_, {
      this->set_current_key(ks_(static_cast<const T&>(v)));
      out_->emit(T(value_->merge(std::move(v), f_)));
    });
  }

 private:
  KS ks_;
  F f_;
  Collector<T>* out_;
  ValueState<T>* value_ = nullptr;
};

// Base of the operators that run a keyed user function F (on `Base`: OneInputOperator<IN> or
// TwoInputOperator<IN1, IN2>): the function's open, close, checkpoint hooks and operator state,
// its timers and side outputs, and the context it is called with.
template <class Base, class K, class OUT, class F>
class KeyedFunctionOperator : public KeyedOperator<Base, K> {
 public:
  KeyedFunctionOperator(std::string name, F f, Collector<OUT>* out)
      : KeyedOperator<Base, K>(std::move(name)), f_(std::move(f)), out_(out) {}
  void initialize_state(TaskRuntime& rt, const OperatorSnapshot* restored,
                        bool is_restored) override {
    KeyedOperator<Base, K>::initialize_state(rt, restored, is_restored);
    SLUICE_USER_CALL(this->name_, state_.initialize(restored, is_restored));
  }
  void open(TaskRuntime& rt) override {
    this->create_timer_service(rt);
    ctx_.timers = this->user_timer_service();
    SLUICE_USER_CALL(this->name_, f_.open(state_.context(rt, this->backend_.get())));
    this->timers_->start();
  }
  void close() override { SLUICE_USER_CALL(this->name_, f_.close()); }
  void snapshot_state(int64_t checkpoint_id, OperatorSnapshot& out) override {
    SLUICE_USER_CALL(this->name_, f_.snapshot_state(checkpoint_id));
    KeyedOperator<Base, K>::snapshot_state(checkpoint_id, out);
    state_.snapshot(out);
  }
  void notify_checkpoint_complete(int64_t checkpoint_id) override {
    SLUICE_USER_CALL(this->name_, f_.notify_checkpoint_complete(checkpoint_id));
    KeyedOperator<Base, K>::notify_checkpoint_complete(checkpoint_id);
  }
  SideOutputs* side_outputs() override { return &side_; }

 protected:
  // Makes the key `key_of()` returns current (for state accesses and the context), then calls
  // `process`; both are user code.
  template <class KeyOf, class P>
  void process_with_key(KeyOf&& key_of, P&& process) {
    SLUICE_USER_CALL(this->name_, {
      ctx_.key = key_of();
      this->set_current_key(ctx_.key);
      process();
    });
  }

  F f_;
  Collector<OUT>* out_;
  KeyedContextImpl<K> ctx_{this, &side_};

 private:
  void fire_timer(const InternalTimer& t, TimeDomain domain) override {
    ctx_.key = deserialize<K>(t.key);
    ctx_.domain = domain;
    f_.on_timer(t.time, ctx_, *out_);
  }
  FunctionState state_;
  SideOutputs side_;
};

template <class K, class IN, class OUT, class KS, class F>
class KeyedProcessOperator final : public KeyedFunctionOperator<OneInputOperator<IN>, K, OUT, F> {
 public:
  KeyedProcessOperator(std::string name, KS ks, F f, Collector<OUT>* out)
      : KeyedFunctionOperator<OneInputOperator<IN>, K, OUT, F>(std::move(name), std::move(f), out),
        ks_(std::move(ks)) {}
  void emit(IN&& v) override {
    this->process_with_key([&] { return ks_(static_cast<const IN&>(v)); },
                           [&] { this->f_.process_element(v, this->ctx_, *this->out_); });
  }
  // Every key with state first (each as the current key), then the end of input without one.
  void end_input() override {
    SLUICE_USER_CALL(this->name_, {
      this->backend_->for_each_key([this](const std::string& key) {
        this->ctx_.key = deserialize<K>(key);
        this->f_.end_input_of_key(this->ctx_.key, *this->out_);
      });
      this->f_.end_input(*this->out_);
    });
  }

 private:
  KS ks_;
};

// Runs a KeyedCoProcessFunction over two connected streams keyed alike: both inputs share the
// keyed state and timers of their key.
template <class K, class IN1, class IN2, class OUT, class KS1, class KS2, class F>
class KeyedCoProcessOperator final
    : public KeyedFunctionOperator<TwoInputOperator<IN1, IN2>, K, OUT, F> {
 public:
  KeyedCoProcessOperator(std::string name, KS1 ks1, KS2 ks2, F f, Collector<OUT>* out)
      : KeyedFunctionOperator<TwoInputOperator<IN1, IN2>, K, OUT, F>(std::move(name), std::move(f),
                                                                     out),
        ks1_(std::move(ks1)),
        ks2_(std::move(ks2)) {}
  void emit1(IN1&& v) override {
    this->process_with_key([&] { return ks1_(static_cast<const IN1&>(v)); },
                           [&] { this->f_.process_element1(v, this->ctx_, *this->out_); });
  }
  void emit2(IN2&& v) override {
    this->process_with_key([&] { return ks2_(static_cast<const IN2&>(v)); },
                           [&] { this->f_.process_element2(v, this->ctx_, *this->out_); });
  }
  void end_input() override { SLUICE_USER_CALL(this->name_, this->f_.end_input(*this->out_)); }

 private:
  KS1 ks1_;
  KS2 ks2_;
};

template <class T>
class PrintSinkOperator final : public OneInputOperator<T> {
 public:
  explicit PrintSinkOperator(std::string name) : OneInputOperator<T>(std::move(name)) {}
  void open(TaskRuntime& rt) override {
    rt_ = &rt;
    if (rt.info().parallelism > 1) prefix_ = std::to_string(rt.info().subtask_index + 1) + "> ";
  }
  void emit(T&& v) override {
    line_ = prefix_;
    format_to(line_, v);
    rt_->print_line(line_);
  }

 private:
  TaskRuntime* rt_ = nullptr;
  std::string prefix_;
  std::string line_;
};

// Writes one text file per subtask: <dir>/part-<subtask>, one record per line.
template <class T>
class TextFileSinkOperator final : public OneInputOperator<T> {
 public:
  TextFileSinkOperator(std::string name, std::string dir)
      : OneInputOperator<T>(std::move(name)), dir_(std::move(dir)) {}
  ~TextFileSinkOperator() override {
    if (file_) std::fclose(file_);
  }
  void open(TaskRuntime& rt) override {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec)
      throw OperatorError(this->name_, "cannot create directory '" + dir_ + "': " + ec.message());
    path_ = dir_ + "/part-" + std::to_string(rt.info().subtask_index);
    file_ = std::fopen(path_.c_str(), "w");
    if (!file_) {
      throw OperatorError(this->name_,
                          "cannot open '" + path_ + "' for writing: " + std::strerror(errno));
    }
  }
  void emit(T&& v) override {
    line_.clear();
    format_to(line_, v);
    line_ += '\n';
    if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) {
      throw OperatorError(this->name_, "write to '" + path_ + "' failed: " + std::strerror(errno));
    }
  }
  void close() override {
    if (file_ && std::fclose(file_) != 0) {
      file_ = nullptr;
      throw OperatorError(this->name_, "closing '" + path_ + "' failed: " + std::strerror(errno));
    }
    file_ = nullptr;
  }

 private:
  std::string dir_;
  std::string path_;
  std::string line_;
  std::FILE* file_ = nullptr;
};

template <class T, class F>
class UserSinkOperator final : public FunctionOperator<OneInputOperator<T>, F> {
 public:
  UserSinkOperator(std::string name, F f)
      : FunctionOperator<OneInputOperator<T>, F>(std::move(name), std::move(f)) {}
  void emit(T&& v) override { SLUICE_USER_CALL(this->name_, this->f_.invoke(v)); }
};

// Runs a SourceFunction; checks for cancellation every few records even if the user's loop
// does not. Checkpoints at a source start in its SourceContext: collect() and flush() first
// hand the runtime its mail (TaskRuntime::process_mail, which may snapshot the chain), so a
// snapshot always falls between two records (see SourceFunction).
template <class T, class F>
class SourceOperator final : public FunctionOperator<OperatorBase, F> {
 public:
  SourceOperator(std::string name, F f, Collector<T>* out)
      : FunctionOperator<OperatorBase, F>(std::move(name), std::move(f)), out_(out) {}
  void run(TaskRuntime& rt) override {
    Ctx c(this, rt);
    SLUICE_USER_CALL(this->name_, this->f_.run(c));
  }
  void cancel() override { this->f_.cancel(); }

 private:
  struct Ctx final : SourceFunction<T>::SourceContext {
    Ctx(SourceOperator* o, TaskRuntime& r) : op(o), out(o->out_), rt(r), mail(r.mail_flag()) {}
    void collect(T&& v) override {
      // Mail first: a checkpoint taken now must not include `v`.
      if (mail.load(std::memory_order_relaxed)) rt.process_mail();
      if ((++count & 255) == 0 && rt.cancelled()) throw TaskCancelled();
      op->set_element_timestamp(kNoTimestamp);
      out->emit(std::move(v));
    }
    void flush() override {
      if (mail.load(std::memory_order_relaxed)) rt.process_mail();
      rt.flush_outputs();
    }
    SourceOperator* op;
    Collector<T>* out;
    TaskRuntime& rt;
    const std::atomic<bool>& mail;
    uint64_t count = 0;
  };
  Collector<T>* out_;
};

// ---------------------------------------------------------------------------------------------
// Collectors that connect operators: fan-out, discard, and the network partitioners.

// A type-erased owning handle to a Collector<T>.
struct ErasedCollector {
  std::shared_ptr<void> owner;
  void* ptr = nullptr;  // Collector<T>*
};

template <class T>
ErasedCollector erase_collector(std::unique_ptr<Collector<T>> c) {
  ErasedCollector e;
  e.ptr = static_cast<void*>(c.get());
  e.owner = std::shared_ptr<Collector<T>>(std::move(c));
  return e;
}

template <class T>
class DiscardCollector final : public Collector<T> {
 public:
  void emit(T&&) override {}
};

template <class T>
class FanOutCollector final : public Collector<T> {
 public:
  explicit FanOutCollector(std::vector<Collector<T>*> outs) : outs_(std::move(outs)) {}
  void emit(T&& v) override {
    for (size_t i = 0; i + 1 < outs_.size(); ++i) outs_[i]->emit(T(v));
    outs_.back()->emit(std::move(v));
  }

 private:
  std::vector<Collector<T>*> outs_;
};

// Writes records to one network edge. On an edge whose records carry timestamps, `timestamp`
// points at the chain's current record timestamp, written (8 bytes) before each record.
template <class T>
class WriterCollector : public Collector<T> {
 protected:
  WriterCollector(RecordWriter* w, const int64_t* timestamp) : w_(w), timestamp_(timestamp) {}
  void write(int channel, const T& v) {
    std::string& buf = w_->buffer(channel);
    DataOutput out(buf);
    if (timestamp_) Serializer<int64_t>::write(out, *timestamp_);
    Serializer<T>::write(out, v);
    w_->commit(channel);
  }
  RecordWriter* w_;
  const int64_t* timestamp_;
};

// Forward and rescale: round robin over the consumers this producer is connected to.
template <class T>
class PointwiseCollector final : public WriterCollector<T> {
 public:
  PointwiseCollector(RecordWriter* w, const TaskInfo& info, const int64_t* ts)
      : WriterCollector<T>(w, ts) {
    range_ = pointwise_consumers(info.subtask_index, info.parallelism, w->num_channels());
    next_ = range_.begin;
  }
  void emit(T&& v) override {
    this->write(next_, v);
    if (++next_ == range_.end) next_ = range_.begin;
  }

 private:
  SubtaskRange range_;
  int next_;
};

template <class T>
class RebalanceCollector final : public WriterCollector<T> {
 public:
  RebalanceCollector(RecordWriter* w, const TaskInfo& info, const int64_t* ts)
      : WriterCollector<T>(w, ts), n_(w->num_channels()), next_(info.subtask_index % n_) {}
  void emit(T&& v) override {
    this->write(next_, v);
    if (++next_ == n_) next_ = 0;
  }

 private:
  int n_;
  int next_;
};

template <class T>
class BroadcastCollector final : public WriterCollector<T> {
 public:
  BroadcastCollector(RecordWriter* w, const int64_t* ts) : WriterCollector<T>(w, ts) {}
  void emit(T&& v) override {
    for (int c = 0; c < this->w_->num_channels(); ++c) this->write(c, v);
  }
};

template <class T, class KS>
class KeyGroupCollector final : public WriterCollector<T> {
 public:
  KeyGroupCollector(RecordWriter* w, const TaskInfo& info, const int64_t* ts, KS ks)
      : WriterCollector<T>(w, ts), ks_(std::move(ks)), max_parallelism_(info.max_parallelism) {}
  void emit(T&& v) override {
    using K = std::decay_t<std::invoke_result_t<KS&, const T&>>;
    int kg = key_group_for_hash(KeyHash<K>{}(ks_(static_cast<const T&>(v))), max_parallelism_);
    this->write(subtask_for_key_group(kg, max_parallelism_, this->w_->num_channels()), v);
  }

 private:
  KS ks_;
  int max_parallelism_;
};

template <class T, class P, class KS>
class CustomCollector final : public WriterCollector<T> {
 public:
  CustomCollector(RecordWriter* w, const int64_t* ts, P p, KS ks)
      : WriterCollector<T>(w, ts), p_(std::move(p)), ks_(std::move(ks)) {}
  void emit(T&& v) override {
    int n = this->w_->num_channels();
    int c = static_cast<int>(p_(ks_(static_cast<const T&>(v)), n));
    if (c < 0 || c >= n) {
      throw std::out_of_range("custom partitioner returned channel " + std::to_string(c) + " of " +
                              std::to_string(n));
    }
    this->write(c, v);
  }

 private:
  P p_;
  KS ks_;
};

// ---------------------------------------------------------------------------------------------
// Stream nodes: the graph the entry point builds.

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
  virtual ~Node() = default;
  int id = -1;
  std::string name;
  std::string kind;     // "source", "map", "flat_map", "filter", "reduce", "process", "sink"
  int parallelism = 0;  // 0: the job's default
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
  // Collector<IN>*, setting `*timestamp` to each record's timestamp first.
  virtual void read_buffer(int input, std::string_view bytes, void* in,
                           int64_t* timestamp) const = 0;
};

template <class OUT>
class TypedNode : public Node {
 public:
  std::function<std::unique_ptr<OperatorBase>(Collector<OUT>*)> factory;

  std::unique_ptr<OperatorBase> create(void* out) const override {
    return factory(static_cast<Collector<OUT>*>(out));
  }
  ErasedCollector fan_out(const std::vector<void*>& outs) const override {
    if (outs.empty()) return erase_collector<OUT>(std::make_unique<DiscardCollector<OUT>>());
    std::vector<Collector<OUT>*> typed;
    for (void* o : outs) typed.push_back(static_cast<Collector<OUT>*>(o));
    return erase_collector<OUT>(std::make_unique<FanOutCollector<OUT>>(std::move(typed)));
  }
  void read_buffer(int, std::string_view, void*, int64_t*) const override {
    throw std::logic_error("node '" + name + "' has no network input");
  }
};

// Deserializes a buffer of records (each after its timestamp when `timestamped`) into `c`.
template <class IN>
void read_records(bool timestamped, std::string_view bytes, Collector<IN>* c, int64_t* timestamp) {
  DataInput di(bytes);
  *timestamp = kNoTimestamp;
  while (!di.at_end()) {
    if (timestamped) Serializer<int64_t>::read(di, *timestamp);
    IN v{};
    Serializer<IN>::read(di, v);
    c->emit(std::move(v));
  }
}

template <class IN, class OUT>
class OneInputNode final : public TypedNode<OUT> {
 public:
  void read_buffer(int input, std::string_view bytes, void* in, int64_t* timestamp) const override {
    read_records<IN>(this->inputs.at(static_cast<size_t>(input)).timestamped, bytes,
                     static_cast<Collector<IN>*>(in), timestamp);
  }
};

template <class IN1, class IN2, class OUT>
class TwoInputNode final : public TypedNode<OUT> {
 public:
  void read_buffer(int input, std::string_view bytes, void* in, int64_t* timestamp) const override {
    const InputSpec& spec = this->inputs.at(static_cast<size_t>(input));
    auto* inputs = static_cast<typename TwoInputOperator<IN1, IN2>::Inputs*>(in);
    if (spec.logical_input == 0) {
      read_records<IN1>(spec.timestamped, bytes, inputs->first, timestamp);
    } else {
      read_records<IN2>(spec.timestamped, bytes, inputs->second, timestamp);
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
  OperatorChain(TaskRuntime& rt, const Node* head) : rt_(rt), head_(head) {}
  void initialize_state(const std::vector<OperatorSnapshot>* restored) override {
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
  void open() override {
    for (auto it = ops_.rbegin(); it != ops_.rend(); ++it) (*it)->open(rt_);
  }
  bool is_source() const override { return head_->is_source(); }
  void run_source() override { ops_.front()->run(rt_); }
  void process_buffer(int input, std::string_view bytes) override {
    head_->read_buffer(input, bytes, head_input_, &context_.timestamp);
  }
  void end_input() override {
    for (auto& op : ops_) op->end_input();
  }
  void close() override {
    for (auto& op : ops_) op->close();
  }
  void cancel() override {
    if (!ops_.empty()) ops_.front()->cancel();
  }
  std::vector<OperatorSnapshot> snapshot_state(int64_t checkpoint_id) override {
    std::vector<OperatorSnapshot> out;
    for (size_t k = 0; k < ops_.size(); ++k) {
      OperatorSnapshot s;
      s.node_id = node_ids_[k];
      ops_[k]->snapshot_state(checkpoint_id, s);
      if (!s.empty()) out.push_back(std::move(s));
    }
    return out;
  }
  void notify_checkpoint_complete(int64_t checkpoint_id) override {
    for (auto& op : ops_) op->notify_checkpoint_complete(checkpoint_id);
  }
  // Watermarks enter at the head and each operator passes them on (see OperatorBase).
  void process_watermark(int64_t watermark) override { ops_.front()->process_watermark(watermark); }
  void process_watermark_status(bool idle) override {
    ops_.front()->process_watermark_status(idle);
  }
  void on_processing_time(int64_t now_ms) override {
    for (auto& op : ops_) op->on_processing_time(now_ms);
  }
  int64_t num_late_records_dropped() const override {
    int64_t n = 0;
    for (const auto& op : ops_) n += op->num_late_records_dropped();
    return n;
  }

 private:
  friend class StreamExecutionEnvironment;
  TaskRuntime& rt_;
  const Node* head_;
  ChainContext context_;
  void* head_input_ = nullptr;
  std::vector<std::unique_ptr<OperatorBase>> ops_;  // head first
  std::vector<int> node_ids_;                       // ops_[k] belongs to node node_ids_[k]
  std::vector<ErasedCollector> collectors_;
};

template <class T>
class DataStream;
template <class T, class KS>
class KeyedStream;
class DataStreamSink;
// Windows on a keyed stream and on a whole stream: sluice/windows.h.
template <class T, class KS, class A>
class WindowedStream;
template <class T, class A>
class AllWindowedStream;
template <class T1, class T2>
class ConnectedStreams;
template <class T1, class T2, class KS1, class KS2>
class KeyedConnectedStreams;
template <class T1, class T2>
class CoGroupedStreams;

// ---------------------------------------------------------------------------------------------
// The environment: owns the nodes, offers the sources.

class StreamExecutionEnvironment {
 public:
  StreamExecutionEnvironment() = default;
  StreamExecutionEnvironment(const StreamExecutionEnvironment&) = delete;
  StreamExecutionEnvironment& operator=(const StreamExecutionEnvironment&) = delete;

  // The default parallelism of this job's operators (overrides `sluice run -p`).
  void set_parallelism(int p) { parallelism_ = p; }
  int parallelism() const { return parallelism_; }
  // The number of key groups (pipeline.max-parallelism); 0 leaves the cluster's setting.
  void set_max_parallelism(int p) { max_parallelism_ = p; }
  int max_parallelism() const { return max_parallelism_; }
  void set_job_name(std::string name) { job_name_ = std::move(name); }
  const std::string& job_name() const { return job_name_; }

  // Sources. from_elements and from_collection are non-parallel, like Flink's.
  template <class T>
  DataStream<T> from_collection(std::vector<T> elements);
  template <class T>
  DataStream<T> from_elements(std::initializer_list<T> elements) {
    return from_collection(std::vector<T>(elements));
  }
  template <class T, class... Ts>
  DataStream<T> from_elements(T first, Ts... rest) {
    return from_collection(std::vector<T>{std::move(first), T(std::move(rest))...});
  }
  // The numbers from..to inclusive, split evenly over the parallel subtasks.
  DataStream<int64_t> generate_sequence(int64_t from, int64_t to);
  // The lines of a text file (without the line feed), the file split by byte ranges.
  DataStream<std::string> read_text_file(std::string path);
  // Lines read from a TCP socket until it closes; non-parallel.
  DataStream<std::string> socket_text_stream(std::string host, int port, char delimiter = '\n');
  // A user SourceFunction<T>; one copy runs per subtask.
  template <class F>
  DataStream<typename F::value_type> add_source(F fn, std::string name = "Custom Source");

  // ---- for the runtime ----
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  // Builds the operator chain of one subtask. `chain` lists node ids head first; `outputs` binds
  // every network edge leaving the chain. Throws std::invalid_argument on an inconsistent spec.
  std::unique_ptr<ChainTask> build_chain(const std::vector<int>& chain,
                                         const std::vector<OutputBinding>& outputs,
                                         TaskRuntime& rt) const {
    if (chain.empty()) throw std::invalid_argument("empty chain");
    for (int id : chain) {
      if (id < 0 || id >= static_cast<int>(nodes_.size())) {
        throw std::invalid_argument("chain names node " + std::to_string(id) + " but the job has " +
                                    std::to_string(nodes_.size()) + " nodes");
      }
    }
    auto task = std::make_unique<OperatorChain>(rt, nodes_[chain.front()].get());
    std::vector<std::unique_ptr<OperatorBase>> ops(chain.size());
    void* next_input = nullptr;
    // A consumer of a node's side output (rather than its main output) is bound to the tag.
    struct SideTarget {
      const InputSpec* spec;
      void* collector;
    };
    for (size_t k = chain.size(); k-- > 0;) {
      const Node& node = *nodes_[chain[k]];
      std::vector<void*> targets;
      std::vector<SideTarget> side_targets;
      std::vector<RecordWriter*> writers;
      if (next_input) {
        const InputSpec& spec = nodes_[chain[k + 1]]->inputs.at(0);
        if (spec.side_tag.empty()) {
          targets.push_back(next_input);
        } else {
          side_targets.push_back({&spec, next_input});
        }
      }
      for (const OutputBinding& b : outputs) {
        if (b.source_node != node.id) continue;
        const Node& target = *nodes_.at(b.target_node);
        const InputSpec& spec = target.inputs.at(b.target_input);
        ErasedCollector c =
            spec.make_writer(b.writer, b.partitioner, rt.info(),
                             spec.timestamped ? &task->context_.timestamp : nullptr);
        if (spec.side_tag.empty()) {
          targets.push_back(c.ptr);
        } else {
          side_targets.push_back({&spec, c.ptr});
        }
        writers.push_back(b.writer);
        task->collectors_.push_back(std::move(c));
      }
      void* out;
      if (targets.size() == 1) {
        out = targets[0];
      } else {
        ErasedCollector c = node.fan_out(targets);
        out = c.ptr;
        task->collectors_.push_back(std::move(c));
      }
      ops[k] = node.create(out);
      ops[k]->bind(chain[k], &task->context_, k + 1 < chain.size() ? ops[k + 1].get() : nullptr,
                   std::move(writers));
      for (const SideTarget& t : side_targets) {
        SideOutputs* side = ops[k]->side_outputs();
        if (!side) {
          throw std::invalid_argument("'" + node.name + "' has no side outputs, but side output '" +
                                      t.spec->side_tag + "' of it is consumed");
        }
        side->bind(t.spec->side_tag, *t.spec->side_type, t.collector);
      }
      next_input = ops[k]->input();
    }
    task->head_input_ = ops.front()->input();
    task->ops_ = std::move(ops);
    task->node_ids_ = chain;
    return task;
  }

 private:
  template <class T>
  friend class DataStream;
  template <class T, class KS>
  friend class KeyedStream;
  template <class T1, class T2>
  friend class ConnectedStreams;

  template <class NodeT>
  NodeT* add_node(std::unique_ptr<NodeT> node) {
    node->id = static_cast<int>(nodes_.size());
    NodeT* raw = node.get();
    nodes_.push_back(std::move(node));
    return raw;
  }

  template <class T, class F>
  DataStream<T> add_source_node(F fn, std::string name, bool parallel);

  std::vector<std::unique_ptr<Node>> nodes_;
  int parallelism_ = 0;
  int max_parallelism_ = 0;
  std::string job_name_;
};

// A handle to the sink a stream ended in.
class DataStreamSink {
 public:
  explicit DataStreamSink(Node* node) : node_(node) {}
  DataStreamSink& name(std::string n) {
    node_->name = std::move(n);
    return *this;
  }
  DataStreamSink& set_parallelism(int p) {
    if (p < 1)
      throw std::invalid_argument("parallelism must be at least 1, got " + std::to_string(p));
    node_->parallelism = p;
    return *this;
  }
  DataStreamSink& disable_chaining() {
    node_->chaining = false;
    return *this;
  }

 private:
  Node* node_;
};

namespace detail {
// The T of a callable's `Collector<T>&` second parameter, for flat_map(f) without <OUT>.
template <class T>
struct collector_arg;
template <class T>
struct collector_arg<Collector<T>&> {
  using type = T;
};
template <class F>
struct callable_traits : callable_traits<decltype(&F::operator())> {};
template <class C, class R, class A, class B>
struct callable_traits<R (C::*)(A, B) const> {
  using second = B;
};
template <class C, class R, class A, class B>
struct callable_traits<R (C::*)(A, B)> {
  using second = B;
};
template <class R, class A, class B>
struct callable_traits<R (*)(A, B)> {
  using second = B;
};
}  // namespace detail

// Runs a TwoPhaseCommitSinkFunction; defined in sluice/sinks.h (which sluice/sluice.h includes).
template <class IN, class F>
class TwoPhaseCommitSinkOperator;

template <class T>
class DataStream {
 public:
  using value_type = T;
  DataStream(StreamExecutionEnvironment* env, std::vector<int> ids)
      : env_(env), ids_(std::move(ids)) {}

  // One record in, one record out.
  template <class F>
  auto map(F f) {
    using OUT = std::decay_t<std::invoke_result_t<F&, T&&>>;
    return add_one_input<OUT>("Map", "map", [f](Collector<OUT>* out, const std::string& name) {
      return std::make_unique<MapOperator<T, OUT, F>>(name, f, out);
    });
  }
  // Zero or more records out per record in: f(const T&, Collector<OUT>&).
  template <class OUT = void, class F>
  auto flat_map(F f) {
    using O = std::conditional_t<
        std::is_void_v<OUT>,
        typename detail::collector_arg<typename detail::callable_traits<F>::second>::type, OUT>;
    return add_one_input<O>("Flat Map", "flat_map",
                            [f](Collector<O>* out, const std::string& name) {
                              return std::make_unique<FlatMapOperator<T, O, F>>(name, f, out);
                            });
  }
  // Keeps the records for which f(const T&) is true.
  template <class F>
  DataStream<T> filter(F f) {
    return add_one_input<T>("Filter", "filter", [f](Collector<T>* out, const std::string& name) {
      return std::make_unique<FilterOperator<T, F>>(name, f, out);
    });
  }
  // A ProcessFunction<T, OUT> subclass; one copy per subtask.
  template <class F>
  auto process(F fn) {
    using OUT = typename F::output_type;
    return add_one_input<OUT>("Process", "process",
                              [fn](Collector<OUT>* out, const std::string& name) {
                                return std::make_unique<ProcessOperator<T, OUT, F>>(name, fn, out);
                              });
  }
  // Event time: records get timestamps and the stream gets watermarks as `strategy` says (see
  // sluice/watermarks.h). Chained to the operator before it, typically the source.
  DataStream<T> assign_timestamps_and_watermarks(WatermarkStrategy<T> strategy) {
    return add_one_input<T>(
        "Timestamps/Watermarks", "timestamps",
        [strategy](Collector<T>* out, const std::string& name) {
          return std::make_unique<TimestampsAndWatermarksOperator<T>>(name, strategy, out);
        },
        true);
  }
  // The records that this stream's operator emitted to the side output `tag`.
  template <class S>
  DataStream<S> get_side_output(const OutputTag<S>& tag) const {
    Node& producer = node();
    auto n = std::make_unique<OneInputNode<S, S>>();
    n->name = "Side Output: " + tag.id();
    n->kind = "side_output";
    n->parallelism = producer.parallelism;
    InputSpec spec;
    spec.node = producer.id;
    spec.partitioner = Partitioner::kForward;
    spec.make_writer = [](RecordWriter* w, Partitioner, const TaskInfo& info, const int64_t* ts) {
      return erase_collector<S>(std::make_unique<PointwiseCollector<S>>(w, info, ts));
    };
    spec.timestamped = producer.timestamped;
    spec.side_tag = tag.id();
    spec.side_type = &typeid(S);
    n->inputs.push_back(std::move(spec));
    n->timestamped = producer.timestamped;
    std::string* name_ref = &n->name;
    n->factory = [name_ref](Collector<S>* out) {
      return std::make_unique<PassThroughOperator<S>>(*name_ref, out);
    };
    auto* raw = env_->add_node(std::move(n));
    return DataStream<S>(env_, {raw->id});
  }
  // Partitions by key: records with equal keys go to the same subtask.
  template <class KS>
  KeyedStream<T, KS> key_by(KS key_selector) const {
    return KeyedStream<T, KS>(*this, std::move(key_selector));
  }
  // Two streams, possibly of different types, processed by one function (a CoProcessFunction,
  // or after key_by a KeyedCoProcessFunction with shared keyed state).
  template <class T2>
  ConnectedStreams<T, T2> connect(const DataStream<T2>& other) const {
    return ConnectedStreams<T, T2>(*this, other);
  }
  // Windowed co-group and join with another stream (see sluice/windows.h):
  // a.join(b).where(ks1).equal_to(ks2).window(assigner).apply(f).
  template <class T2>
  CoGroupedStreams<T, T2> co_group(const DataStream<T2>& other) const;
  template <class T2>
  CoGroupedStreams<T, T2> join(const DataStream<T2>& other) const;
  // Windows over the whole stream, evaluated by one subtask (see sluice/windows.h).
  template <class A>
  AllWindowedStream<T, A> window_all(A assigner) const;
  // Merges streams of the same type (`union` is a C++ keyword).
  template <class... More>
  DataStream<T> union_(const More&... more) const {
    DataStream<T> r = *this;
    (r.ids_.insert(r.ids_.end(), more.ids_.begin(), more.ids_.end()), ...);
    return r;
  }
  DataStream<T> forward() const { return with_partitioner(Partitioner::kForward); }
  DataStream<T> rebalance() const { return with_partitioner(Partitioner::kRebalance); }
  DataStream<T> rescale() const { return with_partitioner(Partitioner::kRescale); }
  DataStream<T> broadcast() const { return with_partitioner(Partitioner::kBroadcast); }
  // Sends each record to channel p(key, n) of n, with key = ks(record).
  template <class P, class KS>
  DataStream<T> partition_custom(P p, KS ks) const {
    DataStream<T> r = with_partitioner(Partitioner::kCustom);
    r.typed_writer_ = [p, ks](RecordWriter* w, Partitioner, const TaskInfo&, const int64_t* ts) {
      return erase_collector<T>(std::make_unique<CustomCollector<T, P, KS>>(w, ts, p, ks));
    };
    return r;
  }

  DataStreamSink print() {
    return add_sink("Sink: Print to Std. Out", [](const std::string& name) {
      return std::make_unique<PrintSinkOperator<T>>(name);
    });
  }
  DataStreamSink write_as_text(std::string dir) {
    return add_sink("Sink: Text File", [dir](const std::string& name) {
      return std::make_unique<TextFileSinkOperator<T>>(name, dir);
    });
  }
  // A SinkFunction<T> subclass; one copy per subtask.
  template <class F>
  DataStreamSink add_sink(F fn, std::string name = "Sink: Custom Sink") {
    return add_sink(std::move(name), [fn](const std::string& n) {
      return std::make_unique<UserSinkOperator<T, F>>(n, fn);
    });
  }
  // A TwoPhaseCommitSinkFunction<T, TXN> subclass (sluice/sinks.h), e.g.
  // ExactlyOnceTextFileSink<T>: exactly-once output with checkpoints. One copy per subtask;
  // an empty `name` takes the sink's default_name().
  template <class S>
  DataStreamSink sink_to(S sink, std::string name = "") {
    if (name.empty()) name = sink.default_name();
    return add_sink(std::move(name), [sink](const std::string& n) {
      return std::make_unique<TwoPhaseCommitSinkOperator<T, S>>(n, sink);
    });
  }

  // Settings of the operator that produced this stream.
  DataStream<T>& name(std::string n) {
    node().name = std::move(n);
    return *this;
  }
  DataStream<T>& set_parallelism(int p) {
    if (p < 1)
      throw std::invalid_argument("parallelism must be at least 1, got " + std::to_string(p));
    if (node().fixed_parallelism && p != 1) {
      throw std::invalid_argument("'" + node().name + "' is not parallel; its parallelism is 1");
    }
    node().parallelism = p;
    return *this;
  }
  DataStream<T>& disable_chaining() {
    node().chaining = false;
    return *this;
  }
  int id() const { return node().id; }

 private:
  template <class U>
  friend class DataStream;
  template <class U, class KS>
  friend class KeyedStream;
  template <class U, class KS, class A>
  friend class WindowedStream;
  template <class U, class A>
  friend class AllWindowedStream;
  template <class T1, class T2>
  friend class ConnectedStreams;
  friend class StreamExecutionEnvironment;

  Node& node() const {
    if (ids_.size() != 1) {
      throw std::logic_error("a union of streams has no single operator to configure");
    }
    return *env_->nodes_[ids_.front()];
  }

  DataStream<T> with_partitioner(Partitioner p) const {
    DataStream<T> r = *this;
    r.partitioner_ = p;
    r.typed_writer_ = nullptr;
    return r;
  }

  // The inputs a consumer of this stream gets: one per unioned node.
  std::vector<InputSpec> inputs() const {
    WriterFactory wf = typed_writer_;
    if (!wf) {
      wf = [](RecordWriter* w, Partitioner p, const TaskInfo& info,
              const int64_t* ts) -> ErasedCollector {
        switch (p) {
          case Partitioner::kForward:
          case Partitioner::kRescale:
            return erase_collector<T>(std::make_unique<PointwiseCollector<T>>(w, info, ts));
          case Partitioner::kRebalance:
            return erase_collector<T>(std::make_unique<RebalanceCollector<T>>(w, info, ts));
          case Partitioner::kBroadcast:
            return erase_collector<T>(std::make_unique<BroadcastCollector<T>>(w, ts));
          default:
            throw std::logic_error(std::string("no writer for partitioner ") + partitioner_name(p));
        }
      };
    }
    std::vector<InputSpec> specs;
    for (int id : ids_) {
      InputSpec spec;
      spec.node = id;
      spec.partitioner = partitioner_;
      spec.make_writer = wf;
      spec.timestamped = env_->nodes_[id]->timestamped;
      specs.push_back(std::move(spec));
    }
    return specs;
  }
  bool timestamped() const {
    for (int id : ids_) {
      if (env_->nodes_[id]->timestamped) return true;
    }
    return false;
  }

  // A node consuming this stream. Its records carry timestamps when this stream's do, or when
  // `timestamped` (an operator that gives them timestamps).
  template <class OUT, class Make>
  DataStream<OUT> add_one_input(std::string name, std::string kind, Make make,
                                bool timestamped = false) const {
    auto n = std::make_unique<OneInputNode<T, OUT>>();
    n->name = std::move(name);
    n->kind = std::move(kind);
    n->inputs = inputs();
    n->timestamped = timestamped || this->timestamped();
    std::string* name_ref = &n->name;
    n->factory = [make, name_ref](Collector<OUT>* out) { return make(out, *name_ref); };
    auto* raw = env_->add_node(std::move(n));
    return DataStream<OUT>(env_, {raw->id});
  }

  template <class Make>
  DataStreamSink add_sink(std::string name, Make make) const {
    auto n = std::make_unique<OneInputNode<T, Unit>>();
    n->name = std::move(name);
    n->kind = "sink";
    n->inputs = inputs();
    std::string* name_ref = &n->name;
    n->factory = [make, name_ref](Collector<Unit>*) { return make(*name_ref); };
    auto* raw = env_->add_node(std::move(n));
    return DataStreamSink(raw);
  }

  StreamExecutionEnvironment* env_;
  std::vector<int> ids_;
  Partitioner partitioner_ = Partitioner::kDefault;
  WriterFactory typed_writer_;
};

// A stream partitioned by key. Aggregations (reduce, sum, min, max) keep one value per key in
// keyed state, which checkpoints store, and emit every update.
template <class T, class KS>
class KeyedStream {
 public:
  using K = std::decay_t<std::invoke_result_t<KS&, const T&>>;

  KeyedStream(DataStream<T> in, KS ks) : in_(std::move(in)), ks_(std::move(ks)) {
    in_.partitioner_ = Partitioner::kHash;
    KS sel = ks_;
    in_.typed_writer_ = [sel](RecordWriter* w, Partitioner, const TaskInfo& info,
                              const int64_t* ts) {
      return erase_collector<T>(std::make_unique<KeyGroupCollector<T, KS>>(w, info, ts, sel));
    };
  }

  // f(const T& accumulated, const T& next) -> T.
  template <class F>
  DataStream<T> reduce(F f, std::string name = "Keyed Reduce") {
    KS ks = ks_;
    return in_.template add_one_input<T>(
        std::move(name), "reduce", [ks, f](Collector<T>* out, const std::string& n) {
          return std::make_unique<KeyedReduceOperator<T, K, KS, F>>(n, ks, f, out);
        });
  }
  // Running sum of the whole record (arithmetic T), of tuple element I, or of a struct member.
  DataStream<T> sum() {
    return reduce([](const T& a, const T& b) { return a + b; }, "Keyed Aggregation");
  }
  template <size_t I>
  DataStream<T> sum() {
    return reduce(
        [](const T& a, const T& b) {
          T r = a;
          std::get<I>(r) += std::get<I>(b);
          return r;
        },
        "Keyed Aggregation");
  }
  template <class M, class U = T>
  DataStream<T> sum(M U::*field) {
    return reduce(
        [field](const T& a, const T& b) {
          T r = a;
          r.*field += b.*field;
          return r;
        },
        "Keyed Aggregation");
  }
  template <size_t I>
  DataStream<T> min() {
    return reduce(
        [](const T& a, const T& b) {
          T r = a;
          if (std::get<I>(b) < std::get<I>(r)) std::get<I>(r) = std::get<I>(b);
          return r;
        },
        "Keyed Aggregation");
  }
  template <size_t I>
  DataStream<T> max() {
    return reduce(
        [](const T& a, const T& b) {
          T r = a;
          if (std::get<I>(r) < std::get<I>(b)) std::get<I>(r) = std::get<I>(b);
          return r;
        },
        "Keyed Aggregation");
  }
  DataStream<T> min() {
    return reduce([](const T& a, const T& b) { return b < a ? b : a; }, "Keyed Aggregation");
  }
  DataStream<T> max() {
    return reduce([](const T& a, const T& b) { return a < b ? b : a; }, "Keyed Aggregation");
  }
  // Windows per key (see sluice/windows.h): keyed.window(TumblingEventTimeWindows::of(...)).
  template <class A>
  WindowedStream<T, KS, A> window(A assigner) const {
    return WindowedStream<T, KS, A>(in_, ks_, std::move(assigner));
  }
  // A KeyedProcessFunction<K, T, OUT> subclass; one copy per subtask.
  template <class F>
  auto process(F fn, std::string name = "Keyed Process") {
    using OUT = typename F::output_type;
    KS ks = ks_;
    return in_.template add_one_input<OUT>(
        std::move(name), "process", [ks, fn](Collector<OUT>* out, const std::string& n) {
          return std::make_unique<KeyedProcessOperator<K, T, OUT, KS, F>>(n, ks, fn, out);
        });
  }

 private:
  template <class T1, class T2>
  friend class ConnectedStreams;
  DataStream<T> in_;
  KS ks_;
};

// Two streams connected for one function: records of the first go to process_element1, of the
// second to process_element2. The watermark of the function is the lower of the two inputs'.
template <class T1, class T2>
class ConnectedStreams {
 public:
  ConnectedStreams(DataStream<T1> first, DataStream<T2> second)
      : first_(std::move(first)), second_(std::move(second)) {}

  // Partitions both inputs by key: ks1(const T1&) and ks2(const T2&) must return the same key
  // type, and records with equal keys of either input meet in one subtask.
  template <class KS1, class KS2>
  KeyedConnectedStreams<T1, T2, KS1, KS2> key_by(KS1 ks1, KS2 ks2) const {
    return KeyedConnectedStreams<T1, T2, KS1, KS2>(
        ConnectedStreams(KeyedStream<T1, KS1>(first_, ks1).in_,
                         KeyedStream<T2, KS2>(second_, ks2).in_),
        std::move(ks1), std::move(ks2));
  }
  // A CoProcessFunction<T1, T2, OUT> subclass; one copy per subtask.
  template <class F>
  auto process(F fn, std::string name = "Co-Process") const {
    using OUT = typename F::output_type;
    return add_node<OUT>(std::move(name), [fn](Collector<OUT>* out, const std::string& n) {
      return std::make_unique<CoProcessOperator<T1, T2, OUT, F>>(n, fn, out);
    });
  }

 private:
  template <class U1, class U2, class KS1, class KS2>
  friend class KeyedConnectedStreams;

  // The node of a function over both inputs.
  template <class OUT, class Make>
  DataStream<OUT> add_node(std::string name, Make make) const {
    auto n = std::make_unique<TwoInputNode<T1, T2, OUT>>();
    n->name = std::move(name);
    n->kind = "co_process";
    n->inputs = first_.inputs();
    for (InputSpec spec : second_.inputs()) {
      spec.logical_input = 1;
      n->inputs.push_back(std::move(spec));
    }
    n->timestamped = first_.timestamped() || second_.timestamped();
    std::string* name_ref = &n->name;
    n->factory = [make, name_ref](Collector<OUT>* out) { return make(out, *name_ref); };
    auto* raw = first_.env_->add_node(std::move(n));
    return DataStream<OUT>(first_.env_, {raw->id});
  }

  DataStream<T1> first_;
  DataStream<T2> second_;
};

// Connected streams partitioned by key (ConnectedStreams::key_by).
template <class T1, class T2, class KS1, class KS2>
class KeyedConnectedStreams {
 public:
  using K = std::decay_t<std::invoke_result_t<KS1&, const T1&>>;
  static_assert(std::is_same_v<K, std::decay_t<std::invoke_result_t<KS2&, const T2&>>>,
                "both key selectors must return the same key type");

  KeyedConnectedStreams(ConnectedStreams<T1, T2> in, KS1 ks1, KS2 ks2)
      : in_(std::move(in)), ks1_(std::move(ks1)), ks2_(std::move(ks2)) {}
  // A KeyedCoProcessFunction<K, T1, T2, OUT> subclass; one copy per subtask.
  template <class F>
  auto process(F fn, std::string name = "Keyed Co-Process") const {
    using OUT = typename F::output_type;
    KS1 ks1 = ks1_;
    KS2 ks2 = ks2_;
    return in_.template add_node<OUT>(
        std::move(name), [ks1, ks2, fn](Collector<OUT>* out, const std::string& n) {
          return std::make_unique<KeyedCoProcessOperator<K, T1, T2, OUT, KS1, KS2, F>>(n, ks1, ks2,
                                                                                       fn, out);
        });
  }

 private:
  ConnectedStreams<T1, T2> in_;
  KS1 ks1_;
  KS2 ks2_;
};

// ---------------------------------------------------------------------------------------------
// Environment members that need DataStream.

template <class T, class F>
DataStream<T> StreamExecutionEnvironment::add_source_node(F fn, std::string name, bool parallel) {
  auto n = std::make_unique<TypedNode<T>>();
  n->name = "Source: " + name;
  n->kind = "source";
  n->fixed_parallelism = !parallel;
  if (!parallel) n->parallelism = 1;
  std::string* name_ref = &n->name;
  n->factory = [fn, name_ref](Collector<T>* out) {
    return std::make_unique<SourceOperator<T, F>>(*name_ref, fn, out);
  };
  auto* raw = add_node(std::move(n));
  return DataStream<T>(this, {raw->id});
}

template <class T>
DataStream<T> StreamExecutionEnvironment::from_collection(std::vector<T> elements) {
  return add_source_node<T>(CollectionSource<T>(std::move(elements)), "Collection Source", false);
}

inline DataStream<int64_t> StreamExecutionEnvironment::generate_sequence(int64_t from, int64_t to) {
  if (to < from) {
    throw std::invalid_argument("generate_sequence: 'to' (" + std::to_string(to) +
                                ") is below 'from' (" + std::to_string(from) + ")");
  }
  return add_source_node<int64_t>(SequenceSource(from, to), "Sequence Source", true);
}

inline DataStream<std::string> StreamExecutionEnvironment::read_text_file(std::string path) {
  return add_source_node<std::string>(TextFileSource(path), "Text File " + path, true);
}

inline DataStream<std::string> StreamExecutionEnvironment::socket_text_stream(std::string host,
                                                                              int port,
                                                                              char delimiter) {
  return add_source_node<std::string>(SocketTextSource(host, port, delimiter),
                                      "Socket Stream " + host + ":" + std::to_string(port), false);
}

template <class F>
DataStream<typename F::value_type> StreamExecutionEnvironment::add_source(F fn, std::string name) {
  return add_source_node<typename F::value_type>(std::move(fn), std::move(name), true);
}

}  // namespace sluice
