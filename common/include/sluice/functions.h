// The interfaces user code implements: collectors, sources, process functions and sinks.
#pragma once

#include <atomic>
#include <stdexcept>
#include <string>
#include <utility>

#include "sluice/runtime.h"
#include "sluice/state.h"

namespace sluice {

// Receives records. collect() copies or moves the value downstream.
template <class T>
class Collector {
 public:
  virtual ~Collector() = default;
  void collect(T&& v) { emit(std::move(v)); }
  void collect(const T& v) { emit(T(v)); }
  virtual void emit(T&& v) = 0;
};

// What a function can see of the subtask running it, and, in functions on a keyed stream, its
// keyed state (see sluice/state.h). The get_*_state calls belong in open(); each returns the
// same state object for the same name every time.
class RuntimeContext {
 public:
  explicit RuntimeContext(TaskRuntime& rt, KeyedStateStore* keyed = nullptr)
      : rt_(rt), keyed_(keyed) {}
  const TaskInfo& task_info() const { return rt_.info(); }
  int index_of_this_subtask() const { return rt_.info().subtask_index; }
  int number_of_parallel_subtasks() const { return rt_.info().parallelism; }
  bool cancelled() const { return rt_.cancelled(); }

  template <class T>
  ValueState<T>& get_state(const ValueStateDescriptor<T>& d) {
    return store().template get<ValueState<T>>(d);
  }
  template <class T>
  ListState<T>& get_list_state(const ListStateDescriptor<T>& d) {
    return store().template get<ListState<T>>(d);
  }
  template <class K, class V>
  MapState<K, V>& get_map_state(const MapStateDescriptor<K, V>& d) {
    return store().template get<MapState<K, V>>(d);
  }
  template <class T>
  ReducingState<T>& get_reducing_state(const ReducingStateDescriptor<T>& d) {
    return store().template get<ReducingState<T>>(d);
  }
  template <class IN, class ACC, class OUT>
  AggregatingState<IN, ACC, OUT>& get_aggregating_state(
      const AggregatingStateDescriptor<IN, ACC, OUT>& d) {
    return store().template get<AggregatingState<IN, ACC, OUT>>(d);
  }

 private:
  KeyedStateStore& store() {
    if (!keyed_) {
      throw std::logic_error("keyed state is only available in functions on a keyed stream "
                             "(after key_by)");
    }
    return *keyed_;
  }
  TaskRuntime& rt_;
  KeyedStateStore* keyed_;
};

// A user source, in the style of Flink's SourceFunction: run() emits records until the input
// ends or cancel() is called (from another thread). One copy of the function runs per subtask;
// a source is parallel when given a parallelism above 1 (use the RuntimeContext to split work).
template <class T>
class SourceFunction {
 public:
  using value_type = T;
  class SourceContext {
   public:
    virtual ~SourceContext() = default;
    virtual void collect(T&& v) = 0;
    void collect(const T& v) { collect(T(v)); }
    // Sends what was collected so far downstream at once. Call it before waiting for input
    // (a socket, a queue, a sleep): otherwise those records wait for the next collect().
    virtual void flush() {}
  };
  virtual ~SourceFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void run(SourceContext& ctx) = 0;
  virtual void cancel() { running_.store(false); }
  virtual void close() {}

 protected:
  bool is_running() const { return running_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> running_{true};

 public:
  SourceFunction() = default;
  SourceFunction(const SourceFunction&) : running_(true) {}
  SourceFunction& operator=(const SourceFunction&) { return *this; }
};

// A function over a keyed stream. process_element() sees one record and its key; end_input() is
// called once when a bounded input has ended, and may emit final results.
template <class K, class IN, class OUT>
class KeyedProcessFunction {
 public:
  using key_type = K;
  using input_type = IN;
  using output_type = OUT;
  class Context {
   public:
    virtual ~Context() = default;
    virtual const K& current_key() const = 0;
  };
  virtual ~KeyedProcessFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void process_element(const IN& value, Context& ctx, Collector<OUT>& out) = 0;
  virtual void end_input(Collector<OUT>&) {}
  virtual void close() {}
};

// A function over a plain stream, with the same hooks as KeyedProcessFunction but no key.
template <class IN, class OUT>
class ProcessFunction {
 public:
  using input_type = IN;
  using output_type = OUT;
  virtual ~ProcessFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void process_element(const IN& value, Collector<OUT>& out) = 0;
  virtual void end_input(Collector<OUT>&) {}
  virtual void close() {}
};

// A user sink: invoke() is called once per record.
template <class T>
class SinkFunction {
 public:
  virtual ~SinkFunction() = default;
  virtual void open(RuntimeContext&) {}
  virtual void invoke(const T& value) = 0;
  virtual void close() {}
};

// A sink that drops every record (Flink's DiscardingSink), for tests and benchmarks.
template <class T>
class DiscardingSink final : public SinkFunction<T> {
 public:
  void invoke(const T&) override {}
};

}  // namespace sluice
