// CancelOnExit: `sluice run -sae` (--shutdownOnAttachedExit), as Flink's attached client: when
// the CLI that waits for its job is told to stop (SIGTERM, as a scheduler such as Airflow sends
// when it kills a task, or Ctrl-C), it cancels the job before it exits, so that no job outlives
// the task that started it.
//
// Threads: Install() on the main thread before any other thread starts (the signals are blocked
// for every thread and taken by one of its own); Submitted() from any thread.
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "client/job_client.h"

namespace sluice {

class CancelOnExit {
 public:
  // Blocks SIGTERM and SIGINT and starts the thread that waits for them. The object lives until
  // the process exits.
  static CancelOnExit* Install();
  // The job to cancel from now on, through `client` (which must live until the process exits).
  // If a signal came while the job was being submitted, cancels it and exits at once.
  void Submitted(JobClient* client, const std::string& job_id);

 private:
  CancelOnExit() = default;
  // Cancels the job, says so, and ends the process with 128 + sig (what a shell shows).
  [[noreturn]] static void CancelAndExit(JobClient* client, const std::string& job_id, int sig);

  absl::Mutex mu_;
  JobClient* client_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::string job_id_ ABSL_GUARDED_BY(mu_);
  int signal_ ABSL_GUARDED_BY(mu_) = 0;  // the signal received, 0 while none
};

}  // namespace sluice
