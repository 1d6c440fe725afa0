// PeriodicThread: one background thread that runs a body every period until stopped, and at once
// when woken. It replaces the hand-rolled "thread + condition variable + stop flag" loops of the
// daemons (heartbeats, monitors, coordinators, timers).
//
// Threads: the body runs on the thread this object owns, never concurrently with itself. Wake()
// and Stop() may be called from any thread, including from inside the body (Stop() from the body
// ends the loop after the body returns, without joining itself).
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sluice {

class PeriodicThread {
 public:
  // When the body first runs: after one period (or the first Wake()), or at once.
  enum class FirstRun { kAfterPeriod, kAtOnce };

  // Starts the thread at once; the body first runs as `first` says.
  // `name` is for logs and debuggers (at most 15 characters are shown by the kernel).
  PeriodicThread(std::string name, absl::Duration period, std::function<void()> body,
                 FirstRun first = FirstRun::kAfterPeriod);
  // Stops and joins.
  ~PeriodicThread();

  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  // Runs the body as soon as the current run (if any) ends, without waiting for the period.
  void Wake() ABSL_LOCKS_EXCLUDED(mu_);
  // Ends the loop and joins the thread. Idempotent; the body does not run again once Stop()
  // returns (or, when called from the body, once the body returns).
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);
  // True once Stop() has been called; a long body may poll it to return early.
  bool stopping() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_);

  const std::string name_;
  const absl::Duration period_;
  const std::function<void()> body_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  std::thread::id loop_id_ ABSL_GUARDED_BY(mu_);  // the thread running the body
  absl::Mutex join_mu_;                           // one Stop() joins at a time
  // Written by the constructor under mu_, which the loop takes before its first run: a body
  // that calls Stop() at once still sees it.
  std::thread thread_;
};

}  // namespace sluice
