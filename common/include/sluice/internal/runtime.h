// The narrow, type-erased seam between a job library's typed operators and the runtime.
//
// A job library is compiled against these declarations; the TaskManager implements RecordWriter
// and TaskRuntime and drives a ChainTask. Nothing here knows a user type. Everything in this file
// is part of the ABI that SLUICE_ABI_STAMP protects.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/core.h"
#include "sluice/keys.h"

namespace sluice::internal {

// What travels through a network channel: a buffer of records, or an in-band event.
enum class BufferKind : int32_t {
  kData = 0,
  kEndOfPartition = 1,   // the producer subtask has finished
  kWatermark = 2,        // value: the watermark (event time, ms)
  kBarrier = 3,          // value: checkpoint id, value2: checkpoint timestamp, data: its
                         // proto::CheckpointType as one byte (none: a checkpoint)
  kEndOfData = 4,        // the producer has emitted its last record (it may still checkpoint)
  kWatermarkStatus = 5,  // value: 1 when the producer goes idle, 0 when it is active again
};

// One file of an embedded store's own snapshot (see NativeSnapshot).
struct StoreFile {
  std::string name;  // the file's name in the store's directory
  std::string path;  // where it is kept, relative to the job's checkpoint directory
  uint64_t size = 0;
  // Under shared/: later checkpoints of the same store may refer to it instead of storing it again.
  bool shared = false;
};

// A keyed state backend's snapshot in its store's own format (RocksDB's files): every key group
// of [first_key_group, last_key_group]. Incremental checkpoints store only the files that the
// last completed checkpoint did not have.
struct NativeSnapshot {
  std::string backend;  // "rocksdb"
  int first_key_group = 0;
  int last_key_group = -1;
  std::vector<StoreFile> files;
  // Bytes this checkpoint stored anew (files it shares with an earlier one excluded).
  uint64_t uploaded_bytes = 0;
};

struct OperatorSnapshot;

// The part of a snapshot done off the task's thread, so that processing goes on meanwhile
// (copying a store's files to checkpoint storage). A backend sets it in its synchronous part;
// the runtime completes it before writing the subtask's state file.
class SLUICE_EXPORT DeferredSnapshot {
 public:
  virtual ~DeferredSnapshot() = default;
  // Adds to `out` what was captured (native snapshots, key groups), storing files under
  // `job_checkpoint_dir`. Runs on another thread than the task's. Throws std::runtime_error
  // naming the file on failure.
  virtual void complete(const std::string& job_checkpoint_dir, int64_t checkpoint_id,
                        OperatorSnapshot& out) = 0;
};

// How the runtime hands a list of operator state to the subtasks of a restore (Flink's
// redistribution modes).
enum class ListDistribution : uint8_t {
  // The elements of all old subtasks, split evenly: each element goes to one new subtask.
  kSplit = 0,
  // Every new subtask gets the elements of all old subtasks (Flink's union list state).
  kUnion = 1,
  // Every subtask holds the same list (broadcast state): a new subtask gets one old subtask's.
  kBroadcast = 2,
};

// The state of one operator of a subtask at a checkpoint, as bytes the runtime stores and
// redistributes without understanding them.
struct OperatorSnapshot {
  int node_id = -1;
  // Operator state: named lists whose elements are serialized one by one, so that the runtime
  // can redistribute them over another number of subtasks, as `distribution` says.
  std::map<std::string, std::vector<std::string>> lists;
  // The lists not split evenly (kSplit is not stored).
  std::map<std::string, ListDistribution> distribution;
  // Keyed state by absolute key group: each value holds every keyed state entry of that group.
  std::map<int, std::string> key_groups;
  // Keyed state in a store's own format. After a restore is narrowed to a subtask, every old
  // snapshot whose key groups overlap the subtask's range.
  std::vector<NativeSnapshot> native;
  // Set by the synchronous part of a snapshot, cleared once completed (not stored).
  std::shared_ptr<DeferredSnapshot> deferred;
  bool empty() const {
    return lists.empty() && key_groups.empty() && native.empty() && deferred == nullptr;
  }
};

class KeyedStateBackend;

// A count that one thread (a task's) writes and any thread reads. Adding is a relaxed load and a
// relaxed store (plain moves on x86 and ARM): no read-modify-write instruction, no lock, and no
// data race for a reader on another thread, which sees a recent value.
class SingleWriterCounter {
 public:
  void add(int64_t n) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  int64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// The record counts of one operator of a chain, kept by the runtime (which reads them for
// metrics, from another thread) and written by the chain on the task's thread. Operators are
// numbered by their index in the chain (head first, each after its parent: the operator whose
// output it reads). Each record is counted where it costs least, and the other counts are
// derived from it:
//   - records_in: records the operator received: counted by its input collector (both inputs of
//     a two-input operator), or, at the head of a chain, per network buffer in steps of
//     kRecordsCountedAtOnce (graph.h); unless
//     in_is_in_of >= 0: its parent (that index) emits exactly one record per record it receives
//     (a map) into this one alone, so the parent's records in are this one's.
//   - records_out: records sent to the operator's main output, counted by a fan-out when the
//     output has several targets. When it is one chained operator alone (out_is_in_of >= 0, its
//     index), that operator's records in are the count; when it is one network edge alone
//     (out_edge >= 0), that edge's count.
//   - output_watermark: the last watermark the operator passed on.
//   - parent: the index of its parent (-1 at the head), whose output watermark is its input's.
// The indexes are set while the chain is built, before the task runs.
struct OperatorCounters {
  SingleWriterCounter records_in;
  SingleWriterCounter records_out;
  std::atomic<int> in_is_in_of{-1};
  std::atomic<int> out_is_in_of{-1};
  std::atomic<int> out_edge{-1};
  std::atomic<int> parent{-1};
  std::atomic<int64_t> output_watermark{kMinWatermark};
};

// Operator k's records in, from the counters of a chain's operators (`ops`, head first).
inline int64_t chain_records_in(const OperatorCounters* ops, size_t k) {
  for (int p; (p = ops[k].in_is_in_of.load(std::memory_order_relaxed)) >= 0 &&
              static_cast<size_t>(p) < k;) {
    k = static_cast<size_t>(p);
  }
  return ops[k].records_in.get();
}
// Operator k's records out, from the counters of a chain's `n` operators and its network edges.
inline int64_t chain_records_out(const OperatorCounters* ops, size_t n,
                                 const SingleWriterCounter* edges, size_t num_edges, size_t k) {
  const OperatorCounters& c = ops[k];
  const int to = c.out_is_in_of.load(std::memory_order_relaxed);
  if (to >= 0 && static_cast<size_t>(to) > k && static_cast<size_t>(to) < n) {
    return chain_records_in(ops, static_cast<size_t>(to));
  }
  const int edge = c.out_edge.load(std::memory_order_relaxed);
  if (edge >= 0 && static_cast<size_t>(edge) < num_edges) return edges[edge].get();
  return c.records_out.get();
}

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
  // Sends every open buffer, then the watermark on every channel.
  virtual void emit_watermark(int64_t watermark) = 0;
  // Tells every channel that this producer goes idle (sends no watermarks for now, and must not
  // hold its consumers back) or is active again.
  virtual void emit_watermark_status(bool idle) = 0;
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
  // Set (from any thread) when the runtime has work for the task's thread: a checkpoint to
  // start at a source, a checkpoint's completion to announce, operator mail to run. A source
  // checks it between records and then calls process_mail(), which may snapshot the whole chain
  // and send a checkpoint barrier downstream before returning.
  virtual const std::atomic<bool>& mail_flag() const = 0;
  virtual void process_mail() = 0;
  // Operator mail (a mailbox executor, as in Flink): work that another thread hands to operator
  // `node_id` of the chain, to run on the task's thread. Safe from any thread. Mail runs in the
  // order posted, the next time the task takes its mail: in process_mail() (between records, and
  // while the task waits for input or for its final checkpoint) or in a yield_to_mail() of an
  // operator at or before `node_id`. The caller must know that the runtime outlives the call (an
  // operator stops posting when it closes); mail left when the task ends is destroyed unrun.
  virtual void post_mail(int node_id, std::function<void()> mail) = 0;
  // Task thread only, from inside operator `node_id`, possibly in the middle of a record: waits
  // until mail for an operator with a node id at or above `node_id` has been posted or
  // processing time reaches `deadline_ms` (kNoTimestamp: no deadline), then runs that mail. It
  // may return earlier. Node ids grow downstream, so that is this operator, those after it and
  // other branches of a chain that forks, none of which is on the call stack; mail of the
  // operators before it stays queued, since they may be halfway through a record. For the same
  // reason it takes no checkpoint and calls no processing-time callback. Throws TaskCancelled
  // once the task is cancelled.
  virtual void yield_to_mail(int node_id, int64_t deadline_ms) = 0;
  // Processing time: milliseconds since the epoch.
  virtual int64_t current_processing_time() const { return system_clock_ms(); }
  // Asks for ChainTask::on_processing_time() on the task's thread once processing time reaches
  // `time_ms` (for a source: at its next collect() or flush()). One request is kept, the
  // earliest; each call of on_processing_time() consumes it, so operators ask again for the next
  // time they need.
  virtual void request_processing_time_callback(int64_t time_ms) = 0;
  // The keyed state of keyed operator `node_id` for key groups `range`, in the backend the job
  // runs with (state.backend.type): on the heap or in an embedded store.
  virtual std::unique_ptr<KeyedStateBackend> create_keyed_state_backend(
      int node_id, const KeyGroupRange& range) = 0;
  // Where the chain counts operator `node_id`'s records, or null when metrics are off. Called
  // while the chain is built; the counters outlive the chain.
  virtual OperatorCounters* operator_counters(int /*node_id*/) { return nullptr; }
  // Where the chain counts the records it sends over network edge `output` (the index of its
  // OutputBinding; the task's numRecordsOut is their sum), or null when metrics are off.
  virtual SingleWriterCounter* edge_records_out(size_t /*output*/) { return nullptr; }
};
// The operator chain of one subtask, built by the job library for the runtime.
// Lifecycle, all on the task's thread: initialize_state(), open(), then run_source() for a source
// chain or process_buffer() for every data buffer of every input (with process_watermark() and
// process_watermark_status() as the task's input watermark moves), then kMaxWatermark, then
// end_input(), then close(). on_processing_time() comes between records when asked for.
// snapshot_state() and notify_checkpoint_complete() come between records (for a source: from
// inside its run, through TaskRuntime::process_mail) and after end_input().
// cancel() may be called from another thread at any time.
class SLUICE_EXPORT ChainTask {
 public:
  virtual ~ChainTask() = default;
  // The state to start from, already narrowed to this subtask: `restored` is null for a fresh
  // start, and otherwise holds the snapshots of this subtask's operators (possibly none).
  virtual void initialize_state(const std::vector<OperatorSnapshot>* restored) = 0;
  virtual void open() = 0;
  virtual bool is_source() const = 0;
  // Runs the source until its input ends or the task is cancelled.
  virtual void run_source() = 0;
  // Deserializes one buffer that arrived on input `input` of the head operator and processes it.
  virtual void process_buffer(int input, std::string_view bytes) = 0;
  // The task's input watermark advanced to `watermark`: the minimum over its input channels
  // that are not idle. Operators fire their event-time timers and pass it on.
  virtual void process_watermark(int64_t watermark) = 0;
  // Every input channel is idle (true), or one is active again (false).
  virtual void process_watermark_status(bool idle) = 0;
  // Processing time has reached the time asked for with request_processing_time_callback.
  virtual void on_processing_time(int64_t now_ms) = 0;
  // All inputs have ended: operators flush what they hold, head first.
  virtual void end_input() = 0;
  virtual void close() = 0;
  virtual void cancel() = 0;
  // The synchronous part of checkpoint `checkpoint_id`: every operator's state as bytes (empty
  // snapshots left out). What is returned no longer refers to the operators' data structures.
  virtual std::vector<OperatorSnapshot> snapshot_state(int64_t checkpoint_id) = 0;
  // Checkpoint `checkpoint_id` is complete (two-phase sinks commit what it covers).
  virtual void notify_checkpoint_complete(int64_t checkpoint_id) = 0;
  // Records that came too late for every window they belonged to and were dropped, so far.
  virtual int64_t num_late_records_dropped() const = 0;
};

}  // namespace sluice::internal
