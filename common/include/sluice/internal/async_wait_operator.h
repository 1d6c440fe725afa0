// The operator of AsyncDataStream (sluice/async.h): issues an AsyncFunction's requests, takes
// their completions from other threads through operator mail (TaskRuntime::post_mail), and
// emits results and watermarks in the order its mode allows, on the task's thread.
//
// Its queue holds, by sequence number (input order), the records whose results are not emitted
// yet and the watermarks between them. A record's request is issued when it enters the queue,
// except for records restored from a checkpoint beyond the capacity, which wait in the queue
// until earlier requests finish. Completions land in an AsyncInbox shared with every
// ResultFuture, which posts one mail per batch; the mail, a processing-time callback (timeouts),
// a new record and the waits for room or for the end all take the completions and emit what is
// ready. Ordered: the queue's head while it has finished. Unordered: every finished record
// before the first watermark of the queue, and a watermark once it is the head.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "sluice/async.h"
#include "sluice/core.h"
#include "sluice/functions.h"
#include "sluice/internal/operator.h"
#include "sluice/internal/runtime.h"
#include "sluice/serializer.h"

namespace sluice::internal {

// One request's completion, as a ResultFuture hands it over.
template <class OUT>
struct AsyncCompletion {
  uint64_t seq = 0;
  bool failed = false;
  std::vector<OUT> results;
  std::string message;
};

// Where the ResultFutures of one operator deliver their completions, from any thread, for the
// task's thread to take. Shared by the operator and every future it handed out, so that a future
// completed after the operator has gone finds the inbox detached and its completion is dropped.
// Lock order: its mutex, then the runtime's mail lock (post_mail is called under it).
template <class OUT>
class AsyncInbox final : public std::enable_shared_from_this<AsyncInbox<OUT>> {
 public:
  // Task thread: deliveries from now on post mail for operator `node_id` of `rt` (one mail until
  // it has run), which calls `on_mail` on the task's thread.
  void attach(TaskRuntime* rt, int node_id, std::function<void()> on_mail) {
    on_mail_ = std::move(on_mail);
    std::lock_guard<std::mutex> lock(mu_);
    rt_ = rt;
    node_id_ = node_id;
  }
  // Task thread: drops what was delivered and everything delivered later; mail already posted
  // does nothing when it runs. After it returns, no thread calls the runtime through the inbox.
  void detach() {
    std::vector<AsyncCompletion<OUT>> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      rt_ = nullptr;
      dropped.swap(queue_);
    }
    on_mail_ = nullptr;
  }
  // Any thread.
  void deliver(AsyncCompletion<OUT> c) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!rt_) return;
    queue_.push_back(std::move(c));
    if (mail_posted_) return;
    mail_posted_ = true;
    // Under mu_, so that detach() cannot return (and the runtime go) meanwhile.
    rt_->post_mail(node_id_, [self = this->shared_from_this()] { self->run_mail(); });
  }
  // Task thread: the completions delivered so far, oldest first.
  std::vector<AsyncCompletion<OUT>> take() {
    std::vector<AsyncCompletion<OUT>> out;
    std::lock_guard<std::mutex> lock(mu_);
    out.swap(queue_);
    return out;
  }

 private:
  void run_mail() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      mail_posted_ = false;
    }
    if (on_mail_) on_mail_();
  }

  std::mutex mu_;
  TaskRuntime* rt_ = nullptr;                // guarded by mu_; null: detached
  int node_id_ = -1;                         // guarded by mu_
  std::vector<AsyncCompletion<OUT>> queue_;  // guarded by mu_
  bool mail_posted_ = false;                 // guarded by mu_
  std::function<void()> on_mail_;            // task thread only
};

// The ResultFuture of one request: the first completion goes to the inbox, later ones are
// ignored.
template <class OUT>
class AsyncResultFuture final : public ResultFuture<OUT> {
 public:
  AsyncResultFuture(std::shared_ptr<AsyncInbox<OUT>> inbox, uint64_t seq)
      : inbox_(std::move(inbox)), seq_(seq) {}
  void complete(std::vector<OUT> results) override {
    if (done_.exchange(true)) return;
    inbox_->deliver(AsyncCompletion<OUT>{seq_, false, std::move(results), {}});
  }
  void complete_exceptionally(std::string message) override {
    if (done_.exchange(true)) return;
    inbox_->deliver(AsyncCompletion<OUT>{seq_, true, {}, std::move(message)});
  }
  bool is_done() const override { return done_.load(); }

 private:
  std::shared_ptr<AsyncInbox<OUT>> inbox_;
  uint64_t seq_;
  std::atomic<bool> done_{false};
};

template <class IN, class OUT, class F>
class AsyncWaitOperator final : public FunctionOperator<OneInputOperator<IN>, F> {
  using Base = FunctionOperator<OneInputOperator<IN>, F>;

 public:
  // The operator-state list of the inputs whose results were not emitted at a checkpoint: per
  // element the record's timestamp (int64) then the record (Serializer<IN>).
  static constexpr const char* kInFlightList = "sluice.async-wait.in-flight";

