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

#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/core.h"
#include "sluice/functions.h"
#include "sluice/internal/broadcast_operators.h"
#include "sluice/internal/graph.h"
#include "sluice/internal/keyed_operators.h"
#include "sluice/internal/operators.h"
#include "sluice/internal/two_phase_commit.h"
#include "sluice/sources.h"
#include "sluice/watermarks.h"

namespace sluice {

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
class AsyncDataStream;  // sluice/async.h
template <class T>
class BroadcastStream;
template <class T1, class T2>
class BroadcastConnectedStream;
template <class T1, class KS, class T2>
class KeyedBroadcastConnectedStream;

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
  // A SourceFunction<T> (a user's, or a connector's such as sluice::files::TextFileSource); one
  // copy runs per subtask, or one in all if !fn.is_parallel(). An empty `name` takes the
  // source's default_name() if it has one, else "Custom Source".
  template <class F>
  DataStream<typename F::value_type> add_source(F fn, std::string name = "");
  // A source with event time (Flink's fromSource): a source that takes the strategy itself
  // (set_watermark_strategy, e.g. a Kafka source, whose watermarks are per partition) runs it
  // inside; any other gets assign_timestamps_and_watermarks(strategy) after it.
  template <class F>
  DataStream<typename F::value_type> from_source(F fn,
                                                 WatermarkStrategy<typename F::value_type> strategy,
                                                 std::string name = "");

  // ---- for the runtime ----
  const std::vector<std::unique_ptr<internal::Node>>& nodes() const { return nodes_; }
  // Builds the operator chain of one subtask. `chain` lists node ids head first; `outputs` binds
  // every network edge leaving the chain. Throws std::invalid_argument on an inconsistent spec.
  std::unique_ptr<internal::ChainTask> build_chain(
      const std::vector<int>& chain, const std::vector<internal::OutputBinding>& outputs,
      internal::TaskRuntime& rt) const {
    return internal::OperatorChain::build(nodes_, chain, outputs, rt);
  }

 private:
  template <class T>
  friend class DataStream;
  template <class T, class KS>
  friend class KeyedStream;
  template <class T1, class T2>
  friend class ConnectedStreams;

  // Adds `node`, giving it the next id, and returns it.
  internal::Node* add_node(std::unique_ptr<internal::Node> node);
  // Adds `node` consuming `inputs` and returns its id.
  int add_node(std::unique_ptr<internal::Node> node, std::string name, std::string kind,
               std::vector<internal::InputSpec> inputs, bool timestamped);
  // The inputs a consumer of the nodes `ids` gets: one per node, partitioned by `p`, written by
  // `writer`.
  std::vector<internal::InputSpec> edges_from(const std::vector<int>& ids, internal::Partitioner p,
                                              const internal::WriterFactory& writer) const;
  // Whether the records of any of the nodes `ids` carry timestamps.
  bool any_timestamped(const std::vector<int>& ids) const;

  template <class T, class F>
  DataStream<T> add_source_node(F fn, std::string name, bool parallel);

  std::vector<std::unique_ptr<internal::Node>> nodes_;
  int parallelism_ = 0;
  int max_parallelism_ = 0;
  std::string job_name_;
};

// A handle to the sink a stream ended in.
class DataStreamSink {
 public:
  explicit DataStreamSink(internal::Node* node) : node_(node) {}
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
  // The sink's operator id, as DataStream::uid.
  DataStreamSink& uid(std::string id) {
    internal::set_uid(*node_, std::move(id));
    return *this;
  }

