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

namespace sluice {

enum class Partitioner { kDefault, kForward, kRebalance, kRescale, kHash, kBroadcast, kCustom };

inline const char* partitioner_name(Partitioner p) {
  switch (p) {
    case Partitioner::kDefault: return "default";
    case Partitioner::kForward: return "forward";
    case Partitioner::kRebalance: return "rebalance";
    case Partitioner::kRescale: return "rescale";
    case Partitioner::kHash: return "hash";
    case Partitioner::kBroadcast: return "broadcast";
    case Partitioner::kCustom: return "custom";
  }
  return "unknown";
}

// Calls into user code: a std::exception becomes an OperatorError naming the operator.
#define SLUICE_USER_CALL(op_name, ...)                                   \
  try {                                                                  \
    __VA_ARGS__;                                                         \
  } catch (const ::sluice::OperatorError&) {                             \
    throw;                                                               \
  } catch (const ::sluice::TaskCancelled&) {                             \
    throw;                                                               \
  } catch (const std::exception& e) {                                    \
    throw ::sluice::OperatorError(op_name, e.what());                    \
  } catch (...) {                                                        \
    throw ::sluice::OperatorError(op_name, "unknown exception");         \
  }

// ---------------------------------------------------------------------------------------------
// Operators: the typed objects of one subtask.

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
  const std::string& name() const { return name_; }

 protected:
  std::string name_;
};

template <class IN>
class OneInputOperator : public OperatorBase, public Collector<IN> {
 public:
  using OperatorBase::OperatorBase;
  void* input() override { return static_cast<Collector<IN>*>(this); }
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

template <class IN, class OUT, class F>
class ProcessOperator final : public FunctionOperator<OneInputOperator<IN>, F> {
 public:
  ProcessOperator(std::string name, F f, Collector<OUT>* out)
      : FunctionOperator<OneInputOperator<IN>, F>(std::move(name), std::move(f)), out_(out) {}
  void emit(IN&& v) override { SLUICE_USER_CALL(this->name_, this->f_.process_element(v, *out_)); }
  void end_input() override { SLUICE_USER_CALL(this->name_, this->f_.end_input(*out_)); }

 private:
  Collector<OUT>* out_;
};

// Base of the operators on a keyed stream: owns the keyed state backend of the subtask's
// key-group range, restores and snapshots it, and makes state accesses refer to the key of the
// record being processed.
template <class IN, class K>
class KeyedOneInputOperator : public OneInputOperator<IN> {
 public:
  using OneInputOperator<IN>::OneInputOperator;
  void initialize_state(TaskRuntime& rt, const OperatorSnapshot* restored, bool) override {
    create_backend(rt);
    if (restored) SLUICE_USER_CALL(this->name_, backend_->restore(*restored));
  }
  void snapshot_state(int64_t, OperatorSnapshot& out) override {
    if (backend_) SLUICE_USER_CALL(this->name_, backend_->snapshot(out));
  }

