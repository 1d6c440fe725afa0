// The TaskManager's network stack.
//
// A producer subtask writes each output edge into a ResultPartition: one bounded BufferQueue
// (subpartition) per consumer subtask. A consumer subtask reads through an InputGate with one
// channel per producer subtask it is connected to:
//   - a local channel reads the producer's subpartition queue directly (same TaskManager);
//   - a remote channel subscribes to the subpartition over a gRPC stream (DataExchangeService)
//     and grants credits: the producer sends one buffer per credit, and the consumer grants a
//     credit back for every buffer the task has taken. Memory between a producer and a consumer
//     is therefore bounded by the queue capacities plus the credits in flight, and a slow
//     consumer stops its producers (back-pressure) without unbounded buffering.
// Buffers are flushed when full, on in-band events, and after execution.buffer-timeout.
//
// Threads: a queue is pushed by one thread and popped by one other. An InputGate is read only
// by its task's thread; each remote channel has one reader thread of its own.
// Locks: a queue calls its listening gate under the queue's lock, so a BufferQueue's lock is
// taken before an InputGate's, never the reverse.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/periodic_thread.h"
#include "sluice/internal/runtime.h"

namespace grpc {
class Channel;
class ClientContext;
class Service;
}  // namespace grpc

namespace sluice {

// Internal buffer kinds beyond the wire's BufferKind; never sent over the network.
inline constexpr internal::BufferKind kChannelError = static_cast<internal::BufferKind>(-1);

struct Buffer {
  internal::BufferKind kind = internal::BufferKind::kData;
  std::string data;  // serialized records, or the error message for kChannelError
  int64_t value = 0;
  int64_t value2 = 0;
};

// Told when a queue it listens to may have something to read.
class AvailabilityListener {
 public:
  virtual ~AvailabilityListener() = default;
  virtual void NotifyAvailable(int channel) = 0;
};

// How long a writer has waited for room (back-pressure), for metrics: written by the writer's
// thread, read by any.
struct BackPressureTime {
  internal::SingleWriterCounter waited_ns;  // waits that have ended, in total
  std::atomic<int64_t> since_ns{0};         // the start of the wait going on (steady clock), or 0
  bool waiting() const { return since_ns.load(std::memory_order_relaxed) != 0; }
  // Every wait so far, the one going on included (so that a writer blocked for minutes shows as
  // back-pressured all that time, not once it is let go).
  int64_t TotalNs() const {
    const int64_t since = since_ns.load(std::memory_order_relaxed);
    const int64_t done = waited_ns.get();
    if (since == 0) return done;
    return done + std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::steady_clock::now().time_since_epoch())
                                               .count() -
                                           since);
  }
};

// A bounded FIFO of buffers between one writer thread and one reader thread.
class BufferQueue {
 public:
  explicit BufferQueue(size_t capacity) : capacity_(capacity) {}

  // Appends `b`, blocking while the queue is full (the wait is added to `bp` when given).
  // Returns false, dropping `b`, if the queue is closed or `cancelled` becomes true while
  // waiting.
  bool Push(Buffer b, const std::atomic<bool>* cancelled, BackPressureTime* bp = nullptr)
      ABSL_LOCKS_EXCLUDED(mu_);
  size_t capacity() const { return capacity_; }
  // Removes the oldest buffer, if any; never blocks.
  std::optional<Buffer> TryPop() ABSL_LOCKS_EXCLUDED(mu_);
  // Removes the oldest buffer, waiting up to `timeout` for one. Empty on timeout or close.
  std::optional<Buffer> PopWait(std::chrono::milliseconds timeout) ABSL_LOCKS_EXCLUDED(mu_);
  // From now on, `listener` is told (with `channel`) whenever a buffer arrives; told at once if
  // the queue already holds one. Notifications happen under the queue's lock: after
  // SetListener(nullptr) returns, the old listener is never called again.
  void SetListener(AvailabilityListener* listener, int channel) ABSL_LOCKS_EXCLUDED(mu_);
  // Wakes all waiters; later pushes fail.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);
  size_t Size() ABSL_LOCKS_EXCLUDED(mu_);
  bool closed() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class InputGate;  // names mu_ in its lock order

