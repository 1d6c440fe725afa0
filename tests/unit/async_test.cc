// The async wait operator (sluice/async.h) run in-process: the test plays the runtime
// (TestRuntime, whose operator mail other threads post to) and completes requests itself, from
// other threads, or from a small thread pool with random delays.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sluice/sluice.h"
#include "tests/unit/test_helpers.h"
#include "tests/unit/test_runtime.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing_support::CollectingSink;
using testing_support::ExpectOperatorError;
using testing_support::TestRuntime;

using Future = std::shared_ptr<ResultFuture<std::string>>;

// Requests the test completes: async_invoke only records them. Shared by the copies the SDK
// makes of the function.
struct Requests {
  std::mutex mu;
  std::vector<std::pair<int64_t, Future>> pending;  // not completed by the test yet
  std::vector<int64_t> invoked;                     // every input, in order
  size_t most_in_flight = 0;                        // pending, at its largest
  std::vector<int64_t> timed_out;

  // Completes the pending requests in `order` (indexes into pending, oldest 0) from another
  // thread, each with "<input>" (or fails it with `fail` when not empty).
  void CompleteFromAnotherThread(std::vector<size_t> order, const std::string& fail = "") {
    std::vector<std::pair<int64_t, Future>> chosen;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (size_t i : order) chosen.push_back(pending.at(i));
      std::vector<std::pair<int64_t, Future>> rest;
      for (size_t i = 0; i < pending.size(); ++i) {
        if (std::find(order.begin(), order.end(), i) == order.end()) rest.push_back(pending[i]);
      }
      pending = std::move(rest);
    }
    std::thread t([&] {
      for (auto& [v, f] : chosen) {
        if (fail.empty()) {
          f->complete({std::to_string(v)});
        } else {
          f->complete_exceptionally(fail);
        }
      }
    });
    t.join();
  }
  // Every pending request, newest first.
  void CompleteAllNewestFirst() {
    std::vector<size_t> order;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (size_t i = pending.size(); i-- > 0;) order.push_back(i);
    }
    CompleteFromAnotherThread(order);
  }
  // The oldest pending request, if there is one.
  void CompleteOldest() {
    if (num_pending() > 0) CompleteFromAnotherThread({0});
  }
  size_t num_pending() {
    std::lock_guard<std::mutex> lock(mu);
    return pending.size();
  }
};

struct Deferred : AsyncFunction<int64_t, std::string> {
  std::shared_ptr<Requests> requests = std::make_shared<Requests>();
  // Inputs answered at once, on the task's thread, with "<input>".
  std::function<bool(int64_t)> answer_at_once = [](int64_t) { return false; };
  void async_invoke(const int64_t& v, Future f) override {
    std::lock_guard<std::mutex> lock(requests->mu);
    requests->invoked.push_back(v);
    if (answer_at_once(v)) {
      f->complete({std::to_string(v)});
      return;
    }
    requests->pending.emplace_back(v, std::move(f));
    requests->most_in_flight = std::max(requests->most_in_flight, requests->pending.size());
  }
};

// Answers "t<input>" on a timeout.
struct DeferredWithFallback final : Deferred {
  void timeout(const int64_t& v, ResultFuture<std::string>& f) override {
    {
      std::lock_guard<std::mutex> lock(requests->mu);
      requests->timed_out.push_back(v);
    }
    f.complete({"t" + std::to_string(v)});
  }
};

// A fixed set of threads running tasks after a random delay of up to `max_delay_us`; joined when
// the last copy of its owner goes.
class DelayPool {
 public:
  DelayPool(int threads, int max_delay_us) : max_delay_us_(max_delay_us) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this, i] { Loop(i); });
  }
  ~DelayPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Submit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Loop(int seed) {
    std::mt19937 rng(static_cast<unsigned>(seed) * 7919u + 1u);
    std::uniform_int_distribution<int> delay(0, max_delay_us_);
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      std::this_thread::sleep_for(std::chrono::microseconds(delay(rng)));
      task();
    }
  }

  int max_delay_us_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// Answers "<input>" from a DelayPool; its function objects share one pool.
