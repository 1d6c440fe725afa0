// Asynchronous I/O (Flink's AsyncDataStream): a function that sends a request to an outside
// system for each record and completes it later, from any thread, while the task goes on with
// the next records. Many requests are in flight at once, so a slow service costs latency rather
// than throughput.
//
//   struct Lookup : sluice::AsyncFunction<int64_t, std::string> {
//     void open(sluice::RuntimeContext&) override { client_ = std::make_shared<Client>(); }
//     void async_invoke(const int64_t& id,
//                       std::shared_ptr<sluice::ResultFuture<std::string>> result) override {
//       client_->get(id, [result](std::string name) { result->complete({std::move(name)}); });
//     }
//     std::shared_ptr<Client> client_;  // its threads hold it too: it outlives the function
//   };
//   auto named = sluice::AsyncDataStream::ordered_wait(ids, Lookup(), std::chrono::seconds(2));
//
// Semantics, per subtask of the "Async Wait" operator:
// - At most `capacity` requests are in flight (issued and not yet emitted). When that many are,
//   the task waits before taking the next record; meanwhile it handles completions and timeouts
//   of this operator and of those after it in its chain, without spinning.
// - ordered_wait emits the results in the order of the inputs. unordered_wait emits them as the
//   requests complete, but never across a watermark: a watermark is emitted after the results
//   of every record before it, and the results of records after it come after it.
// - The results of one request are emitted together, on the task's thread, with the input
//   record's timestamp.
// - A request not completed `timeout` after async_invoke (processing time) gets timeout() on the
//   task's thread; a timeout of zero or less means none.
// - A request completed with complete_exceptionally(message), an exception from async_invoke or
//   timeout(), and the default timeout() fail the task with an error naming the operator.
// - Checkpoints store the inputs (and timestamps) of the requests whose results were not yet
//   emitted; a restore issues them again, in their order, before any new record. Results
//   emitted before the checkpoint are not requested again, so with a replayable source and an
//   exactly-once sink every result arrives once. The outside system may see a request twice
//   (the one in flight at a failure, and its repetition): requests should be idempotent.
// - At the end of input the operator waits for every request in flight before it ends.
//
// Threads: open(), async_invoke(), timeout() and close() run on the task's thread; a ResultFuture
// may be completed from any thread, also after the operator has gone (the completion is then
// dropped). Threads the function starts must not touch the function object after it has been
// destroyed (which happens without close() when the task fails or is cancelled): let them hold
// what they need through shared pointers, as above, or join them in the destructor.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/datastream.h"
#include "sluice/functions.h"

namespace sluice {

// The handle through which one asynchronous request delivers its result. Only the first
// completion counts, by either method; later ones (from a late answer after a timeout handler
// has completed the request, say) are ignored. Safe from any thread, for as long as any copy of
// the shared pointer lives.
template <class OUT>
class ResultFuture {
 public:
  virtual ~ResultFuture() = default;
  // The request's results: none, one or several, emitted together.
  virtual void complete(std::vector<OUT> results) = 0;
  // Fails the request: the task fails with an error naming the operator and `message`.
  virtual void complete_exceptionally(std::string message) = 0;
  // True once the request has been completed either way.
  virtual bool is_done() const = 0;
};

// A function that answers each record asynchronously (Flink's RichAsyncFunction). One copy runs
// per subtask. Like the other functions it may keep operator state (RuntimeContext::
// get_operator_list_state) with the snapshot_state() hook.
template <class IN, class OUT>
class AsyncFunction {
 public:
  using input_type = IN;
  using output_type = OUT;
  virtual ~AsyncFunction() = default;
  virtual void open(RuntimeContext&) {}
  // Starts the request for `input` and returns; the request completes `result_future` later,
  // from any thread (or at once). `input` is valid only during the call: copy what the request
  // needs of it.
  virtual void async_invoke(const IN& input, std::shared_ptr<ResultFuture<OUT>> result_future) = 0;
  // The request for `input` has not completed within the timeout. Complete it here, with
  // fallback results or exceptionally; a request left incomplete stays in flight until its
  // answer comes. By default it fails the task with an error naming the operator and the
  // timeout.
  virtual void timeout(const IN& /*input*/, ResultFuture<OUT>& result_future) {
    result_future.complete_exceptionally("the function does not override AsyncFunction::timeout");
  }
  virtual void close() {}
  // At checkpoint `checkpoint_id`, before the operator state is stored: bring it up to date.
  virtual void snapshot_state(int64_t /*checkpoint_id*/) {}
  // Checkpoint `checkpoint_id` is complete.
  virtual void notify_checkpoint_complete(int64_t /*checkpoint_id*/) {}
};

namespace internal {
template <class IN, class OUT, class F>
class AsyncWaitOperator;  // sluice/internal/async_wait_operator.h, included below
}  // namespace internal

// Adds an asynchronous operator to a stream (see the top of this file).
class AsyncDataStream {
 public:
  // Flink's default.
  static constexpr int kDefaultCapacity = 100;

  // Results in input order. `function` is an AsyncFunction<IN, OUT> subclass, copied per
  // subtask. Throws std::invalid_argument when `capacity` is below 1.
  template <class IN, class F>
  static DataStream<typename F::output_type> ordered_wait(const DataStream<IN>& in, F function,
                                                          std::chrono::milliseconds timeout,
                                                          int capacity = kDefaultCapacity,
                                                          std::string name = "Async Wait") {
    return add(in, std::move(function), timeout, capacity, std::move(name), true);
  }
  // Results as the requests complete, within the bounds that watermarks set.
  template <class IN, class F>
  static DataStream<typename F::output_type> unordered_wait(const DataStream<IN>& in, F function,
                                                            std::chrono::milliseconds timeout,
                                                            int capacity = kDefaultCapacity,
                                                            std::string name = "Async Wait") {
    return add(in, std::move(function), timeout, capacity, std::move(name), false);
  }

 private:
  template <class IN, class F>
  static DataStream<typename F::output_type> add(const DataStream<IN>& in, F function,
                                                 std::chrono::milliseconds timeout, int capacity,
                                                 std::string name, bool ordered) {
    using OUT = typename F::output_type;
    static_assert(std::is_base_of_v<AsyncFunction<IN, OUT>, F>,
                  "the function must derive from AsyncFunction<IN, OUT> of the stream's IN");
    if (capacity < 1) {
      throw std::invalid_argument("the capacity of '" + name + "' must be at least 1, got " +
                                  std::to_string(capacity));
    }
    const int64_t timeout_ms = timeout.count();
    return in.template add_one_input<OUT>(
        std::move(name), "async_wait",
        [function, timeout_ms, capacity, ordered](Collector<OUT>* out, const std::string& n) {
          return std::make_unique<internal::AsyncWaitOperator<IN, OUT, F>>(
              n, function, out, ordered, timeout_ms, capacity);
        });
  }
};

}  // namespace sluice

// The operator, which needs the types above.
#include "sluice/internal/async_wait_operator.h"