  // `timeout_ms` <= 0: no timeout. `capacity` >= 1.
  AsyncWaitOperator(std::string name, F f, Collector<OUT>* out, bool ordered, int64_t timeout_ms,
                    int capacity)
      : Base(std::move(name), std::move(f)),
        out_(out),
        ordered_(ordered),
        timeout_ms_(timeout_ms),
        capacity_(static_cast<size_t>(std::max(capacity, 1))) {}
  ~AsyncWaitOperator() override { inbox_->detach(); }

  // Takes the restored inputs into the queue (they are issued from open()) and hands the rest of
  // the operator state to the function.
  void initialize_state(TaskRuntime& rt, const OperatorSnapshot* restored,
                        bool is_restored) override {
    OperatorSnapshot rest;
    const OperatorSnapshot* function_state = restored;
    if (restored) {
      if (auto it = restored->lists.find(kInFlightList); it != restored->lists.end()) {
        try {
          for (const std::string& bytes : it->second) {
            DataInput in(bytes);
            Entry e;
            Serializer<int64_t>::read(in, e.timestamp);
            Serializer<IN>::read(in, e.input);
            if (!in.at_end()) throw SerializationError("trailing bytes after an input in flight");
            uint64_t seq = next_seq_++;
            entries_.emplace(seq, std::move(e));
            unissued_.push_back(seq);
          }
        } catch (const std::exception& e) {
          throw OperatorError(
              this->name_, std::string("cannot read the restored inputs in flight: ") + e.what());
        }
        rest.node_id = restored->node_id;
        rest.lists = restored->lists;
        rest.lists.erase(kInFlightList);
        function_state = &rest;
      }
    }
    Base::initialize_state(rt, function_state, is_restored);
  }

  // Opens the function, then issues the restored requests (up to the capacity).
  void open(TaskRuntime& rt) override {
    rt_ = &rt;
    inbox_->attach(&rt, this->node_id(), [this] { on_mail(); });
    Base::open(rt);
    drain();
  }

  void emit(IN&& v) override {
    this->count_in();
    const int64_t timestamp = this->element_timestamp();
    wait_until([this] { return unissued_.empty() && in_flight_ < capacity_; });
    const uint64_t seq = next_seq_++;
    Entry& e = entries_[seq];
    e.input = std::move(v);
    e.timestamp = timestamp;
    issue(seq, e);
  }

  void process_watermark(int64_t watermark) override {
    if (entries_.empty()) {
      this->output_watermark(watermark);
      return;
    }
    Entry& last = std::prev(entries_.end())->second;
    if (last.is_watermark) {  // nothing between the two: the later one stands for both
      last.watermark = std::max(last.watermark, watermark);
      return;
    }
    const uint64_t seq = next_seq_++;
    Entry& e = entries_[seq];
    e.is_watermark = true;
    e.watermark = watermark;
    watermarks_.push_back(seq);
  }

  void on_processing_time(int64_t now_ms) override {
    if (!rt_) return;
    fire_timeouts(now_ms);
    take_completions();
    drain();
    if (!deadlines_.empty()) rt_->request_processing_time_callback(deadlines_.begin()->first);
  }

  // Waits for every request and emits what remains.
  void end_input() override {
    wait_until([this] { return entries_.empty(); });
  }

  void snapshot_state(int64_t checkpoint_id, OperatorSnapshot& out) override {
    Base::snapshot_state(checkpoint_id, out);
    std::vector<std::string> inputs;
    for (const auto& [seq, e] : entries_) {
      if (e.is_watermark) continue;
      std::string bytes;
      DataOutput o(bytes);
      Serializer<int64_t>::write(o, e.timestamp);
      Serializer<IN>::write(o, e.input);
      inputs.push_back(std::move(bytes));
    }
    if (!inputs.empty()) out.lists[kInFlightList] = std::move(inputs);
  }

  // Completions from now on are dropped.
  void close() override {
    inbox_->detach();
    Base::close();
  }

 private:
  struct Entry {
    bool is_watermark = false;
    int64_t watermark = kMinWatermark;
    IN input{};
    int64_t timestamp = kNoTimestamp;
    bool done = false;  // the results are here
    bool timed_out = false;
    int64_t deadline = kNoTimestamp;
    std::vector<OUT> results;
    std::shared_ptr<AsyncResultFuture<OUT>> future;
  };

  // Takes completions, fires timeouts and emits until `ready()` holds, yielding to the task's
  // mail (this operator's and later ones') while it does not.
  template <class Ready>
  void wait_until(Ready ready) {
    while (true) {
      take_completions();
      fire_timeouts(rt_->current_processing_time());
      take_completions();
      drain();
      if (ready()) return;
      rt_->yield_to_mail(this->node_id(),
                         deadlines_.empty() ? kNoTimestamp : deadlines_.begin()->first);
    }
  }