 private:
  internal::Node* node_;
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
      return std::make_unique<internal::MapOperator<T, OUT, F>>(name, f, out);
    });
  }
  // Zero or more records out per record in: f(const T&, Collector<OUT>&).
  template <class OUT = void, class F>
  auto flat_map(F f) {
    using O = std::conditional_t<
        std::is_void_v<OUT>,
        typename detail::collector_arg<typename detail::callable_traits<F>::second>::type, OUT>;
    return add_one_input<O>(
        "Flat Map", "flat_map", [f](Collector<O>* out, const std::string& name) {
          return std::make_unique<internal::FlatMapOperator<T, O, F>>(name, f, out);
        });
  }
  // Keeps the records for which f(const T&) is true.
  template <class F>
  DataStream<T> filter(F f) {
    return add_one_input<T>("Filter", "filter", [f](Collector<T>* out, const std::string& name) {
      return std::make_unique<internal::FilterOperator<T, F>>(name, f, out);
    });
  }
  // A ProcessFunction<T, OUT> subclass; one copy per subtask.
  template <class F>
  auto process(F fn) {
    using OUT = typename F::output_type;
    return add_one_input<OUT>(
        "Process", "process", [fn](Collector<OUT>* out, const std::string& name) {
          return std::make_unique<internal::ProcessOperator<T, OUT, F>>(name, fn, out);
        });
  }
  // Event time: records get timestamps and the stream gets watermarks as `strategy` says (see
  // sluice/watermarks.h). Chained to the operator before it, typically the source.
  DataStream<T> assign_timestamps_and_watermarks(WatermarkStrategy<T> strategy) {
    return add_one_input<T>(
        "Timestamps/Watermarks", "timestamps",
        [strategy](Collector<T>* out, const std::string& name) {
          return std::make_unique<internal::TimestampsAndWatermarksOperator<T>>(name, strategy,
                                                                                out);
        },
        true);
  }
  // The records that this stream's operator emitted to the side output `tag`.
  template <class S>
  DataStream<S> get_side_output(const OutputTag<S>& tag) const {
    internal::Node& producer = node();
    auto make = [](Collector<S>* out, const std::string& name) {
      return std::make_unique<internal::PassThroughOperator<S>>(name, out);
    };
    auto n = std::make_unique<internal::OneInputNode<S, S, decltype(make)>>(make);
    n->name = "Side Output: " + tag.id();
    n->kind = "side_output";
    n->parallelism = producer.parallelism;
    internal::InputSpec spec;
    spec.node = producer.id;
    spec.partitioner = internal::Partitioner::kForward;
    // Always forward: the side output's consumer runs beside its producer.
    spec.make_writer = [](internal::RecordWriter* w, internal::Partitioner, const TaskInfo& info,
                          const int64_t* ts) {
      return internal::make_cycle_writer<S>(w, internal::Partitioner::kForward, info, ts);
    };
    spec.timestamped = producer.timestamped;
    spec.side_tag = tag.id();
    spec.side_type = &typeid(S);
    n->inputs.push_back(std::move(spec));
    n->timestamped = producer.timestamped;
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
  // This stream with a broadcast stream (see broadcast(descriptors)), for a
  // BroadcastProcessFunction.
  template <class T2>
  BroadcastConnectedStream<T, T2> connect(const BroadcastStream<T2>& other) const;
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
  DataStream<T> forward() const { return with_partitioner(internal::Partitioner::kForward); }
  DataStream<T> rebalance() const { return with_partitioner(internal::Partitioner::kRebalance); }
  DataStream<T> rescale() const { return with_partitioner(internal::Partitioner::kRescale); }
  DataStream<T> broadcast() const { return with_partitioner(internal::Partitioner::kBroadcast); }
  // The stream as the broadcast side of a broadcast function (Flink's broadcast state pattern):
  // connected to another stream, every record goes to every subtask of the function, which keeps
  // what it needs in the broadcast states these descriptors name (at least one; names distinct).
  template <class K, class V, class... More>
  BroadcastStream<T> broadcast(const MapStateDescriptor<K, V>& first, const More&... more) const;
  // Sends each record to channel p(key, n) of n, with key = ks(record).
  template <class P, class KS>
  DataStream<T> partition_custom(P p, KS ks) const {
    DataStream<T> r = with_partitioner(internal::Partitioner::kCustom);
    r.typed_writer_ = [p, ks](internal::RecordWriter* w, internal::Partitioner, const TaskInfo&,
                              const int64_t* ts) {
      return internal::erase_writer<T>(
          std::make_unique<internal::CustomCollector<T, P, KS>>(w, ts, p, ks));
    };
    return r;
  }

  DataStreamSink print() {
    return add_sink("Sink: Print to Std. Out", [](const std::string& name) {
      return std::make_unique<internal::PrintSinkOperator<T>>(name);
    });
  }
  // A SinkFunction<T> subclass (a user's), or a connector's sink such as
  // sluice::files::TextFileSink; one copy per subtask. An empty `name` takes the sink's
  // default_name() if it has one, else "Sink: Custom Sink".
  template <class F>
  DataStreamSink add_sink(F fn, std::string name = "") {
    if (name.empty()) {
      if constexpr (requires { fn.default_name(); }) {
        name = fn.default_name();
      } else {
        name = "Sink: Custom Sink";
      }
    }
    return add_sink(std::move(name), [fn](const std::string& n) {
      return std::make_unique<internal::UserSinkOperator<T, F>>(n, fn);
    });
  }
  // A TwoPhaseCommitSinkFunction<T, TXN> subclass (sluice/sinks.h), e.g.
  // ExactlyOnceTextFileSink<T>: exactly-once output with checkpoints. One copy per subtask;
  // an empty `name` takes the sink's default_name().
  template <class S>
  DataStreamSink sink_to(S sink, std::string name = "") {
    if (name.empty()) name = sink.default_name();
    return add_sink(std::move(name), [sink](const std::string& n) {
      return std::make_unique<internal::TwoPhaseCommitSinkOperator<T, S>>(n, sink);
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
  // The operator's id for its state (Flink's uid): a job started from a checkpoint gives each
  // operator the state of the operator with the same id, however else the job changed. Unique
  // in a job (building its graph fails naming both operators otherwise). Without a uid an
  // operator has a structural id, which changes when the operators before it change (see
  // docs/ARCHITECTURE.md, "Job graph"). Throws std::invalid_argument when `id` is empty.
  DataStream<T>& uid(std::string id) {
    internal::set_uid(node(), std::move(id));
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
  template <class U>
  friend class BroadcastStream;
  friend class StreamExecutionEnvironment;
  friend class AsyncDataStream;

  internal::Node& node() const {
    if (ids_.size() != 1) {
      throw std::logic_error("a union of streams has no single operator to configure");
    }
    return *env_->nodes_[ids_.front()];
  }

  DataStream<T> with_partitioner(internal::Partitioner p) const {
    DataStream<T> r = *this;
    r.partitioner_ = p;
    r.typed_writer_ = nullptr;
    return r;
  }

  // The inputs a consumer of this stream gets: one per unioned node.
  std::vector<internal::InputSpec> inputs() const {
    return env_->edges_from(ids_, partitioner_,
                            typed_writer_ ? typed_writer_ : &internal::make_cycle_writer<T>);
  }
  bool timestamped() const { return env_->any_timestamped(ids_); }

  // A node consuming this stream. Its records carry timestamps when this stream's do, or when
  // `timestamped` (an operator that gives them timestamps).
  template <class OUT, class Make>
  DataStream<OUT> add_one_input(std::string name, std::string kind, Make make,
                                bool timestamped = false) const {
    int id = env_->add_node(std::make_unique<internal::OneInputNode<T, OUT, Make>>(std::move(make)),
                            std::move(name), std::move(kind), inputs(),
                            timestamped || this->timestamped());
    return DataStream<OUT>(env_, {id});
  }

  template <class Make>
  DataStreamSink add_sink(std::string name, Make make) const {
    auto sink = [make](Collector<internal::Unit>*, const std::string& n) { return make(n); };
    int id = env_->add_node(
        std::make_unique<internal::OneInputNode<T, internal::Unit, decltype(sink)>>(sink),
        std::move(name), "sink", inputs(), false);
    return DataStreamSink(env_->nodes_[id].get());
  }

  StreamExecutionEnvironment* env_;
  std::vector<int> ids_;
  internal::Partitioner partitioner_ = internal::Partitioner::kDefault;
  internal::WriterFactory typed_writer_;
};

// A stream partitioned by key. Aggregations (reduce, sum, min, max) keep one value per key in
// keyed state, which checkpoints store, and emit every update.
template <class T, class KS>
class KeyedStream {
 public:
  using K = std::decay_t<std::invoke_result_t<KS&, const T&>>;

  KeyedStream(DataStream<T> in, KS ks) : in_(std::move(in)), ks_(std::move(ks)) {
    in_.partitioner_ = internal::Partitioner::kHash;
    KS sel = ks_;
    in_.typed_writer_ = [sel](internal::RecordWriter* w, internal::Partitioner,
                              const TaskInfo& info, const int64_t* ts) {
      return internal::erase_writer<T>(
          std::make_unique<internal::KeyGroupCollector<T, KS>>(w, info, ts, sel));
    };
  }

  // f(const T& accumulated, const T& next) -> T.
  template <class F>
  DataStream<T> reduce(F f, std::string name = "Keyed Reduce") {
    KS ks = ks_;
    return in_.template add_one_input<T>(
        std::move(name), "reduce", [ks, f](Collector<T>* out, const std::string& n) {
          return std::make_unique<internal::KeyedReduceOperator<T, K, KS, F>>(n, ks, f, out);
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
          return std::make_unique<internal::KeyedProcessOperator<K, T, OUT, KS, F>>(n, ks, fn, out);
        });
  }
  // This keyed stream with a broadcast stream (see DataStream::broadcast(descriptors)), for a
  // KeyedBroadcastProcessFunction.
  template <class T2>
  KeyedBroadcastConnectedStream<T, KS, T2> connect(const BroadcastStream<T2>& other) const {
    return KeyedBroadcastConnectedStream<T, KS, T2>(*this, other);
  }

 private:
  template <class T1, class T2>
  friend class ConnectedStreams;
  template <class T1, class KS1, class T2>
  friend class KeyedBroadcastConnectedStream;
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
      return std::make_unique<internal::CoProcessOperator<T1, T2, OUT, F>>(n, fn, out);
    });
  }

 private:
  template <class U1, class U2, class KS1, class KS2>
  friend class KeyedConnectedStreams;
  template <class U1, class U2>
  friend class BroadcastConnectedStream;
  template <class U1, class KS, class U2>
  friend class KeyedBroadcastConnectedStream;

  // The node of a function over both inputs.
  template <class OUT, class Make>
  DataStream<OUT> add_node(std::string name, Make make, std::string kind = "co_process") const {
    auto n = std::make_unique<internal::TwoInputNode<T1, T2, OUT, Make>>(std::move(make));
    n->name = std::move(name);
    n->kind = std::move(kind);
    n->inputs = first_.inputs();
    for (internal::InputSpec spec : second_.inputs()) {
      spec.logical_input = 1;
      n->inputs.push_back(std::move(spec));
    }
    n->timestamped = first_.timestamped() || second_.timestamped();
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
          return std::make_unique<internal::KeyedCoProcessOperator<K, T1, T2, OUT, KS1, KS2, F>>(
              n, ks1, ks2, fn, out);
        });
  }

 private:
  ConnectedStreams<T1, T2> in_;
  KS1 ks1_;
  KS2 ks2_;
};