 protected:
  // Creates the backend, empty, unless initialize_state() did.
  void create_backend(TaskRuntime& rt) {
    if (backend_) return;
    const TaskInfo& info = rt.info();
    max_parallelism_ = info.max_parallelism;
    backend_ = std::make_unique<HeapKeyedStateBackend>(
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

  std::unique_ptr<KeyedStateBackend> backend_;
  int max_parallelism_ = kDefaultMaxParallelism;
};

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

template <class K, class IN, class OUT, class KS, class F>
class KeyedProcessOperator final : public KeyedOneInputOperator<IN, K> {
 public:
  KeyedProcessOperator(std::string name, KS ks, F f, Collector<OUT>* out)
      : KeyedOneInputOperator<IN, K>(std::move(name)),
        ks_(std::move(ks)),
        f_(std::move(f)),
        out_(out) {}
  void initialize_state(TaskRuntime& rt, const OperatorSnapshot* restored,
                        bool is_restored) override {
    KeyedOneInputOperator<IN, K>::initialize_state(rt, restored, is_restored);
    SLUICE_USER_CALL(this->name_, state_.initialize(restored, is_restored));
  }
  void open(TaskRuntime& rt) override {
    this->create_backend(rt);
    SLUICE_USER_CALL(this->name_, f_.open(state_.context(rt, this->backend_.get())));
  }
  void emit(IN&& v) override {
    SLUICE_USER_CALL(this->name_, {
      ctx_.key = ks_(static_cast<const IN&>(v));
      this->set_current_key(ctx_.key);  // state accesses in process_element refer to this key
      f_.process_element(v, ctx_, *out_);
    });
  }
  // Every key with state first (each as the current key), then the end of input without one.
  void end_input() override {
    SLUICE_USER_CALL(this->name_, {
      this->backend_->for_each_key([this](const std::string& key) {
        ctx_.key = deserialize<K>(key);
        f_.end_input_of_key(ctx_.key, *out_);
      });
      f_.end_input(*out_);
    });
  }
  void close() override { SLUICE_USER_CALL(this->name_, f_.close()); }
  void snapshot_state(int64_t checkpoint_id, OperatorSnapshot& out) override {
    SLUICE_USER_CALL(this->name_, f_.snapshot_state(checkpoint_id));
    KeyedOneInputOperator<IN, K>::snapshot_state(checkpoint_id, out);
    state_.snapshot(out);
  }
  void notify_checkpoint_complete(int64_t checkpoint_id) override {
    SLUICE_USER_CALL(this->name_, f_.notify_checkpoint_complete(checkpoint_id));
  }

 private:
  struct Ctx final : KeyedProcessFunction<K, IN, OUT>::Context {
    K key{};
    const K& current_key() const override { return key; }
  };
  KS ks_;
  F f_;
  Collector<OUT>* out_;
  Ctx ctx_;
  FunctionState state_;
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
    if (ec) throw OperatorError(this->name_, "cannot create directory '" + dir_ + "': " + ec.message());
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
    Ctx c(out_, rt);
    SLUICE_USER_CALL(this->name_, this->f_.run(c));
  }
  void cancel() override { this->f_.cancel(); }

 private:
  struct Ctx final : SourceFunction<T>::SourceContext {
    Ctx(Collector<T>* out, TaskRuntime& rt) : out(out), rt(rt), mail(rt.mail_flag()) {}
    void collect(T&& v) override {
      // Mail first: a checkpoint taken now must not include `v`.
      if (mail.load(std::memory_order_relaxed)) rt.process_mail();
      if ((++count & 255) == 0 && rt.cancelled()) throw TaskCancelled();
      out->emit(std::move(v));
    }
    void flush() override {
      if (mail.load(std::memory_order_relaxed)) rt.process_mail();
      rt.flush_outputs();
    }
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

template <class T>
class WriterCollector : public Collector<T> {
 protected:
  explicit WriterCollector(RecordWriter* w) : w_(w) {}
  void write(int channel, const T& v) {
    std::string& buf = w_->buffer(channel);
    DataOutput out(buf);
    Serializer<T>::write(out, v);
    w_->commit(channel);
  }
  RecordWriter* w_;
};

// Forward and rescale: round robin over the consumers this producer is connected to.
template <class T>
class PointwiseCollector final : public WriterCollector<T> {
 public:
  PointwiseCollector(RecordWriter* w, const TaskInfo& info) : WriterCollector<T>(w) {
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
  RebalanceCollector(RecordWriter* w, const TaskInfo& info)
      : WriterCollector<T>(w), n_(w->num_channels()), next_(info.subtask_index % n_) {}
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
  explicit BroadcastCollector(RecordWriter* w) : WriterCollector<T>(w) {}
  void emit(T&& v) override {
    for (int c = 0; c < this->w_->num_channels(); ++c) this->write(c, v);
  }
};

template <class T, class KS>
class KeyGroupCollector final : public WriterCollector<T> {
 public:
  KeyGroupCollector(RecordWriter* w, const TaskInfo& info, KS ks)
      : WriterCollector<T>(w), ks_(std::move(ks)), max_parallelism_(info.max_parallelism) {}
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
  CustomCollector(RecordWriter* w, P p, KS ks)
      : WriterCollector<T>(w), p_(std::move(p)), ks_(std::move(ks)) {}
  void emit(T&& v) override {
    int n = this->w_->num_channels();
    int c = static_cast<int>(p_(ks_(static_cast<const T&>(v)), n));
    if (c < 0 || c >= n) {
      throw std::out_of_range("custom partitioner returned channel " + std::to_string(c) +
                              " of " + std::to_string(n));
    }
    this->write(c, v);
  }

 private:
  P p_;
  KS ks_;
};

// ---------------------------------------------------------------------------------------------
// Stream nodes: the graph the entry point builds.

using WriterFactory = std::function<ErasedCollector(RecordWriter*, Partitioner, const TaskInfo&)>;

// One input of a node: the upstream node, how records are partitioned, and how the upstream's
// typed records are written to the network for this edge.
struct InputSpec {
  int node = -1;
  Partitioner partitioner = Partitioner::kDefault;
  WriterFactory make_writer;
};

class Node {
 public:
  virtual ~Node() = default;
  int id = -1;
  std::string name;
  std::string kind;          // "source", "map", "flat_map", "filter", "reduce", "process", "sink"
  int parallelism = 0;       // 0: the job's default
  bool fixed_parallelism = false;  // non-parallel sources always run with parallelism 1
  bool chaining = true;
  std::vector<InputSpec> inputs;

  bool is_source() const { return inputs.empty(); }
  // Creates this node's operator for one subtask; `out` is its Collector<OUT>* (never null).
  virtual std::unique_ptr<OperatorBase> create(void* out) const = 0;
  // One Collector<OUT> that forwards to all of `outs` (discards when empty).
  virtual ErasedCollector fan_out(const std::vector<void*>& outs) const = 0;
  // Deserializes the records of a buffer that arrived on input `input` into `in`, a Collector<IN>*.
  virtual void read_buffer(int input, std::string_view bytes, void* in) const = 0;
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
  void read_buffer(int, std::string_view, void*) const override {
    throw std::logic_error("node '" + name + "' has no network input");
  }
};

template <class IN, class OUT>
class OneInputNode final : public TypedNode<OUT> {
 public:
  void read_buffer(int, std::string_view bytes, void* in) const override {
    auto* c = static_cast<Collector<IN>*>(in);
    DataInput di(bytes);
    while (!di.at_end()) {
      IN v{};
      Serializer<IN>::read(di, v);
      c->emit(std::move(v));
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
    head_->read_buffer(input, bytes, head_input_);
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

 private:
  friend class StreamExecutionEnvironment;
  TaskRuntime& rt_;
  const Node* head_;
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
    for (size_t k = chain.size(); k-- > 0;) {
      const Node& node = *nodes_[chain[k]];
      std::vector<void*> targets;
      if (next_input) targets.push_back(next_input);
      for (const OutputBinding& b : outputs) {
        if (b.source_node != node.id) continue;
        const Node& target = *nodes_.at(b.target_node);
        const InputSpec& spec = target.inputs.at(b.target_input);
        ErasedCollector c = spec.make_writer(b.writer, b.partitioner, rt.info());
        targets.push_back(c.ptr);
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
    if (p < 1) throw std::invalid_argument("parallelism must be at least 1, got " + std::to_string(p));
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
  DataStream(StreamExecutionEnvironment* env, std::vector<int> ids) : env_(env), ids_(std::move(ids)) {}

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
    using O = std::conditional_t<std::is_void_v<OUT>,
                                 typename detail::collector_arg<
                                     typename detail::callable_traits<F>::second>::type,
                                 OUT>;
    return add_one_input<O>("Flat Map", "flat_map", [f](Collector<O>* out, const std::string& name) {
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
    return add_one_input<OUT>("Process", "process", [fn](Collector<OUT>* out, const std::string& name) {
      return std::make_unique<ProcessOperator<T, OUT, F>>(name, fn, out);
    });
  }
  // Partitions by key: records with equal keys go to the same subtask.
  template <class KS>
  KeyedStream<T, KS> key_by(KS key_selector) const {
    return KeyedStream<T, KS>(*this, std::move(key_selector));
  }
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
    r.typed_writer_ = [p, ks](RecordWriter* w, Partitioner, const TaskInfo&) {
      return erase_collector<T>(std::make_unique<CustomCollector<T, P, KS>>(w, p, ks));
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
    if (p < 1) throw std::invalid_argument("parallelism must be at least 1, got " + std::to_string(p));
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
      wf = [](RecordWriter* w, Partitioner p, const TaskInfo& info) -> ErasedCollector {
        switch (p) {
          case Partitioner::kForward:
          case Partitioner::kRescale:
            return erase_collector<T>(std::make_unique<PointwiseCollector<T>>(w, info));
          case Partitioner::kRebalance:
            return erase_collector<T>(std::make_unique<RebalanceCollector<T>>(w, info));
          case Partitioner::kBroadcast:
            return erase_collector<T>(std::make_unique<BroadcastCollector<T>>(w));
          default:
            throw std::logic_error(std::string("no writer for partitioner ") + partitioner_name(p));
        }
      };
    }
    std::vector<InputSpec> specs;
    for (int id : ids_) specs.push_back(InputSpec{id, partitioner_, wf});
    return specs;
  }

  template <class OUT, class Make>
  DataStream<OUT> add_one_input(std::string name, std::string kind, Make make) const {
    auto n = std::make_unique<OneInputNode<T, OUT>>();
    n->name = std::move(name);
    n->kind = std::move(kind);
    n->inputs = inputs();
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
    in_.typed_writer_ = [sel](RecordWriter* w, Partitioner, const TaskInfo& info) {
      return erase_collector<T>(std::make_unique<KeyGroupCollector<T, KS>>(w, info, sel));
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
  DataStream<T> in_;
  KS ks_;
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