struct PoolLookup final : AsyncFunction<int64_t, std::string> {
  std::shared_ptr<DelayPool> pool;
  std::shared_ptr<std::atomic<int64_t>> invocations = std::make_shared<std::atomic<int64_t>>(0);
  explicit PoolLookup(int max_delay_us) : pool(std::make_shared<DelayPool>(4, max_delay_us)) {}
  void async_invoke(const int64_t& v, Future f) override {
    invocations->fetch_add(1);
    pool->Submit([v, f] { f->complete({std::to_string(v)}); });
  }
};

std::vector<std::string> Strings(int64_t from, int64_t to) {
  std::vector<std::string> out;
  for (int64_t v = from; v <= to; ++v) out.push_back(std::to_string(v));
  return out;
}

// A buffer of int64 records as an edge without timestamps carries them.
std::string Buffer(const std::vector<int64_t>& values) {
  std::string b;
  DataOutput out(b);
  for (int64_t v : values) Serializer<int64_t>::write(out, v);
  return b;
}

// A network output that logs what reaches it, in order: "r<ts>:<record>" and "w<watermark>".
class EventWriter final : public internal::RecordWriter {
 public:
  int num_channels() const override { return 1; }
  std::string& buffer(int) override { return open_; }
  void commit(int) override {
    DataInput in(open_);
    while (!in.at_end()) {
      int64_t ts = 0;
      Serializer<int64_t>::read(in, ts);
      std::string v;
      Serializer<std::string>::read(in, v);
      events.push_back("r" + std::to_string(ts) + ":" + v);
    }
    open_.clear();
  }
  void emit_watermark(int64_t watermark) override {
    events.push_back("w" + std::to_string(watermark));
  }
  void emit_watermark_status(bool) override {}
  std::vector<std::string> events;

 private:
  std::string open_;
};