  absl::Mutex mu_;
  absl::CondVar not_full_;
  absl::CondVar not_empty_;
  std::deque<Buffer> q_ ABSL_GUARDED_BY(mu_);
  const size_t capacity_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  AvailabilityListener* listener_ ABSL_GUARDED_BY(mu_) = nullptr;
  int channel_ ABSL_GUARDED_BY(mu_) = 0;
};

// Advances every execution.buffer-timeout; writers flush when they see it move.
class FlushClock {
 public:
  explicit FlushClock(std::chrono::milliseconds period);
  uint64_t epoch() const { return epoch_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> epoch_{0};
  PeriodicThread ticker_;  // last: stopped before epoch_ goes
};

// The output of one producer subtask on one edge: a RecordWriter over its subpartitions.
class ResultPartition final : public internal::RecordWriter {
 public:
  ResultPartition(std::string id, int num_subpartitions, size_t buffer_size, size_t queue_capacity,
                  const FlushClock* clock);

  const std::string& id() const { return id_; }
  std::shared_ptr<BufferQueue> subpartition(int i) const { return subpartitions_.at(i); }
  // The task whose writes may block here; its cancel flag aborts a blocked push.
  void set_cancel_flag(const std::atomic<bool>* cancelled) { cancelled_ = cancelled; }
  // Only subpartitions [begin, end) have a consumer (a forward or rescale edge: the others belong
  // to other producers' consumers); events go to those alone, so that no queue fills up unread.
  void set_consumed_range(int begin, int end) {
    consumed_begin_ = begin;
    consumed_end_ = end;
  }

  // RecordWriter
  int num_channels() const override { return static_cast<int>(subpartitions_.size()); }
  std::string& buffer(int channel) override { return open_[channel]; }
  void commit(int channel) override;
  void emit_watermark(int64_t watermark) override {
    BroadcastEvent(internal::BufferKind::kWatermark, watermark);
    last_watermark_.store(watermark, std::memory_order_relaxed);
  }
  // The last watermark sent (kMinWatermark before the first). Safe from any thread.
  int64_t last_watermark() const { return last_watermark_.load(std::memory_order_relaxed); }
  void emit_watermark_status(bool idle) override {
    BroadcastEvent(internal::BufferKind::kWatermarkStatus, idle ? 1 : 0);
  }

  // Sends every non-empty open buffer.
  void FlushAll();
  // Flushes, then sends the event on every subpartition.
  void BroadcastEvent(internal::BufferKind kind, int64_t value = 0, int64_t value2 = 0,
                      const std::string& data = {});
  // Closes every subpartition queue (job released or cancelled).
  void Release();
  bool has_pending() const { return pending_; }

  // For metrics, from any thread: bytes of records sent, time waited for room, and how full the
  // subpartition queues are (0 to 1, buffers queued over capacity).
  int64_t bytes_out() const { return bytes_out_.get(); }
  const BackPressureTime& back_pressure() const { return back_pressure_; }
  double PoolUsage() const;

 private:
  void Flush(int channel);
  void Send(int channel, Buffer b);

  std::string id_;
  std::vector<std::shared_ptr<BufferQueue>> subpartitions_;
  std::vector<std::string> open_;
  std::atomic<int64_t> last_watermark_{kMinWatermark};
  int consumed_begin_ = 0;
  int consumed_end_ = -1;  // -1: every subpartition
  size_t buffer_size_;
  const FlushClock* clock_;
  uint64_t seen_epoch_ = 0;
  bool pending_ = false;  // some open buffer holds data
  const std::atomic<bool>* cancelled_ = nullptr;
  internal::SingleWriterCounter bytes_out_;
  BackPressureTime back_pressure_;
};

// The result partitions of this TaskManager, by id, for local consumers and remote subscribers.
class PartitionRegistry {
 public:
  void Register(std::shared_ptr<ResultPartition> p) ABSL_LOCKS_EXCLUDED(mu_);
  // Waits up to `timeout` for the partition to be registered; NotFound after that, Cancelled if
  // `cancelled()` turns true first.
  absl::StatusOr<std::shared_ptr<BufferQueue>> WaitForSubpartition(
      const std::string& partition_id, int subpartition, std::chrono::milliseconds timeout,
      const std::function<bool()>& cancelled) ABSL_LOCKS_EXCLUDED(mu_);
  // Releases and forgets every partition of the job (ids "<job_id>.…").
  void ReleaseJob(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_);
  size_t size() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::map<std::string, std::shared_ptr<ResultPartition>> partitions_ ABSL_GUARDED_BY(mu_);
};

// Connections to other TaskManagers, one gRPC channel per address.
class ChannelCache {
 public:
  std::shared_ptr<grpc::Channel> Get(const std::string& address) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
};

struct InputChannelSpec {
  int input = 0;  // the head operator's input this channel feeds
  std::string partition_id;
  int subpartition = 0;
  bool local = true;
  std::string producer_address;
  std::string producer_tm_id;
};

class RemoteInputChannel;

// All input channels of one consumer subtask.
class InputGate final : public AvailabilityListener {
 public:
  struct Next {
    int channel;
    int input;
    Buffer buffer;
  };

