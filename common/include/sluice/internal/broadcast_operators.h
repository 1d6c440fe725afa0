// The operators of broadcast functions (a data stream, plain or keyed, connected with a broadcast
// stream) and the contexts they hand to the function's two sides.
//
// The broadcast states are the function's operator state, declared from the broadcast stream's
// descriptors when the operator opens and stored as broadcast lists (ListDistribution::
// kBroadcast), so that a restore at any parallelism gives every subtask one old subtask's copy.
// The data side's context gives them out read only; the broadcast side's, writable.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sluice/functions.h"
#include "sluice/internal/keyed_operators.h"
#include "sluice/internal/operator.h"
#include "sluice/internal/state_backend.h"

namespace sluice::internal {

// What both contexts of a non-keyed broadcast operator read.
struct BroadcastContextData {
  const OperatorBase* op = nullptr;
  SideOutputs* side = nullptr;
  BroadcastStates* states = nullptr;
  TaskRuntime* rt = nullptr;          // set at open()
  int64_t watermark = kMinWatermark;  // the operator's input watermark
};

// A context of a non-keyed broadcast function: Iface is BroadcastReadOnlyContext (data side) or
// BroadcastContext (broadcast side).
template <class Iface>
class BroadcastContextImpl final : public Iface {
 public:
  explicit BroadcastContextImpl(const BroadcastContextData* data) : data_(data) {}
  int64_t timestamp() const override { return data_->op->element_timestamp(); }
  int64_t current_processing_time() const override { return data_->rt->current_processing_time(); }
  int64_t current_watermark() const override { return data_->watermark; }

 private:
  SideOutputs& side_outputs() override { return *data_->side; }
  BroadcastStates& broadcast_states() override { return *data_->states; }
  const BroadcastContextData* data_;
};

// Runs a BroadcastProcessFunction: input 1 is the data stream, input 2 the broadcast stream.
template <class IN1, class IN2, class OUT, class F>
class BroadcastProcessOperator final : public FunctionOperator<TwoInputOperator<IN1, IN2>, F> {
  using Base = FunctionOperator<TwoInputOperator<IN1, IN2>, F>;

 public:
  BroadcastProcessOperator(std::string name, F f, std::vector<BroadcastStateSpec> specs,
                           Collector<OUT>* out)
      : Base(std::move(name), std::move(f)), out_(out), states_(std::move(specs)) {}
  void open(TaskRuntime& rt) override {
    data_.rt = &rt;
    SLUICE_USER_CALL(this->name_, states_.declare(this->state_.store()));
    Base::open(rt);
  }
  void emit1(IN1&& v) override {
    SLUICE_USER_CALL(this->name_, this->f_.process_element(v, read_only_, *out_));
  }
  void emit2(IN2&& v) override {
    SLUICE_USER_CALL(this->name_, this->f_.process_broadcast_element(v, writable_, *out_));
  }
  void process_watermark(int64_t watermark) override {
    data_.watermark = watermark;
    this->output_watermark(watermark);
  }
  void end_input() override { SLUICE_USER_CALL(this->name_, this->f_.end_input(*out_)); }
  SideOutputs* side_outputs() override { return &side_; }

 private:
  Collector<OUT>* out_;
  SideOutputs side_;
  BroadcastStates states_;
  BroadcastContextData data_{this, &side_, &states_};
  BroadcastContextImpl<BroadcastReadOnlyContext> read_only_{&data_};
  BroadcastContextImpl<BroadcastContext> writable_{&data_};
};

// The data side's context of a keyed broadcast function, also its on_timer context (the
// KeyedFunctionOperator's Ctx).
template <class K>
class KeyedBroadcastReadOnlyContextImpl final : public KeyedBroadcastOnTimerContext<K> {
 public:
  KeyedBroadcastReadOnlyContextImpl(const OperatorBase* op, SideOutputs* side)
      : op_(op), side_(side) {}
  int64_t timestamp() const override { return op_->element_timestamp(); }
  int64_t current_processing_time() const override { return timers->current_processing_time(); }
  int64_t current_watermark() const override { return timers->current_watermark(); }
  const K& current_key() const override { return key; }
  TimerService& timer_service() override { return *timers; }
  TimeDomain time_domain() const override { return domain; }
  K key{};
  TimeDomain domain = TimeDomain::kEventTime;
  TimerService* timers = nullptr;     // set at open()
  BroadcastStates* states = nullptr;  // set at open()

 private:
  SideOutputs& side_outputs() override { return *side_; }
  BroadcastStates& broadcast_states() override { return *states; }
  const OperatorBase* op_;
  SideOutputs* side_;
};

// The broadcast side's context of a keyed broadcast function.
template <class K>
class KeyedBroadcastContextImpl final : public KeyedBroadcastContext<K> {
 public:
  explicit KeyedBroadcastContextImpl(const OperatorBase* op) : op_(op) {}
  int64_t timestamp() const override { return op_->element_timestamp(); }
  int64_t current_processing_time() const override { return timers->current_processing_time(); }
  int64_t current_watermark() const override { return timers->current_watermark(); }
  // All set at open().
  TimerService* timers = nullptr;
  SideOutputs* side = nullptr;
  BroadcastStates* states = nullptr;
  KeyedStateBackend* backend = nullptr;

 private:
  SideOutputs& side_outputs() override { return *side; }
  BroadcastStates& broadcast_states() override { return *states; }
  KeyedStateBackend& keyed_state_backend() override { return *backend; }
  const OperatorBase* op_;
};

// Runs a KeyedBroadcastProcessFunction: input 1 is the keyed data stream, whose records have
// their key's state and timers, input 2 the broadcast stream, whose records have no key.
template <class K, class IN1, class IN2, class OUT, class KS, class F>
class KeyedBroadcastProcessOperator final
    : public KeyedFunctionOperator<TwoInputOperator<IN1, IN2>, K, OUT, F,
                                   KeyedBroadcastReadOnlyContextImpl<K>> {
  using Base = KeyedFunctionOperator<TwoInputOperator<IN1, IN2>, K, OUT, F,
                                     KeyedBroadcastReadOnlyContextImpl<K>>;

 public:
  KeyedBroadcastProcessOperator(std::string name, KS ks, F f, std::vector<BroadcastStateSpec> specs,
                                Collector<OUT>* out)
      : Base(std::move(name), std::move(f), out), ks_(std::move(ks)), states_(std::move(specs)) {}
  void open(TaskRuntime& rt) override {
    SLUICE_USER_CALL(this->name_, states_.declare(this->state_.store()));
    this->ctx_.states = &states_;
    writable_.states = &states_;
    writable_.side = this->side_outputs();
    // Creates the backend and the timers, and opens the function.
    Base::open(rt);
    writable_.timers = this->user_timer_service();
    writable_.backend = this->backend_.get();
  }
  void emit1(IN1&& v) override {
    this->process_with_key([&] { return ks_(static_cast<const IN1&>(v)); },
                           [&] { this->f_.process_element(v, this->ctx_, *this->out_); });
  }
  void emit2(IN2&& v) override {
    SLUICE_USER_CALL(this->name_, {
      this->backend_->clear_current_key();
      this->f_.process_broadcast_element(v, writable_, *this->out_);
    });
  }
  void end_input() override { SLUICE_USER_CALL(this->name_, this->f_.end_input(*this->out_)); }

 private:
  KS ks_;
  BroadcastStates states_;
  KeyedBroadcastContextImpl<K> writable_{this};
};

}  // namespace sluice::internal
