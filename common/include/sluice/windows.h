// Windows: a stream's records grouped by time (or count) per key, evaluated when a trigger fires.
//
//   using std::chrono::seconds;
//   events.key_by([](const Ev& e) { return e.user; })
//       .window(sluice::SlidingEventTimeWindows::of(seconds(10), seconds(1)))
//       .allowed_lateness(seconds(5))
//       .side_output_late_data(late_tag)
//       .aggregate(CountClicks());
//
// Semantics are Flink's. An assigner puts each record into windows (by its timestamp for event
// time, by TaskRuntime::current_processing_time() for processing time); a trigger decides when a
// window's contents are evaluated; each result carries the window's max_timestamp() (end - 1) as
// its timestamp. A record that is late for every window it belongs to (max_timestamp() +
// allowed lateness <= watermark) goes to the late-data side output, or is dropped and counted.
//
// State: everything lives in keyed state of the window operator, so checkpoints store it once per
// key group: per key a sorted flat map from window to its contents ("window-contents"), and timers
// whose namespace is the serialized window (empty for pane timers, see below). A window's state is
// removed at max_timestamp() + allowed lateness (event time) or max_timestamp() (processing time).
//
// Panes: tumbling and sliding windows with the default trigger and an incremental function
// (reduce, aggregate) keep one accumulator per pane of gcd(size, slide) instead of one per
// window: a record updates only its pane, and a window that fires merges the panes it covers. A
// pane is removed when the last window containing it is past its allowed lateness. In event time
// a key with panes has a single pane timer, at its next window end or pane removal. process(),
// custom triggers and session windows keep their contents per window.
//
// End of input: the runtime sends kMaxWatermark first, so every event-time window fires.
// Processing-time windows that have not fired by then are dropped without firing, as in Flink.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/datastream.h"
#include "sluice/functions.h"
#include "sluice/internal/window_operator.h"
#include "sluice/serializer.h"
#include "sluice/state.h"
#include "sluice/window_assigners.h"

namespace sluice {

// ---------------------------------------------------------------------------------------------
// The API.

// A keyed stream cut into windows: keyed.window(assigner). Configure it (allowed_lateness,
// side_output_late_data, trigger), then evaluate it with reduce, aggregate or process.
template <class T, class KS, class A>
class WindowedStream {
 public:
  using K = typename KeyedStream<T, KS>::K;
  using W = typename A::window_type;

  WindowedStream(DataStream<T> in, KS ks, A assigner)
      : in_(std::move(in)), ks_(std::move(ks)), assigner_(std::move(assigner)) {}

  // Event time only: windows keep their state this long after they end; every late element
  // within it fires its windows again. Default: 0.
  WindowedStream& allowed_lateness(std::chrono::milliseconds lateness) {
    if (lateness.count() < 0) throw std::invalid_argument("allowed lateness must not be negative");
    settings_.allowed_lateness = lateness.count();
    return *this;
  }
  // Elements late for all their windows go to `tag` instead of being dropped; read them with
  // result.get_side_output(tag).
  WindowedStream& side_output_late_data(const OutputTag<T>& tag) {
    settings_.late_tag = tag;
    return *this;
  }
  // Replaces the assigner's default trigger (see the trigger classes above).
  template <class Tr>
  WindowedStream& trigger(Tr t) {
    if (A::kMerging && !t.can_merge()) {
      throw std::invalid_argument("session windows need a trigger that can merge");
    }
    settings_.trigger = std::make_shared<TriggerAdapter<W, Tr>>(std::move(t));
    return *this;
  }

  // f(const T&, const T&) -> T, applied incrementally; emits one T per window.
  template <class F>
  DataStream<T> reduce(F f) const {
    return apply(internal::ReducePolicy<T, F>{std::move(f)}, "Window(Reduce)");
  }
  // The reduced value of each window handed to `fn`, a ProcessWindowFunction<T, OUT, K, W>.
  template <class F, class WF>
  DataStream<typename WF::output_type> reduce(F f, WF fn) const {
    using Inner = internal::ReducePolicy<T, F>;
    return apply(internal::WindowFunctionPolicy<Inner, WF>{Inner{std::move(f)}, std::move(fn)},
                 "Window(Reduce, Process)");
  }
  // `agg` has accumulator_type, result_type, create_accumulator(), add(const T&, ACC&),
  // get_result(const ACC&) and merge(ACC, const ACC&); emits one result_type per window.
  template <class AGG>
  DataStream<typename AGG::result_type> aggregate(AGG agg) const {
    return apply(internal::AggregatePolicy<T, AGG>{std::move(agg)}, "Window(Aggregate)");
  }
  // The aggregated result of each window handed to `fn`, a ProcessWindowFunction<R, OUT, K, W>.
  template <class AGG, class WF>
  DataStream<typename WF::output_type> aggregate(AGG agg, WF fn) const {
    using Inner = internal::AggregatePolicy<T, AGG>;
    return apply(internal::WindowFunctionPolicy<Inner, WF>{Inner{std::move(agg)}, std::move(fn)},
                 "Window(Aggregate, Process)");
  }
  // `fn` is a ProcessWindowFunction<T, OUT, K, W>: it sees every element of the window.
  template <class F>
  DataStream<typename F::output_type> process(F fn) const {
    return apply(internal::ProcessPolicy<T, F>{std::move(fn)}, "Window(Process)");
  }

