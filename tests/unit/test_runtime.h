// The runtime's side of the SDK seam for in-process tests of operator chains: a TaskRuntime
// that records printed lines, flushes and mail, and lets a test raise the mail flag.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
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
  void process_mail() override {
    mail_.store(false);
    mails_.push_back(flushes_.size());
    if (on_mail_) on_mail_();
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

  void SetProcessingTime(int64_t now_ms) { now_ms_ = now_ms; }
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
  void RequestMail() { mail_.store(true); }
  void OnMail(std::function<void()> on_mail) { on_mail_ = std::move(on_mail); }
  // Both: the next check of the mail flag calls `f` (on the task's thread).
  void PostMail(std::function<void()> f) {
    OnMail(std::move(f));
    RequestMail();
  }
  const std::vector<std::string>& lines() const { return lines_; }
  // For each flush_outputs() call, how many lines had been printed by then.
  const std::vector<size_t>& flushes() const { return flushes_; }
  // For each process_mail() call, how many flush_outputs() calls came before it.
  const std::vector<size_t>& mails() const { return mails_; }

 private:
  TaskInfo info_;
  int64_t now_ms_ = kNoTimestamp;
  int64_t callback_ms_ = kNoTimestamp;
  std::vector<size_t> flushes_;
  std::vector<size_t> mails_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> mail_{false};
  std::function<void()> on_mail_;
  BackendMakerFn backend_maker_;
  std::vector<std::string> lines_;
};

}  // namespace sluice::testing_support
