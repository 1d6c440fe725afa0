// What user code and the engine share: event-time constants, the facts about a running subtask,
// and the errors a task may see. Part of the ABI that SLUICE_ABI_STAMP protects.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

// Types that cross the boundary between a job library and the runtime (exceptions, interfaces)
// keep default visibility, so that their type information matches on both sides.
#define SLUICE_EXPORT __attribute__((visibility("default")))

namespace sluice {

// Event time, in milliseconds. A record without a timestamp carries kNoTimestamp. A watermark t
// says that no record with a timestamp <= t should follow; kMaxWatermark (sent when a bounded
// input ends) fires every event-time timer.
inline constexpr int64_t kNoTimestamp = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kMinWatermark = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kMaxWatermark = std::numeric_limits<int64_t>::max();

// Milliseconds since the epoch on the system clock: processing time.
inline int64_t system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Facts about one running subtask.
struct TaskInfo {
  std::string job_id;
  std::string job_name;
  std::string task_name;  // the chain's name
  int vertex_id = 0;
  int subtask_index = 0;
  int parallelism = 1;
  int max_parallelism = 128;
  int attempt = 0;
  // Checkpointing is on for this job (execution.checkpointing.interval is set).
  bool checkpointing = false;
  // How often timestamp assigners emit periodic watermarks (pipeline.auto-watermark-interval);
  // 0: never.
  int64_t auto_watermark_interval_ms = 200;
};

// Thrown inside a task when it is cancelled while blocked; the runtime catches it.
class SLUICE_EXPORT TaskCancelled : public std::runtime_error {
 public:
  TaskCancelled() : std::runtime_error("task cancelled") {}
  ~TaskCancelled() override;
};

// User code that throws is wrapped into this, naming the operator, at the operator boundary.
class SLUICE_EXPORT OperatorError : public std::runtime_error {
 public:
  OperatorError(const std::string& op, const std::string& what)
      : std::runtime_error("operator '" + op + "' failed: " + what), operator_name_(op) {}
  ~OperatorError() override;
  const std::string& operator_name() const { return operator_name_; }

 private:
  std::string operator_name_;
};
}  // namespace sluice