// ---------------------------------------------------------------------------------------------
// Broadcast state (Flink's broadcast state pattern): a low-volume stream (rules, configuration)
// broadcast to every subtask of a function over another stream, which keeps it in broadcast
// state.
//
//   MapStateDescriptor<std::string, Rule> rules_desc("rules");
//   auto rules = env.add_source(RuleSource()).broadcast(rules_desc);
//   events.key_by([](const Event& e) { return e.user; })
//       .connect(rules)
//       .process(MatchRules(rules_desc));  // a KeyedBroadcastProcessFunction
//
// The two sides are not ordered with respect to each other: a data record may be processed
// before a broadcast record emitted earlier. The function's watermark is the lower of its two
// inputs', so a broadcast side without watermarks holds event time back until it ends.

namespace detail {
template <class D>
struct is_map_state_descriptor : std::false_type {};
template <class K, class V>
struct is_map_state_descriptor<MapStateDescriptor<K, V>> : std::true_type {};

template <class K, class V>
internal::BroadcastStateSpec broadcast_state_spec(const MapStateDescriptor<K, V>& d) {
  if (d.ttl) throw std::invalid_argument("broadcast state '" + d.name + "' cannot have a TTL");
  return {d.name, [d](internal::OperatorStateStore& store) -> internal::OperatorStateBase& {
            return store.get_broadcast_state(d);
          }};
}
}  // namespace detail

