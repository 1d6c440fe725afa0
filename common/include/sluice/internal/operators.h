// The operators of the non-keyed transformations, sources and sinks.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "sluice/format.h"
#include "sluice/functions.h"
#include "sluice/internal/operator.h"
#include "sluice/watermarks.h"

namespace sluice::internal {

template <class IN, class OUT, class F>
class MapOperator final : public OneInputOperator<IN> {
 public:
  bool one_to_one() const override { return true; }
  MapOperator(std::string name, F f, Collector<OUT>* out)
      : OneInputOperator<IN>(std::move(name)), f_(std::move(f)), out_(out) {}
  void emit(IN&& v) override {
    this->count_in();
    SLUICE_USER_CALL(this->name_, out_->emit(f_(std::move(v))));
  }

 private:
  F f_;
  Collector<OUT>* out_;
};

template <class IN, class OUT, class F>
class FlatMapOperator final : public OneInputOperator<IN> {
 public:
  FlatMapOperator(std::string name, F f, Collector<OUT>* out)
      : OneInputOperator<IN>(std::move(name)), f_(std::move(f)), out_(out) {}
  void emit(IN&& v) override {
    this->count_in();
    SLUICE_USER_CALL(this->name_, f_(v, *out_));
  }

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
    this->count_in();
    SLUICE_USER_CALL(this->name_, if (f_(static_cast<const T&>(v))) out_->emit(std::move(v)));
  }

 private:
  F f_;
  Collector<T>* out_;
};

template <class IN, class OUT, class F>
class ProcessOperator final : public ContextFunctionOperator<OneInputOperator<IN>, F, OUT> {
 public:
  using ContextFunctionOperator<OneInputOperator<IN>, F, OUT>::ContextFunctionOperator;
  void emit(IN&& v) override {
    this->count_in();
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
  bool one_to_one() const override { return true; }
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
    this->count_in();
    // The record's timestamp as it came is restored afterwards, for what reads the same record
    // after this operator (another branch of a chain that forks, a network edge).
    typename OperatorBase::TimestampGuard keep(this);
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
  bool one_to_one() const override { return true; }
  PassThroughOperator(std::string name, Collector<T>* out)
      : OneInputOperator<T>(std::move(name)), out_(out) {}
  void emit(T&& v) override {
    this->count_in();
    out_->emit(std::move(v));
  }

 private:
  Collector<T>* out_;
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
    this->count_in();
    line_ = prefix_;
    format_to(line_, v);
    rt_->print_line(line_);
  }

 private:
  TaskRuntime* rt_ = nullptr;
  std::string prefix_;
  std::string line_;
};

template <class T, class F>
class UserSinkOperator final : public FunctionOperator<OneInputOperator<T>, F> {
 public:
  UserSinkOperator(std::string name, F f)
      : FunctionOperator<OneInputOperator<T>, F>(std::move(name), std::move(f)) {}
  void emit(T&& v) override {
    this->count_in();
    SLUICE_USER_CALL(this->name_, this->f_.invoke(v));
  }
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
  struct Ctx final : SourceFunction<T>::SourceContext, WatermarkOutput {
    Ctx(SourceOperator* o, TaskRuntime& r) : op(o), out(o->out_), rt(r), mail(r.mail_flag()) {}
    void collect(T&& v) override { collect_with_timestamp(std::move(v), kNoTimestamp); }
    void collect_with_timestamp(T&& v, int64_t timestamp) override {
      // Mail first: a checkpoint taken now must not include `v`.
      if (mail.load(std::memory_order_relaxed)) rt.process_mail();
      if ((++count & 255) == 0 && rt.cancelled()) throw TaskCancelled();
      op->set_element_timestamp(timestamp);
      out->emit(std::move(v));
    }
    void flush() override {
      if (mail.load(std::memory_order_relaxed)) rt.process_mail();
      rt.flush_outputs();
    }
    WatermarkOutput& watermark_output() override { return *this; }
    void emit_watermark(int64_t watermark) override {
      if (watermark <= watermark_) return;
      mark_active();
      watermark_ = watermark;
      op->emit_source_watermark(watermark);
    }
    void mark_idle() override {
      if (idle) return;
      idle = true;
      op->emit_source_watermark_status(true);
    }
    void mark_active() override {
      if (!idle) return;
      idle = false;
      op->emit_source_watermark_status(false);
    }
    SourceOperator* op;
    Collector<T>* out;
    TaskRuntime& rt;
    const std::atomic<bool>& mail;
    uint64_t count = 0;
    int64_t watermark_ = kMinWatermark;
    bool idle = false;
  };
  void emit_source_watermark(int64_t watermark) { this->output_watermark(watermark); }
  void emit_source_watermark_status(bool idle) { this->output_watermark_status(idle); }
  Collector<T>* out_;
};
}  // namespace sluice::internal