 private:
  template <class P>
  DataStream<typename P::output_type> apply(P policy, std::string name) const {
    using OUT = typename P::output_type;
    KS ks = ks_;
    A assigner = assigner_;
    internal::WindowSettings<T, W> settings = settings_;
    return in_.template add_one_input<OUT>(
        std::move(name), "window",
        [ks, assigner, policy, settings](Collector<OUT>* out, const std::string& n) {
          return std::make_unique<internal::WindowOperator<T, K, KS, A, P>>(n, ks, assigner, policy,
                                                                            settings, out);
        },
        true);
  }

  DataStream<T> in_;
  KS ks_;
  A assigner_;
  internal::WindowSettings<T, W> settings_;
};

// Windows over a whole stream: stream.window_all(assigner). The same API as WindowedStream,
// with ProcessAllWindowFunction in place of ProcessWindowFunction; evaluated by one subtask (all
// records get one key), so the result's parallelism is 1 and cannot be changed.
template <class T, class A>
class AllWindowedStream {
 public:
  using W = typename A::window_type;

  AllWindowedStream(DataStream<T> in, A assigner)
      : w_(KeyedStream<T, internal::ConstantKey>(std::move(in), internal::ConstantKey{})
               .window(std::move(assigner))) {}

  AllWindowedStream& allowed_lateness(std::chrono::milliseconds lateness) {
    w_.allowed_lateness(lateness);
    return *this;
  }
  AllWindowedStream& side_output_late_data(const OutputTag<T>& tag) {
    w_.side_output_late_data(tag);
    return *this;
  }
  template <class Tr>
  AllWindowedStream& trigger(Tr t) {
    w_.trigger(std::move(t));
    return *this;
  }
  template <class F>
  DataStream<T> reduce(F f) const {
    return single(w_.reduce(std::move(f)));
  }
  template <class F, class WF>
  DataStream<typename WF::output_type> reduce(F f, WF fn) const {
    return single(w_.reduce(std::move(f), internal::AllWindowFunctionAdapter<WF>{std::move(fn)}));
  }
  template <class AGG>
  DataStream<typename AGG::result_type> aggregate(AGG agg) const {
    return single(w_.aggregate(std::move(agg)));
  }
  template <class AGG, class WF>
  DataStream<typename WF::output_type> aggregate(AGG agg, WF fn) const {
    return single(
        w_.aggregate(std::move(agg), internal::AllWindowFunctionAdapter<WF>{std::move(fn)}));
  }
  // `fn` is a ProcessAllWindowFunction<T, OUT, W>.
  template <class F>
  DataStream<typename F::output_type> process(F fn) const {
    return single(w_.process(internal::AllWindowFunctionAdapter<F>{std::move(fn)}));
  }

 private:
  template <class S>
  static DataStream<S> single(DataStream<S> s) {
    internal::Node& n = s.node();
    n.parallelism = 1;
    n.fixed_parallelism = true;
    return s;
  }

  WindowedStream<T, internal::ConstantKey, A> w_;
};

template <class T>
template <class A>
AllWindowedStream<T, A> DataStream<T>::window_all(A assigner) const {
  return AllWindowedStream<T, A>(*this, std::move(assigner));
}

// ---------------------------------------------------------------------------------------------
// Windowed co-group and join of two streams.
//
//   orders.join(payments)
//       .where([](const Order& o) { return o.id; })
//       .equal_to([](const Payment& p) { return p.order_id; })
//       .window(sluice::TumblingEventTimeWindows::of(std::chrono::minutes(1)))
//       .apply([](const Order& o, const Payment& p) { return Paid{o.id, p.amount}; });
//
// Both inputs are tagged, unioned, keyed by their key selectors and cut into windows; each
// window of a key hands the elements of both inputs to the function (co_group: the two lists,
// join: every pair). Its watermark is the lower of the two inputs'.

template <class T1, class T2, class KS1, class KS2, class A>
class CoGroupedWindows {
 public:
  using Tagged = internal::Tagged<T1, T2>;
  using Key = internal::TaggedKey<T1, T2, KS1, KS2>;
  using K = std::decay_t<std::invoke_result_t<KS1&, const T1&>>;