// A stream whose records go to every subtask of the function it is connected to, with the
// broadcast states that function keeps (DataStream::broadcast(descriptors)). Only for connect().
template <class T>
class BroadcastStream {
 public:
  using value_type = T;

 private:
  template <class U>
  friend class DataStream;
  template <class T1, class T2>
  friend class BroadcastConnectedStream;
  template <class T1, class KS, class T2>
  friend class KeyedBroadcastConnectedStream;

  BroadcastStream(DataStream<T> in, std::vector<internal::BroadcastStateSpec> specs)
      : in_(in.with_partitioner(internal::Partitioner::kBroadcast)), specs_(std::move(specs)) {}

  DataStream<T> in_;
  std::vector<internal::BroadcastStateSpec> specs_;
};

// A data stream connected with a broadcast stream (DataStream::connect(BroadcastStream)).
template <class T1, class T2>
class BroadcastConnectedStream {
 public:
  BroadcastConnectedStream(DataStream<T1> data, BroadcastStream<T2> broadcast)
      : data_(std::move(data)), broadcast_(std::move(broadcast)) {}
  // A BroadcastProcessFunction<T1, T2, OUT> subclass; one copy per subtask.
  template <class F>
  auto process(F fn, std::string name = "Broadcast Process") const {
    using OUT = typename F::output_type;
    static_assert(std::is_base_of_v<BroadcastProcessFunction<T1, T2, OUT>, F>,
                  "process() takes a BroadcastProcessFunction<data type, broadcast type, OUT>");
    std::vector<internal::BroadcastStateSpec> specs = broadcast_.specs_;
    return ConnectedStreams<T1, T2>(data_, broadcast_.in_)
        .template add_node<OUT>(
            std::move(name),
            [fn, specs](Collector<OUT>* out, const std::string& n) {
              return std::make_unique<internal::BroadcastProcessOperator<T1, T2, OUT, F>>(
                  n, fn, specs, out);
            },
            "broadcast_process");
  }

