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
  // Starts the thread at once; the body first runs after one period or the first Wake().
  // `name` is for logs and debuggers (at most 15 characters are shown by the kernel).
  PeriodicThread(std::string name, absl::Duration period, std::function<void()> body);
  // Stops and joins.
  ~PeriodicThread();

  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  // Runs the body as soon as the current run (if any) ends, without waiting for the period.
  void Wake();
  // Ends the loop and joins the thread. Idempotent; the body does not run again once Stop()
  // returns (or, when called from the body, once the body returns).
  void Stop();
  // True once Stop() has been called; a long body may poll it to return early.
  bool stopping() const;

 private:
  void Loop();

  const std::string name_;
  const absl::Duration period_;
  const std::function<void()> body_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sluice