  CoGroupedWindows(DataStream<T1> a, DataStream<T2> b, KS1 ks1, KS2 ks2, A assigner)
      : a_(std::move(a)),
        b_(std::move(b)),
        ks1_(std::move(ks1)),
        ks2_(std::move(ks2)),
        assigner_(std::move(assigner)) {}

  // Event time only: see WindowedStream::allowed_lateness.
  CoGroupedWindows& allowed_lateness(std::chrono::milliseconds lateness) {
    lateness_ = lateness;
    return *this;
  }
  // join: apply(f) with f(const T1&, const T2&) -> OUT, called for every pair of a window.
  // co_group: apply<OUT>(f) with f(const std::vector<T1>&, const std::vector<T2>&,
  // Collector<OUT>&), called once per key and window with both inputs' elements.
  template <class OUT = void, class F>
  auto apply(F f) const {
    if constexpr (std::is_void_v<OUT>) {
      using R = std::decay_t<std::invoke_result_t<F&, const T1&, const T2&>>;
      auto pairs = [f](const std::vector<T1>& xs, const std::vector<T2>& ys, Collector<R>& out) {
        for (const T1& x : xs) {
          for (const T2& y : ys) out.collect(f(x, y));
        }
      };
      return run<R>(pairs, "Window Join");
    } else {
      return run<OUT>(f, "Window CoGroup");
    }
  }

 private:
  template <class OUT, class G>
  DataStream<OUT> run(G g, const std::string& name) const {
    DataStream<T1> a = a_;  // map() adds a node: not const
    DataStream<T2> b = b_;
    DataStream<Tagged> first = a.map([](const T1& v) { return Tagged{0, v, T2{}}; });
    first.name(name + ": first input");
    DataStream<Tagged> second = b.map([](const T2& v) { return Tagged{1, T1{}, v}; });
    second.name(name + ": second input");
    auto windows = first.union_(second).key_by(Key{ks1_, ks2_}).window(assigner_);
    windows.allowed_lateness(lateness_);
    using W = typename A::window_type;
    DataStream<OUT> out =
        windows.process(internal::CoGroupWindowFunction<T1, T2, OUT, K, W, G>(std::move(g)));
    out.name(name);
    return out;
  }

  DataStream<T1> a_;
  DataStream<T2> b_;
  KS1 ks1_;
  KS2 ks2_;
  A assigner_;
  std::chrono::milliseconds lateness_{0};
};

// a.co_group(b) / a.join(b), then where(ks1), equal_to(ks2), window(assigner), apply(f).
template <class T1, class T2>
class CoGroupedStreams {
 public:
  CoGroupedStreams(DataStream<T1> a, DataStream<T2> b) : a_(std::move(a)), b_(std::move(b)) {}
  template <class KS1>
  auto where(KS1 ks1) const {
    return Where<KS1>{a_, b_, std::move(ks1)};
  }

  template <class KS1>
  struct Where {
    DataStream<T1> a;
    DataStream<T2> b;
    KS1 ks1;
    template <class KS2>
    auto equal_to(KS2 ks2) const {
      return EqualTo<KS2>{a, b, ks1, std::move(ks2)};
    }
    template <class KS2>
    struct EqualTo {
      DataStream<T1> a;
      DataStream<T2> b;
      KS1 ks1;
      KS2 ks2;
      template <class A>
      CoGroupedWindows<T1, T2, KS1, KS2, A> window(A assigner) const {
        static_assert(std::is_same_v<std::decay_t<std::invoke_result_t<KS1&, const T1&>>,
                                     std::decay_t<std::invoke_result_t<KS2&, const T2&>>>,
                      "where() and equal_to() must return the same key type");
        return CoGroupedWindows<T1, T2, KS1, KS2, A>(a, b, ks1, ks2, std::move(assigner));
      }
    };
  };

 private:
  DataStream<T1> a_;
  DataStream<T2> b_;
};

template <class T>
template <class T2>
CoGroupedStreams<T, T2> DataStream<T>::co_group(const DataStream<T2>& other) const {
  return CoGroupedStreams<T, T2>(*this, other);
}
template <class T>
template <class T2>
CoGroupedStreams<T, T2> DataStream<T>::join(const DataStream<T2>& other) const {
  return CoGroupedStreams<T, T2>(*this, other);
}

}  // namespace sluice
