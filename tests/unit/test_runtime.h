// The runtime's side of the SDK seam for in-process tests of operator chains: a TaskRuntime
// that records printed lines, flushes and mail, lets a test raise the mail flag, and keeps the
// operator mail that any thread posts (post_mail) for the chain's thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/internal/heap_backend.h"
#include "sluice/internal/runtime.h"
#include "sluice/state.h"

namespace sluice::testing_support {

using BackendMakerFn = std::function<std::unique_ptr<internal::KeyedStateBackend>(
    int node_id, const KeyGroupRange& range)>;

// What every TestRuntime makes keyed state backends with unless a test sets its own (null: the
// heap). Set for a whole test program by test_backends.h's UseBackendOfEnvironment.
inline BackendMakerFn& DefaultBackendMaker() {
  static BackendMakerFn maker;
  return maker;
}

class TestRuntime : public internal::TaskRuntime {
 public:
  explicit TestRuntime(int subtask = 0, int parallelism = 1, int max_parallelism = 128) {
    info_.job_id = "job-test";
    info_.job_name = "test";
    info_.task_name = "chain";
    info_.subtask_index = subtask;
    info_.parallelism = parallelism;
    info_.max_parallelism = max_parallelism;
  }
  const TaskInfo& info() const override { return info_; }
  bool cancelled() const override { return cancelled_.load(); }
  void print_line(std::string_view line) override { lines_.emplace_back(line); }
  void flush_outputs() override { flushes_.push_back(lines_.size()); }
  const std::atomic<bool>& mail_flag() const override { return mail_; }
  // Runs the operator mail posted so far, then the test's (OnMail) if it asked for mail.
  void process_mail() override {
    mail_.store(false);
    mails_.push_back(flushes_.size());
    for (OperatorMail& m : TakeOperatorMail(0)) m.run();
    if (requested_) {
      requested_ = false;
      if (on_mail_) on_mail_();
    }
  }
  void post_mail(int node_id, std::function<void()> mail) override {
    {
      std::lock_guard<std::mutex> lock(operator_mail_mu_);
      operator_mail_.push_back(OperatorMail{node_id, std::move(mail)});
    }
    operator_mail_cv_.notify_all();
    mail_.store(true);
  }
  // Calls the test's OnYield hook first. The wait for mail is bounded by 20 ms of real time,
  // so that a deadline in the test's processing time (SetProcessingTime) is seen once the
  // hook moves it.
  void yield_to_mail(int node_id, int64_t deadline_ms) override {
    ++yields_;
    if (on_yield_) on_yield_();
    if (cancelled()) throw TaskCancelled();
    {
      std::unique_lock<std::mutex> lock(operator_mail_mu_);
      int64_t wait_ms = 20;
      if (deadline_ms != kNoTimestamp) {
        wait_ms = std::clamp<int64_t>(deadline_ms - current_processing_time(), 0, wait_ms);
      }
      operator_mail_cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] {
        return cancelled() ||
               std::any_of(operator_mail_.begin(), operator_mail_.end(),
                           [&](const OperatorMail& m) { return m.node_id >= node_id; });
      });
    }
    if (cancelled()) throw TaskCancelled();
    for (OperatorMail& m : TakeOperatorMail(node_id)) m.run();
  }
  // Processing time is the test's to set (SetProcessingTime); until then the system clock's.
  int64_t current_processing_time() const override {
    return now_ms_ != kNoTimestamp ? now_ms_ : system_clock_ms();
  }
  void request_processing_time_callback(int64_t time_ms) override {
    if (callback_ms_ == kNoTimestamp || time_ms < callback_ms_) callback_ms_ = time_ms;
  }

  // Keyed operators get the backend of SetBackendMaker, else of DefaultBackendMaker, else the heap.
  std::unique_ptr<internal::KeyedStateBackend> create_keyed_state_backend(
      int node_id, const KeyGroupRange& range) override {
    if (backend_maker_) return backend_maker_(node_id, range);
    if (DefaultBackendMaker()) return DefaultBackendMaker()(node_id, range);
    return std::make_unique<internal::HeapKeyedStateBackend>(range);
  }
  void SetBackendMaker(BackendMakerFn maker) { backend_maker_ = std::move(maker); }

  // Metrics: lends the chain counters for the nodes of `chain` (head first) and `edges` network
  // edges, as the TaskManager does; without it the chain counts nothing.
  void CountRecords(std::vector<int> chain, size_t edges) {
    chain_ = std::move(chain);
    op_counters_ = std::make_unique<internal::OperatorCounters[]>(chain_.size());
    edge_counters_ = std::make_unique<internal::SingleWriterCounter[]>(edges);
    num_edges_ = edges;
  }
  internal::OperatorCounters* operator_counters(int node_id) override {
    size_t k = Position(node_id);
    return k < chain_.size() ? &op_counters_[k] : nullptr;
  }
  internal::SingleWriterCounter* edge_records_out(size_t output) override {
    return output < num_edges_ ? &edge_counters_[output] : nullptr;
  }
  // What the metrics would show for node `node_id` of the chain, and for a network edge.
  int64_t RecordsIn(int node_id) const {
    return internal::chain_records_in(op_counters_.get(), Position(node_id));
  }
  int64_t RecordsOut(int node_id) const {
    return internal::chain_records_out(op_counters_.get(), chain_.size(), edge_counters_.get(),
                                       num_edges_, Position(node_id));
  }
  int64_t EdgeRecords(size_t output) const { return edge_counters_[output].get(); }

  void SetProcessingTime(int64_t now_ms) { now_ms_ = now_ms; }
  size_t Position(int node_id) const {
    return static_cast<size_t>(std::find(chain_.begin(), chain_.end(), node_id) - chain_.begin());
  }
  // The callback asked for (kNoTimestamp if none); TakeCallback() consumes it, as the runtime does
  // before calling ChainTask::on_processing_time.
  int64_t callback_time() const { return callback_ms_; }
  int64_t TakeCallback() {
    int64_t t = callback_ms_;
    callback_ms_ = kNoTimestamp;
    return t;
  }

  void set_checkpointing(bool on) { info_.checkpointing = on; }
  void Cancel() { cancelled_.store(true); }
  // Raises the mail flag; the next process_mail() calls `on_mail` (set with OnMail).
  void RequestMail() {
    requested_ = true;
    mail_.store(true);
  }
  void OnMail(std::function<void()> on_mail) { on_mail_ = std::move(on_mail); }
  // Both: the next check of the mail flag calls `f` (on the task's thread).
  void PostMail(std::function<void()> f) {
    OnMail(std::move(f));
    RequestMail();
  }
  // Called (on the chain's thread) at the start of every yield_to_mail().
  void OnYield(std::function<void()> on_yield) { on_yield_ = std::move(on_yield); }
  // How many times an operator yielded to wait for mail.
  int yields() const { return yields_; }
  const std::vector<std::string>& lines() const { return lines_; }
  // For each flush_outputs() call, how many lines had been printed by then.
  const std::vector<size_t>& flushes() const { return flushes_; }
  // For each process_mail() call, how many flush_outputs() calls came before it.
  const std::vector<size_t>& mails() const { return mails_; }

 private:
  std::vector<int> chain_;
  std::unique_ptr<internal::OperatorCounters[]> op_counters_;
  std::unique_ptr<internal::SingleWriterCounter[]> edge_counters_;
  size_t num_edges_ = 0;
  struct OperatorMail {
    int node_id;
    std::function<void()> run;
  };
  // The mail of operators `node_id` and after, taken out of the queue in order.
  std::vector<OperatorMail> TakeOperatorMail(int node_id) {
    std::vector<OperatorMail> mine;
    std::lock_guard<std::mutex> lock(operator_mail_mu_);
    for (auto it = operator_mail_.begin(); it != operator_mail_.end();) {
      if (it->node_id >= node_id) {
        mine.push_back(std::move(*it));
        it = operator_mail_.erase(it);
      } else {
        ++it;
      }
    }
    return mine;
  }

  TaskInfo info_;
  int64_t now_ms_ = kNoTimestamp;
  int64_t callback_ms_ = kNoTimestamp;
  std::vector<size_t> flushes_;
  std::vector<size_t> mails_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> mail_{false};
  bool requested_ = false;
  std::function<void()> on_mail_;
  std::function<void()> on_yield_;
  int yields_ = 0;
  std::mutex operator_mail_mu_;
  std::condition_variable operator_mail_cv_;
  std::deque<OperatorMail> operator_mail_;
  BackendMakerFn backend_maker_;
  std::vector<std::string> lines_;
};

}  // namespace sluice::testing_support
