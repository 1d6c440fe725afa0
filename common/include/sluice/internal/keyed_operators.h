// The operators of keyed streams: keyed state, timers and the current key.
#pragma once

#include <memory>
#include <string>
#include <utility>

#include "sluice/functions.h"
#include "sluice/internal/operator.h"
#include "sluice/internal/timers.h"
#include "sluice/keys.h"
#include "sluice/state.h"

namespace sluice::internal {

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
    kc.set(key_group_for_hash(KeyHash<K>{}(key), max_parallelism_));
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
  bool one_to_one() const override { return true; }
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
    this->count_in();
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
// its timers and side outputs, and the context it is called with (Ctx: one that implements the
// function's OnTimerContext, with members `key`, `domain` and `timers`).
template <class Base, class K, class OUT, class F, class Ctx = KeyedContextImpl<K>>
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
  Ctx ctx_{this, &side_};
  FunctionState state_;

 private:
  void fire_timer(const InternalTimer& t, TimeDomain domain) override {
    ctx_.key = deserialize<K>(t.key);
    ctx_.domain = domain;
    f_.on_timer(t.time, ctx_, *out_);
  }
  SideOutputs side_;
};

template <class K, class IN, class OUT, class KS, class F>
class KeyedProcessOperator final : public KeyedFunctionOperator<OneInputOperator<IN>, K, OUT, F> {
 public:
  KeyedProcessOperator(std::string name, KS ks, F f, Collector<OUT>* out)
      : KeyedFunctionOperator<OneInputOperator<IN>, K, OUT, F>(std::move(name), std::move(f), out),
        ks_(std::move(ks)) {}
  void emit(IN&& v) override {
    this->count_in();
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
}  // namespace sluice::internal
