#include "common/periodic_thread.h"

#include <pthread.h>

namespace sluice {

PeriodicThread::PeriodicThread(std::string name, absl::Duration period, std::function<void()> body,
                               FirstRun first)
    : name_(std::move(name)), period_(period), body_(std::move(body)) {
  absl::MutexLock lock(&mu_);
  woken_ = first == FirstRun::kAtOnce;
  thread_ = std::thread([this] { Loop(); });
  pthread_setname_np(thread_.native_handle(), name_.substr(0, 15).c_str());
}

PeriodicThread::~PeriodicThread() { Stop(); }

void PeriodicThread::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

void PeriodicThread::Stop() {
  std::thread::id loop;
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    loop = loop_id_;
  }
  if (loop == std::this_thread::get_id()) return;  // from the body: the loop ends after it
  // Concurrent callers join once; each returns once the thread has ended.
  absl::MutexLock lock(&join_mu_);
  if (thread_.joinable()) thread_.join();
}

bool PeriodicThread::stopping() const {
  absl::MutexLock lock(&mu_);
  return stop_;
}

void PeriodicThread::Loop() {
  {
    absl::MutexLock lock(&mu_);
    loop_id_ = std::this_thread::get_id();
  }
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto due = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || woken_; };
      mu_.AwaitWithTimeout(absl::Condition(&due), period_);
      if (stop_) return;
      woken_ = false;
    }
    body_();
  }
}

}  // namespace sluice
