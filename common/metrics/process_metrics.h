// The daemon's own figures, the native counterparts of Flink's Status.JVM.* metrics:
//   Status.Process.CPU.Time      CPU time used, user and system, in ms
//   Status.Process.CPU.Load      CPU time per second of the last seconds (1.0: one core busy)
//   Status.Process.Memory.RSS    resident memory in bytes
//   Status.Process.Threads.Count threads
//   Status.Process.FileDescriptors.Count / .Max   open files and the limit
// Read from /proc/self and getrlimit when reported.
#pragma once

#include "common/metrics/metric_registry.h"

namespace sluice::metrics {

void RegisterProcessMetrics(MetricGroup& group);

// The figures themselves (also for the REST API's TaskManager view).
struct ProcessStats {
  int64_t cpu_time_ms = 0;
  int64_t rss_bytes = 0;
  int64_t threads = 0;
  int64_t open_files = 0;
  int64_t max_files = 0;
};
ProcessStats ReadProcessStats();

}  // namespace sluice::metrics