 private:
  DataStream<T1> data_;
  BroadcastStream<T2> broadcast_;
};

// A keyed stream connected with a broadcast stream (KeyedStream::connect(BroadcastStream)).
template <class T1, class KS, class T2>
class KeyedBroadcastConnectedStream {
 public:
  using K = typename KeyedStream<T1, KS>::K;
  KeyedBroadcastConnectedStream(KeyedStream<T1, KS> data, BroadcastStream<T2> broadcast)
      : data_(std::move(data)), broadcast_(std::move(broadcast)) {}
  // A KeyedBroadcastProcessFunction<K, T1, T2, OUT> subclass; one copy per subtask.
  template <class F>
  auto process(F fn, std::string name = "Keyed Broadcast Process") const {
    using OUT = typename F::output_type;
    static_assert(std::is_base_of_v<KeyedBroadcastProcessFunction<K, T1, T2, OUT>, F>,
                  "process() takes a KeyedBroadcastProcessFunction<key type, data type, "
                  "broadcast type, OUT>");
    std::vector<internal::BroadcastStateSpec> specs = broadcast_.specs_;
    KS ks = data_.ks_;
    return ConnectedStreams<T1, T2>(data_.in_, broadcast_.in_)
        .template add_node<OUT>(
            std::move(name),
            [ks, fn, specs](Collector<OUT>* out, const std::string& n) {
              return std::make_unique<
                  internal::KeyedBroadcastProcessOperator<K, T1, T2, OUT, KS, F>>(n, ks, fn, specs,
                                                                                  out);
            },
            "broadcast_process");
  }