  void on_mail() {
    if (draining_) {  // a completion while emitting: the emitting loop goes round again
      redrain_ = true;
      return;
    }
    take_completions();
    drain();
  }

  void issue(uint64_t seq, Entry& e) {
    e.future = std::make_shared<AsyncResultFuture<OUT>>(inbox_, seq);
    ++in_flight_;
    if (timeout_ms_ > 0) {
      // Deadlines never decrease along the queue, even if the clock steps back.
      e.deadline = rt_->current_processing_time() + timeout_ms_;
      if (!deadlines_.empty()) e.deadline = std::max(e.deadline, deadlines_.rbegin()->first);
      deadlines_.emplace(e.deadline, seq);
      rt_->request_processing_time_callback(e.deadline);
    }
    std::shared_ptr<ResultFuture<OUT>> handle = e.future;
    SLUICE_USER_CALL(this->name_,
                     this->f_.async_invoke(static_cast<const IN&>(e.input), std::move(handle)));
  }

  void take_completions() {
    for (AsyncCompletion<OUT>& c : inbox_->take()) {
      auto it = entries_.find(c.seq);
      if (it == entries_.end() || it->second.done) continue;
      Entry& e = it->second;
      if (c.failed) {
        throw OperatorError(this->name_, e.timed_out
                                             ? "asynchronous request timed out after " +
                                                   std::to_string(timeout_ms_) + " ms: " + c.message
                                             : "asynchronous request failed: " + c.message);
      }
      e.done = true;
      e.results = std::move(c.results);
      if (e.deadline != kNoTimestamp) deadlines_.erase({e.deadline, c.seq});
      if (!ordered_) finished_.push_back(c.seq);
    }
  }

  void fire_timeouts(int64_t now_ms) {
    while (!deadlines_.empty() && deadlines_.begin()->first <= now_ms) {
      const uint64_t seq = deadlines_.begin()->second;
      deadlines_.erase(deadlines_.begin());
      Entry& e = entries_.at(seq);
      if (e.future->is_done()) continue;  // its completion is on its way
      e.timed_out = true;
      SLUICE_USER_CALL(this->name_, this->f_.timeout(static_cast<const IN&>(e.input), *e.future));
    }
  }

  // Emits what is ready, then issues restored requests as room frees up.
  void drain() {
    if (draining_) {
      redrain_ = true;
      return;
    }
    draining_ = true;
    struct Reset {
      bool& flag;
      ~Reset() { flag = false; }
    } reset{draining_};
    do {
      redrain_ = false;
      emit_ready();
      while (!unissued_.empty() && in_flight_ < capacity_) {
        const uint64_t seq = unissued_.front();
        unissued_.pop_front();
        issue(seq, entries_.at(seq));
      }
    } while (redrain_);
  }

  void emit_ready() {
    while (true) {
      if (!ordered_) emit_finished_before_first_watermark();
      if (entries_.empty()) return;
      auto head = entries_.begin();
      if (head->second.is_watermark) {
        const int64_t watermark = head->second.watermark;
        entries_.erase(head);
        watermarks_.pop_front();
        this->output_watermark(watermark);
        continue;
      }
      if (ordered_ && head->second.done) {
        emit_results(head);
        continue;
      }
      return;
    }
  }

  void emit_finished_before_first_watermark() {
    const uint64_t bound =
        watermarks_.empty() ? std::numeric_limits<uint64_t>::max() : watermarks_.front();
    std::vector<uint64_t> later;
    std::vector<uint64_t> now;
    for (uint64_t seq : finished_) (seq < bound ? now : later).push_back(seq);
    finished_ = std::move(later);
    for (uint64_t seq : now) emit_results(entries_.find(seq));
  }

  void emit_results(typename std::map<uint64_t, Entry>::iterator it) {
    Entry e = std::move(it->second);
    entries_.erase(it);
    --in_flight_;
    OperatorBase::TimestampGuard guard(this);
    this->set_element_timestamp(e.timestamp);
    for (OUT& r : e.results) out_->emit(std::move(r));
  }

  Collector<OUT>* out_;
  const bool ordered_;
  const int64_t timeout_ms_;
  const size_t capacity_;
  TaskRuntime* rt_ = nullptr;
  std::shared_ptr<AsyncInbox<OUT>> inbox_ = std::make_shared<AsyncInbox<OUT>>();
  // The queue: records not emitted yet and the watermarks after them, by sequence number.
  std::map<uint64_t, Entry> entries_;
  uint64_t next_seq_ = 0;
  size_t in_flight_ = 0;                              // issued records in the queue
  std::deque<uint64_t> unissued_;                     // restored records waiting for room, in order
  std::deque<uint64_t> watermarks_;                   // the watermarks in the queue, in order
  std::vector<uint64_t> finished_;                    // unordered: records done but not emitted
  std::set<std::pair<int64_t, uint64_t>> deadlines_;  // of requests not done: (deadline, seq)
  bool draining_ = false;
  bool redrain_ = false;
};

}  // namespace sluice::internal
