// The narrow, type-erased seam between a job library's typed operators and the runtime.
//
// A job library is compiled against these declarations; the TaskManager implements RecordWriter
// and TaskRuntime and drives a ChainTask. Nothing here knows a user type. Everything in this file
// is part of the ABI that SLUICE_ABI_STAMP protects.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

// Types that cross the boundary between a job library and the runtime (exceptions, interfaces)
// keep default visibility, so that their type information matches on both sides.
#define SLUICE_EXPORT __attribute__((visibility("default")))

namespace sluice {

// What travels through a network channel: a buffer of records, or an in-band event.
enum class BufferKind : int32_t {
  kData = 0,
  kEndOfPartition = 1,  // the producer subtask has finished
  kWatermark = 2,       // value: timestamp
  kBarrier = 3,         // value: checkpoint id, value2: checkpoint timestamp
};

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
};

// One output edge of a task: records are appended whole to a channel's open buffer, then
// committed. Implemented by the runtime; called only from the task's thread.
class SLUICE_EXPORT RecordWriter {
 public:
  virtual ~RecordWriter() = default;
  virtual int num_channels() const = 0;
  // The open buffer of `channel`; append one whole serialized record, then call commit().
  virtual std::string& buffer(int channel) = 0;
  // Sends the buffer when it is full or the buffer timeout has passed. May block while the
  // consumer has no room (back-pressure); throws TaskCancelled if the task is cancelled meanwhile.
  virtual void commit(int channel) = 0;
};

// Services the runtime offers to a task's operators. Called only from the task's thread unless
// a method says otherwise.
class SLUICE_EXPORT TaskRuntime {
 public:
  virtual ~TaskRuntime() = default;
  virtual const TaskInfo& info() const = 0;
  // True once the task has been asked to stop. Safe from any thread.
  virtual bool cancelled() const = 0;
  // Writes a line to the process's standard output as one write (print sinks).
  virtual void print_line(std::string_view line) = 0;
  // Sends every partly filled output buffer now. For sources about to wait for input, whose
  // buffers would otherwise wait for the next record.
  virtual void flush_outputs() = 0;
};

// Thrown inside a task when it is cancelled while blocked; the runtime catches it.
class SLUICE_EXPORT TaskCancelled : public std::runtime_error {
 public:
  TaskCancelled() : std::runtime_error("task cancelled") {}
};

// User code that throws is wrapped into this, naming the operator, at the operator boundary.
class SLUICE_EXPORT OperatorError : public std::runtime_error {
 public:
  OperatorError(const std::string& op, const std::string& what)
      : std::runtime_error("operator '" + op + "' failed: " + what), operator_name_(op) {}
  const std::string& operator_name() const { return operator_name_; }

 private:
  std::string operator_name_;
};

// The operator chain of one subtask, built by the job library for the runtime.
// Lifecycle, all on the task's thread: open(), then run_source() for a source chain or
// process_buffer() for every data buffer of every input, then end_input(), then close().
// cancel() may be called from another thread at any time.
class SLUICE_EXPORT ChainTask {
 public:
  virtual ~ChainTask() = default;
  virtual void open() = 0;
  virtual bool is_source() const = 0;
  // Runs the source until its input ends or the task is cancelled.
  virtual void run_source() = 0;
  // Deserializes one buffer that arrived on input `input` of the head operator and processes it.
  virtual void process_buffer(int input, std::string_view bytes) = 0;
  // All inputs have ended: operators flush what they hold, head first.
  virtual void end_input() = 0;
  virtual void close() = 0;
  virtual void cancel() = 0;
};

}  // namespace sluice