 private:
  KeyedStream<T1, KS> data_;
  BroadcastStream<T2> broadcast_;
};

template <class T>
template <class K, class V, class... More>
BroadcastStream<T> DataStream<T>::broadcast(const MapStateDescriptor<K, V>& first,
                                            const More&... more) const {
  static_assert((detail::is_map_state_descriptor<More>::value && ...),
                "broadcast() takes MapStateDescriptors");
  std::vector<internal::BroadcastStateSpec> specs{detail::broadcast_state_spec(first),
                                                  detail::broadcast_state_spec(more)...};
  for (size_t i = 0; i < specs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (specs[i].name == specs[j].name) {
        throw std::invalid_argument("broadcast() names broadcast state '" + specs[i].name +
                                    "' twice");
      }
    }
  }
  return BroadcastStream<T>(*this, std::move(specs));
}

template <class T>
template <class T2>
BroadcastConnectedStream<T, T2> DataStream<T>::connect(const BroadcastStream<T2>& other) const {
  return BroadcastConnectedStream<T, T2>(*this, other);
}

// ---------------------------------------------------------------------------------------------
// Environment members that need DataStream.

template <class T, class F>
DataStream<T> StreamExecutionEnvironment::add_source_node(F fn, std::string name, bool parallel) {
  auto make = [fn = std::move(fn)](Collector<T>* out, const std::string& n) {
    return std::make_unique<internal::SourceOperator<T, F>>(n, fn, out);
  };
  auto n = std::make_unique<internal::TypedNode<T, decltype(make)>>(std::move(make));
  n->name = "Source: " + name;
  n->kind = "source";
  n->fixed_parallelism = !parallel;
  if (!parallel) n->parallelism = 1;
  auto* raw = add_node(std::move(n));
  return DataStream<T>(this, {raw->id});
}

template <class T>
DataStream<T> StreamExecutionEnvironment::from_collection(std::vector<T> elements) {
  return add_source_node<T>(CollectionSource<T>(std::move(elements)), "Collection Source", false);
}

template <class F>
DataStream<typename F::value_type> StreamExecutionEnvironment::add_source(F fn, std::string name) {
  if (name.empty()) {
    if constexpr (requires { fn.default_name(); }) {
      name = fn.default_name();
    } else {
      name = "Custom Source";
    }
  }
  bool parallel = fn.is_parallel();
  return add_source_node<typename F::value_type>(std::move(fn), std::move(name), parallel);
}

template <class F>
DataStream<typename F::value_type> StreamExecutionEnvironment::from_source(
    F fn, WatermarkStrategy<typename F::value_type> strategy, std::string name) {
  if constexpr (requires { fn.set_watermark_strategy(strategy); }) {
    fn.set_watermark_strategy(std::move(strategy));
    DataStream<typename F::value_type> s = add_source(std::move(fn), std::move(name));
    nodes_[s.ids_.front()]->timestamped = true;
    return s;
  } else {
    return add_source(std::move(fn), std::move(name)).assign_timestamps_and_watermarks(strategy);
  }
}

}  // namespace sluice
