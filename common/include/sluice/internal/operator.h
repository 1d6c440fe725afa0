// The base of every operator, and what the operators that run user functions share: the
// boundary where user code's exceptions become OperatorErrors, the contexts handed to user
// functions, and the per-function operator state.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sluice/core.h"
#include "sluice/functions.h"
#include "sluice/internal/runtime.h"
#include "sluice/internal/state_backend.h"

namespace sluice::internal {

// Turns the exception being handled (inside a catch block) into the one a task fails with: an
// OperatorError naming `op_name` for a user error; OperatorError and TaskCancelled unchanged.
[[noreturn]] void rethrow_as_operator_error(const std::string& op_name);

}  // namespace sluice::internal

// Calls into user code: a std::exception becomes an OperatorError naming the operator.
#define SLUICE_USER_CALL(op_name, ...)                      \
  try {                                                     \
    __VA_ARGS__;                                            \
  } catch (...) {                                           \
    ::sluice::internal::rethrow_as_operator_error(op_name); \
  }

namespace sluice::internal {

// What the operators of one chain share: the timestamp of the record being passed down the
// chain (records pass as plain objects; an operator that gives a record a timestamp sets it here
// before emitting, and the operators after it read it).
struct ChainContext {
  int64_t timestamp = kNoTimestamp;
};

class OperatorBase {
 public:
  explicit OperatorBase(std::string name) : name_(std::move(name)) {}
  virtual ~OperatorBase();
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

  // Called by build_chain: the operator's node id, the chain's context, the operators chained
  // after it (none at a chain's end, several where the chain forks) and its network outputs,
  // which watermarks go to, and where it counts its records (null: metrics are off).
  void bind(int node_id, ChainContext* chain, std::vector<OperatorBase*> chained,
            std::vector<RecordWriter*> writers, OperatorCounters* counters) {
    node_id_ = node_id;
    chain_ = chain;
    chained_ = std::move(chained);
    writers_ = std::move(writers);
    counters_ = counters;
    in_count_ = counters ? &counters->records_in : nullptr;
  }
  // One record arrived at the operator's input (each input collector calls it first).
  void count_in() {
    if (in_count_) in_count_->add(1);
  }
  // The chain counts this operator's input records elsewhere (see OperatorCounters).
  void count_input_elsewhere() { in_count_ = nullptr; }
  // The operator emits exactly one record for each record it receives, to its main output.
  virtual bool one_to_one() const { return false; }

 protected:
  void output_watermark(int64_t watermark) {
    if (counters_) counters_->output_watermark.store(watermark, std::memory_order_relaxed);
    for (OperatorBase* c : chained_) c->process_watermark(watermark);
    for (RecordWriter* w : writers_) w->emit_watermark(watermark);
  }
  void output_watermark_status(bool idle) {
    for (OperatorBase* c : chained_) c->process_watermark_status(idle);
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
  std::vector<OperatorBase*> chained_;
  std::vector<RecordWriter*> writers_;
  OperatorCounters* counters_ = nullptr;
  SingleWriterCounter* in_count_ = nullptr;
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
    void emit(IN1&& v) override {
      op->count_in();
      op->emit1(std::move(v));
    }
    TwoInputOperator* op;
  };
  struct Second final : Collector<IN2> {
    explicit Second(TwoInputOperator* o) : op(o) {}
    void emit(IN2&& v) override {
      op->count_in();
      op->emit2(std::move(v));
    }
    TwoInputOperator* op;
  };
  First first_;
  Second second_;
  Inputs inputs_;
};

// What an operator that runs a user function keeps for it: the function's operator state and
// its RuntimeContext.
class FunctionState {
 public:
  FunctionState();
  ~FunctionState();
  // From OperatorBase::initialize_state. Throws SerializationError on malformed bytes.
  void initialize(const OperatorSnapshot* restored, bool is_restored);
  // The context to open the function with; `keyed` for functions on a keyed stream.
  RuntimeContext& context(TaskRuntime& rt, KeyedStateBackend* keyed = nullptr);
  void snapshot(OperatorSnapshot& out) const;
  // The function's operator state (broadcast state lives there too).
  OperatorStateStore& store() { return store_; }

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

}  // namespace sluice::internal