  // Connects every channel: local ones to the registry's queues, remote ones by subscribing.
  // Fails when a partition does not appear in time or the task is cancelled.
  static absl::StatusOr<std::unique_ptr<InputGate>> Create(
      const std::vector<InputChannelSpec>& specs, PartitionRegistry& registry,
      ChannelCache& channels, size_t credits, const std::atomic<bool>* cancelled);
  ~InputGate() override;

  // The next buffer from any channel, waiting up to `timeout`. After a channel delivers
  // kEndOfPartition it is finished and delivers nothing more.
  std::optional<Next> Poll(std::chrono::milliseconds timeout) ABSL_LOCKS_EXCLUDED(mu_);
  bool AllFinished() const { return finished_count_ == channels_.size(); }
  void MarkFinished(int channel);
  bool finished(int channel) const { return channels_[channel].finished; }
  // Counts the time Poll() waits for a buffer (metrics: idle time), and the bytes of the data
  // buffers it returns. Before the first Poll().
  void set_counters(internal::SingleWriterCounter* idle_ns, internal::SingleWriterCounter* bytes) {
    idle_ns_ = idle_ns;
    bytes_in_ = bytes;
  }
  // The queues of the channels, for a gauge of how full they are (shared: the gate may go first).
  std::vector<std::shared_ptr<BufferQueue>> queues() const;
  // A blocked channel delivers nothing until UnblockAll(); its buffers wait in its queue (and,
  // for a remote channel, its producer runs out of credits). For checkpoint barrier alignment.
  void Block(int channel);
  void UnblockAll() ABSL_LOCKS_EXCLUDED(mu_);
  size_t num_channels() const { return channels_.size(); }

  // Called by the channels' queues under their locks.
  void NotifyAvailable(int channel) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Channel {
    InputChannelSpec spec;
    std::shared_ptr<BufferQueue> queue;
    std::unique_ptr<RemoteInputChannel> remote;
    bool finished = false;
  };
  InputGate() = default;

  // Set up by Create(), then task thread only.
  std::vector<Channel> channels_;
  size_t finished_count_ = 0;
  std::vector<char> blocked_;
  internal::SingleWriterCounter* idle_ns_ = nullptr;
  internal::SingleWriterCounter* bytes_in_ = nullptr;

  absl::Mutex mu_ ABSL_ACQUIRED_AFTER(BufferQueue::mu_);
  absl::CondVar cv_;
  std::deque<int> ready_ ABSL_GUARDED_BY(mu_);     // channels that may have a buffer, each once
  std::vector<char> queued_ ABSL_GUARDED_BY(mu_);  // by channel: in ready_
};

// The DataExchangeService, which serves this TaskManager's subpartitions to remote consumers.
class DataExchangeServer {
 public:
  virtual ~DataExchangeServer() = default;
  // The gRPC service to register with the TaskManager's server.
  virtual grpc::Service* service() = 0;
  // Ends the streams being served.
  virtual void Shutdown() = 0;
};
std::unique_ptr<DataExchangeServer> NewDataExchangeServer(PartitionRegistry& registry);

}  // namespace sluice