// Runs a source chain through its whole lifecycle.
void RunSourceChain(const StreamExecutionEnvironment& env, const std::vector<int>& chain,
                    internal::TaskRuntime& rt) {
  auto task = env.build_chain(chain, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->run_source();
  task->end_input();
  task->close();
}

// ---------------------------------------------------------------------------------------------
// Order and capacity.

TEST(AsyncWaitTest, OrderedWaitEmitsInInputOrderWhateverTheCompletionOrder) {
  StreamExecutionEnvironment env;
  Deferred fn;
  CollectingSink<std::string> sink;
  AsyncDataStream::ordered_wait(env.generate_sequence(1, 10), fn, std::chrono::milliseconds(0), 3)
      .add_sink(sink);
  EXPECT_EQ(env.nodes()[1]->name, "Async Wait");
  TestRuntime rt;
  // Whenever the operator waits for room, the requests in flight complete newest first.
  rt.OnYield([&] { fn.requests->CompleteAllNewestFirst(); });
  RunSourceChain(env, {0, 1, 2}, rt);
  EXPECT_EQ(*sink.values, Strings(1, 10));
  EXPECT_EQ(fn.requests->most_in_flight, 3u);
  EXPECT_EQ(fn.requests->invoked.size(), 10u);
  EXPECT_GT(rt.yields(), 0);
}

TEST(AsyncWaitTest, UnorderedWaitEmitsAsCompleted) {
  StreamExecutionEnvironment env;
  Deferred fn;
  CollectingSink<std::string> sink;
  AsyncDataStream::unordered_wait(env.generate_sequence(1, 10), fn, std::chrono::milliseconds(0), 3)
      .add_sink(sink);
  TestRuntime rt;
  rt.OnYield([&] { fn.requests->CompleteAllNewestFirst(); });
  RunSourceChain(env, {0, 1, 2}, rt);
  EXPECT_THAT(*sink.values, ElementsAre("3", "2", "1", "6", "5", "4", "9", "8", "7", "10"));
}

TEST(AsyncWaitTest, UnorderedResultsNeverCrossAWatermarkAndKeepTheirTimestamps) {
  StreamExecutionEnvironment env;
  Deferred fn;
  auto stamped =
      env.from_elements(int64_t{0})
          .assign_timestamps_and_watermarks(
              WatermarkStrategy<int64_t>::for_monotonous_timestamps().with_timestamp_assigner(
                  [](const int64_t& v, int64_t) { return v * 10; }));
  CollectingSink<std::string> sink;
  AsyncDataStream::unordered_wait(stamped, fn, std::chrono::milliseconds(0), 10).add_sink(sink);
  EventWriter w;
  TestRuntime rt;
  auto task = env.build_chain({2}, {{2, 3, 0, internal::Partitioner::kForward, &w}}, rt);
  task->initialize_state(nullptr);
  task->open();
  auto feed = [&](std::vector<int64_t> values) {
    std::string b;
    DataOutput out(b);
    for (int64_t v : values) {
      Serializer<int64_t>::write(out, v * 10);
      Serializer<int64_t>::write(out, v);
    }
    task->process_buffer(0, b);
  };
  feed({1, 2});
  task->process_watermark(15);
  feed({3});
  task->process_watermark(25);
  task->process_watermark(35);  // nothing between the two: stands for both
  feed({4});
  // 3 and 4 finish first, then 2: only 2 may go, since 1 holds the first watermark back.
  fn.requests->CompleteFromAnotherThread({2, 3, 1});
  rt.process_mail();
  EXPECT_THAT(w.events, ElementsAre("r20:2"));
  // 1 lets everything through: the rest of the first segment, the watermark, 3, the later
  // watermark and 4.
  fn.requests->CompleteFromAnotherThread({0});
  rt.process_mail();
  EXPECT_THAT(w.events, ElementsAre("r20:2", "r10:1", "w15", "r30:3", "w35", "r40:4"));
  // With nothing in flight a watermark passes at once.
  task->process_watermark(50);
  EXPECT_EQ(w.events.back(), "w50");
  task->end_input();
  task->close();
}

TEST(AsyncWaitTest, OrderedWaitHoldsWatermarksBehindEarlierResults) {
  StreamExecutionEnvironment env;
  Deferred fn;
  auto stamped =
      env.from_elements(int64_t{0})
          .assign_timestamps_and_watermarks(
              WatermarkStrategy<int64_t>::for_monotonous_timestamps().with_timestamp_assigner(
                  [](const int64_t& v, int64_t) { return v * 10; }));
  CollectingSink<std::string> sink;
  AsyncDataStream::ordered_wait(stamped, fn, std::chrono::milliseconds(0), 10).add_sink(sink);
  EventWriter w;
  TestRuntime rt;
  auto task = env.build_chain({2}, {{2, 3, 0, internal::Partitioner::kForward, &w}}, rt);
  task->initialize_state(nullptr);
  task->open();
  std::string b;
  DataOutput out(b);
  for (int64_t v : {1, 2}) {
    Serializer<int64_t>::write(out, v * 10);
    Serializer<int64_t>::write(out, v);
  }
  task->process_buffer(0, b);
  task->process_watermark(25);
  fn.requests->CompleteFromAnotherThread({1});
  rt.process_mail();
  EXPECT_THAT(w.events, IsEmpty());
  fn.requests->CompleteFromAnotherThread({0});
  rt.process_mail();
  EXPECT_THAT(w.events, ElementsAre("r10:1", "r20:2", "w25"));
  task->end_input();
  task->close();
}

TEST(AsyncWaitTest, AFullQueueBlocksTheNextRecordUntilARequestCompletes) {
  StreamExecutionEnvironment env;
  Deferred fn;
  CollectingSink<std::string> sink;
  AsyncDataStream::ordered_wait(env.generate_sequence(1, 12), fn, std::chrono::milliseconds(0), 4)
      .add_sink(sink);
  TestRuntime rt;
  std::vector<size_t> in_flight_at_yield;
  std::vector<std::thread> completers;
  // Each wait: the oldest request completes, from another thread, 5 ms after the wait began.
  rt.OnYield([&] {
    in_flight_at_yield.push_back(fn.requests->num_pending());
    completers.emplace_back([r = fn.requests] {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      r->CompleteOldest();
    });
  });
  RunSourceChain(env, {0, 1, 2}, rt);
  EXPECT_EQ(*sink.values, Strings(1, 12));
  EXPECT_EQ(fn.requests->most_in_flight, 4u);
  ASSERT_FALSE(in_flight_at_yield.empty());
  // The first wait comes with the fifth record, while four are in flight.
  EXPECT_EQ(in_flight_at_yield.front(), 4u);
  // The wait sleeps until the mail comes rather than spinning: about one wait per completion
  // (each yield starts one), plus the odd early return.
  EXPECT_LE(rt.yields(), 24);
  for (std::thread& t : completers) t.join();
}

TEST(AsyncWaitTest, CompletionsFromAPoolWithRandomDelaysKeepOrder) {
  StreamExecutionEnvironment env;
  PoolLookup fn(300);
  CollectingSink<std::string> sink;
  AsyncDataStream::ordered_wait(env.generate_sequence(1, 500), fn, std::chrono::seconds(10), 8)
      .add_sink(sink);
  TestRuntime rt;
  RunSourceChain(env, {0, 1, 2}, rt);
  EXPECT_EQ(*sink.values, Strings(1, 500));
}

TEST(AsyncWaitTest, InvalidCapacityIsRefused) {
  StreamExecutionEnvironment env;
  EXPECT_THROW(AsyncDataStream::ordered_wait(env.generate_sequence(1, 2), Deferred(),
                                             std::chrono::milliseconds(10), 0),
               std::invalid_argument);
}

// ---------------------------------------------------------------------------------------------
// Timeouts and failures.

TEST(AsyncWaitTest, TimeoutCallsTheHandlerAndALateAnswerIsIgnored) {
  StreamExecutionEnvironment env;
  DeferredWithFallback fn;
  fn.answer_at_once = [](int64_t v) { return v % 2 == 0; };
  CollectingSink<std::string> sink;
  AsyncDataStream::ordered_wait(env.from_elements(int64_t{0}), fn, std::chrono::milliseconds(100),
                                10)
      .add_sink(sink);
  TestRuntime rt;
  rt.SetProcessingTime(1000);
  auto task = env.build_chain({1, 2}, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->process_buffer(0, Buffer({1, 2, 3, 4}));
  EXPECT_EQ(rt.callback_time(), 1100);
  rt.process_mail();  // 2 and 4 answered; 1 holds them back
  EXPECT_THAT(*sink.values, IsEmpty());
  rt.SetProcessingTime(1100);
  task->on_processing_time(rt.TakeCallback());
  EXPECT_THAT(fn.requests->timed_out, ElementsAre(1, 3));
  EXPECT_THAT(*sink.values, ElementsAre("t1", "2", "t3", "4"));
  // The real answers come late: the first completion counted.
  fn.requests->CompleteAllNewestFirst();
  rt.process_mail();
  task->end_input();
  task->close();
  EXPECT_THAT(*sink.values, ElementsAre("t1", "2", "t3", "4"));
}

TEST(AsyncWaitTest, TimeoutWhileWaitingForRoomIsHandledByTheWait) {
  // Nothing ever answers: with capacity 1 each record waits for its predecessor's timeout
  // (real processing time), which the wait itself fires.
  StreamExecutionEnvironment env;
  DeferredWithFallback fn;
  CollectingSink<std::string> sink;
  AsyncDataStream::unordered_wait(env.generate_sequence(1, 3), fn, std::chrono::milliseconds(20), 1)
      .add_sink(sink);
  TestRuntime rt;
  auto start = std::chrono::steady_clock::now();
  RunSourceChain(env, {0, 1, 2}, rt);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(60));
  EXPECT_THAT(*sink.values, ElementsAre("t1", "t2", "t3"));
}

TEST(AsyncWaitTest, DefaultTimeoutFailsNamingTheOperatorAndTheTimeout) {
  StreamExecutionEnvironment env;
  Deferred fn;
  CollectingSink<std::string> sink;
  AsyncDataStream::ordered_wait(env.from_elements(int64_t{0}), fn, std::chrono::milliseconds(250),
                                10, "Lookup")
      .add_sink(sink);
  TestRuntime rt;
  rt.SetProcessingTime(0);
  auto task = env.build_chain({1, 2}, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->process_buffer(0, Buffer({7}));
  rt.SetProcessingTime(250);
  ExpectOperatorError([&] { task->on_processing_time(rt.TakeCallback()); }, "Lookup",
                      "asynchronous request timed out after 250 ms: the function does not "
                      "override AsyncFunction::timeout");
}

TEST(AsyncWaitTest, ExceptionalCompletionFailsTheTaskNamingTheOperator) {
  StreamExecutionEnvironment env;
  Deferred fn;
  CollectingSink<std::string> sink;
  AsyncDataStream::unordered_wait(env.generate_sequence(1, 10), fn, std::chrono::seconds(5), 2,
                                  "Lookup")
      .add_sink(sink);
  TestRuntime rt;
  rt.OnYield([&] { fn.requests->CompleteFromAnotherThread({0}, "backend unavailable"); });
  ExpectOperatorError(
      [&] {
        RunSourceChain(env, {0, 1, 2}, rt);
      },
      "Lookup", "asynchronous request failed: backend unavailable");
}

TEST(AsyncWaitTest, ExceptionFromAsyncInvokeNamesTheOperator) {
  struct Throwing final : AsyncFunction<int64_t, std::string> {
    void async_invoke(const int64_t&, Future) override { throw std::runtime_error("no client"); }
  };
  StreamExecutionEnvironment env;
  CollectingSink<std::string> sink;
  AsyncDataStream::ordered_wait(env.generate_sequence(1, 3), Throwing(), std::chrono::seconds(1))
      .name("Enrich")
      .add_sink(sink);
  TestRuntime rt;
  ExpectOperatorError([&] { RunSourceChain(env, {0, 1, 2}, rt); }, "Enrich", "no client");
}

TEST(AsyncWaitTest, CompletionAfterTheOperatorIsGoneIsDropped) {
  Future kept;
  {
    StreamExecutionEnvironment env;
    Deferred fn;
    CollectingSink<std::string> sink;
    AsyncDataStream::ordered_wait(env.from_elements(int64_t{0}), fn, std::chrono::seconds(1))
        .add_sink(sink);
    TestRuntime rt;
    auto task = env.build_chain({1, 2}, {}, rt);
    task->initialize_state(nullptr);
    task->open();
    task->process_buffer(0, Buffer({1}));
    kept = fn.requests->pending.at(0).second;
    task.reset();  // a failed or cancelled task: no close()
  }
  kept->complete({"late"});  // nothing left to post to: dropped
  EXPECT_TRUE(kept->is_done());
}

// ---------------------------------------------------------------------------------------------
// Checkpoints.

TEST(AsyncWaitTest, SnapshotStoresTheRequestsNotEmittedAndARestoreIssuesThemAgain) {
  StreamExecutionEnvironment env;
  Deferred fn;
  CollectingSink<std::string> sink;
  AsyncDataStream::ordered_wait(env.from_elements(int64_t{0}), fn, std::chrono::seconds(1), 10)
      .add_sink(sink);
  std::vector<internal::OperatorSnapshot> snap;
  {
    TestRuntime rt;
    auto task = env.build_chain({1, 2}, {}, rt);
    task->initialize_state(nullptr);
    task->open();
    task->process_buffer(0, Buffer({1, 2, 3, 4, 5}));
    fn.requests->CompleteFromAnotherThread({0, 2});  // 1 and 3
    rt.process_mail();
    EXPECT_THAT(*sink.values, ElementsAre("1"));
    snap = task->snapshot_state(1);
    // The task fails here: 3 had its answer, but it was never emitted.
  }
  ASSERT_EQ(snap.size(), 1u);
  const auto& lists = snap[0].lists;
  ASSERT_EQ(lists.count("sluice.async-wait.in-flight"), 1u);
  EXPECT_EQ(lists.at("sluice.async-wait.in-flight").size(), 4u);

  // Restored with room for two: 2 and 3 are issued at once, 4 and 5 as those finish.
  StreamExecutionEnvironment env2;
  Deferred fn2;
  CollectingSink<std::string> sink2;
  AsyncDataStream::ordered_wait(env2.from_elements(int64_t{0}), fn2, std::chrono::seconds(1), 2)
      .add_sink(sink2);
  TestRuntime rt;
  auto task = env2.build_chain({1, 2}, {}, rt);
  task->initialize_state(&snap);
  task->open();
  EXPECT_THAT(fn2.requests->invoked, ElementsAre(2, 3));
  fn2.requests->CompleteAllNewestFirst();
  rt.process_mail();
  EXPECT_THAT(fn2.requests->invoked, ElementsAre(2, 3, 4, 5));
  EXPECT_THAT(*sink2.values, ElementsAre("2", "3"));
  // A new record waits behind the restored ones.
  rt.OnYield([&] { fn2.requests->CompleteAllNewestFirst(); });
  task->process_buffer(0, Buffer({6}));
  task->end_input();
  EXPECT_THAT(*sink2.values, ElementsAre("2", "3", "4", "5", "6"));
  // Nothing in flight: nothing stored.
  std::vector<internal::OperatorSnapshot> after = task->snapshot_state(2);
  for (const auto& s : after) EXPECT_EQ(s.lists.count("sluice.async-wait.in-flight"), 0u);
  task->close();
}

// A sink that records what it receives and asks for mail (the source's next collect() takes a
// checkpoint) once it has received `mail_after` records.
struct MailingSink final : SinkFunction<std::string> {
  struct State {
    std::vector<std::string> values;
    TestRuntime* rt = nullptr;
    size_t mail_after = SIZE_MAX;
  };
  std::shared_ptr<State> state = std::make_shared<State>();
  void invoke(const std::string& v) override {
    state->values.push_back(v);
    if (state->values.size() == state->mail_after) state->rt->RequestMail();
  }
};

// Runs source -> async -> sink from `restored`, checkpointing after `mail_after` results; what
// was emitted before the checkpoint, all that was emitted, and the snapshot.
struct CheckpointedRun {
  std::vector<std::string> before, all;
  std::vector<internal::OperatorSnapshot> snapshot;
  bool checkpointed = false;
};
CheckpointedRun RunWithCheckpoint(const StreamExecutionEnvironment& env, const MailingSink& sink,
                                  const std::vector<internal::OperatorSnapshot>* restored,
                                  size_t mail_after) {
  CheckpointedRun run;
  TestRuntime rt;
  sink.state->values.clear();
  sink.state->rt = &rt;
  sink.state->mail_after = mail_after;
  auto task = env.build_chain({0, 1, 2}, {}, rt);
  rt.OnMail([&] {
    run.snapshot = task->snapshot_state(1);
    run.before = sink.state->values;
    run.checkpointed = true;
  });
  task->initialize_state(restored);
  task->open();
  task->run_source();
  task->end_input();
  task->close();
  run.all = sink.state->values;
  return run;
}

TEST(AsyncWaitTest, CheckpointAndRestoreAcrossAFailureEmitEveryResultOnce) {
  for (bool ordered : {true, false}) {
    SCOPED_TRACE(ordered ? "ordered" : "unordered");
    StreamExecutionEnvironment env;
    PoolLookup fn(500);
    MailingSink sink;
    auto source = env.generate_sequence(1, 300);
    if (ordered) {
      AsyncDataStream::ordered_wait(source, fn, std::chrono::seconds(10), 16).add_sink(sink);
    } else {
      AsyncDataStream::unordered_wait(source, fn, std::chrono::seconds(10), 16).add_sink(sink);
    }
    CheckpointedRun first = RunWithCheckpoint(env, sink, nullptr, 100);
    ASSERT_TRUE(first.checkpointed);
    const int64_t invoked_first = fn.invocations->load();
    // The run goes on after the checkpoint and then fails; the restore resumes from it.
    CheckpointedRun second = RunWithCheckpoint(env, sink, &first.snapshot, SIZE_MAX);
    std::vector<std::string> got = first.before;
    got.insert(got.end(), second.all.begin(), second.all.end());
    std::vector<std::string> expected = Strings(1, 300);
    if (ordered) {
      EXPECT_EQ(got, expected);
    } else {
      std::sort(got.begin(), got.end());
      std::sort(expected.begin(), expected.end());
      EXPECT_EQ(got, expected) << "lost or duplicated results";
    }
    // Only what was not emitted before the checkpoint is requested again.
    EXPECT_EQ(fn.invocations->load() - invoked_first,
              300 - static_cast<int64_t>(first.before.size()));
  }
}

}  // namespace
}  // namespace sluice
