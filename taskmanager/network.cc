#include "taskmanager/network.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/internal_tls.h"
#include "proto/data_exchange.grpc.pb.h"
#include "spdlog/spdlog.h"

namespace sluice {

using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// BufferQueue

bool BufferQueue::Push(Buffer b, const std::atomic<bool>* cancelled, BackPressureTime* bp) {
  {
    absl::MutexLock lock(&mu_);
    if (!closed_ && q_.size() >= capacity_) {
      const auto start = std::chrono::steady_clock::now();
      const int64_t start_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count();
      if (bp) bp->since_ns.store(std::max<int64_t>(1, start_ns), std::memory_order_relaxed);
      while (!closed_ && q_.size() >= capacity_) {
        if (cancelled && cancelled->load()) break;
        not_full_.WaitWithTimeout(&mu_, absl::Milliseconds(50));
      }
      if (bp) {
        // The wait ends before it is added: a reader in between counts it short, never twice.
        bp->since_ns.store(0, std::memory_order_relaxed);
        bp->waited_ns.add(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now() - start)
                              .count());
      }
      if (q_.size() >= capacity_ && cancelled && cancelled->load()) return false;
    }
    if (closed_) return false;
    q_.push_back(std::move(b));
    // Under the lock, so that SetListener(nullptr) returns only once no notification is in
    // flight and the listener can be destroyed. Lock order: queue, then gate.
    if (listener_) listener_->NotifyAvailable(channel_);
  }
  not_empty_.Signal();
  return true;
}

std::optional<Buffer> BufferQueue::TryPop() {
  std::optional<Buffer> b;
  {
    absl::MutexLock lock(&mu_);
    if (q_.empty()) return std::nullopt;
    b = std::move(q_.front());
    q_.pop_front();
  }
  not_full_.Signal();
  return b;
}

std::optional<Buffer> BufferQueue::PopWait(std::chrono::milliseconds timeout) {
  std::optional<Buffer> b;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + absl::FromChrono(timeout);
    while (q_.empty() && !closed_) {
      if (not_empty_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
    }
    if (q_.empty()) return b;
    b = std::move(q_.front());
    q_.pop_front();
  }
  not_full_.Signal();
  return b;
}

void BufferQueue::SetListener(AvailabilityListener* listener, int channel) {
  absl::MutexLock lock(&mu_);
  listener_ = listener;
  channel_ = channel;
  if (listener && !q_.empty()) listener->NotifyAvailable(channel);
}

void BufferQueue::Close() {
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    listener_ = nullptr;
  }
  not_full_.SignalAll();
  not_empty_.SignalAll();
}

size_t BufferQueue::Size() {
  absl::MutexLock lock(&mu_);
  return q_.size();
}

bool BufferQueue::closed() {
  absl::MutexLock lock(&mu_);
  return closed_;
}

// ---------------------------------------------------------------------------------------------
// FlushClock

FlushClock::FlushClock(std::chrono::milliseconds period)
    : ticker_("flush-clock", absl::FromChrono(std::max(period, std::chrono::milliseconds(1))),
              [this] { epoch_.fetch_add(1, std::memory_order_relaxed); }) {}

// ---------------------------------------------------------------------------------------------
// ResultPartition

ResultPartition::ResultPartition(std::string id, int num_subpartitions, size_t buffer_size,
                                 size_t queue_capacity, const FlushClock* clock)
    : id_(std::move(id)), open_(num_subpartitions), buffer_size_(buffer_size), clock_(clock) {
  for (int i = 0; i < num_subpartitions; ++i) {
    subpartitions_.push_back(std::make_shared<BufferQueue>(queue_capacity));
    open_[i].reserve(buffer_size_);
  }
  if (clock_) seen_epoch_ = clock_->epoch();
}

void ResultPartition::commit(int channel) {
  pending_ = true;
  if (open_[channel].size() >= buffer_size_) Flush(channel);
  if (clock_ && clock_->epoch() != seen_epoch_) FlushAll();
}

void ResultPartition::Flush(int channel) {
  if (open_[channel].empty()) return;
  Buffer b;
  b.kind = internal::BufferKind::kData;
  b.data = std::move(open_[channel]);
  open_[channel] = std::string();
  open_[channel].reserve(buffer_size_);
  Send(channel, std::move(b));
}

void ResultPartition::FlushAll() {
  if (clock_) seen_epoch_ = clock_->epoch();
  if (!pending_) return;
  for (int c = 0; c < num_channels(); ++c) Flush(c);
  pending_ = false;
}

void ResultPartition::BroadcastEvent(internal::BufferKind kind, int64_t value, int64_t value2,
                                     const std::string& data) {
  FlushAll();
  int end = consumed_end_ < 0 ? num_channels() : consumed_end_;
  for (int c = consumed_begin_; c < end; ++c) {
    Buffer b;
    b.kind = kind;
    b.value = value;
    b.value2 = value2;
    b.data = data;
    Send(c, std::move(b));
  }
}

void ResultPartition::Send(int channel, Buffer b) {
  const size_t bytes = b.kind == internal::BufferKind::kData ? b.data.size() : 0;
  if (!subpartitions_[channel]->Push(std::move(b), cancelled_, &back_pressure_)) {
    throw TaskCancelled();
  }
  bytes_out_.add(static_cast<int64_t>(bytes));
}

double ResultPartition::PoolUsage() const {
  size_t queued = 0, capacity = 0;
  for (const auto& q : subpartitions_) {
    queued += q->Size();
    capacity += q->capacity();
  }
  return capacity == 0 ? 0 : static_cast<double>(queued) / static_cast<double>(capacity);
}

void ResultPartition::Release() {
  for (auto& q : subpartitions_) q->Close();
}

// ---------------------------------------------------------------------------------------------
// PartitionRegistry

void PartitionRegistry::Register(std::shared_ptr<ResultPartition> p) {
  {
    absl::MutexLock lock(&mu_);
    partitions_[p->id()] = std::move(p);
  }
  cv_.SignalAll();
}

absl::StatusOr<std::shared_ptr<BufferQueue>> PartitionRegistry::WaitForSubpartition(
    const std::string& partition_id, int subpartition, std::chrono::milliseconds timeout,
    const std::function<bool()>& cancelled) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  absl::MutexLock lock(&mu_);
  while (true) {
    auto it = partitions_.find(partition_id);
    if (it != partitions_.end()) {
      if (subpartition < 0 || subpartition >= it->second->num_channels()) {
        return absl::InvalidArgumentError(
            absl::StrCat("partition ", partition_id, " has no subpartition ", subpartition));
      }
      return it->second->subpartition(subpartition);
    }
    if (cancelled && cancelled())
      return absl::CancelledError("cancelled while waiting for a partition");
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::NotFoundError(absl::StrCat("result partition ", partition_id, " not found"));
    }
    cv_.WaitWithTimeout(&mu_, absl::Milliseconds(50));
  }
}

void PartitionRegistry::ReleaseJob(const std::string& job_id) {
  std::vector<std::shared_ptr<ResultPartition>> released;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = partitions_.begin(); it != partitions_.end();) {
      if (it->first.rfind(job_id + ".", 0) == 0) {
        released.push_back(it->second);
        it = partitions_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& p : released) p->Release();
}

size_t PartitionRegistry::size() {
  absl::MutexLock lock(&mu_);
  return partitions_.size();
}

// ---------------------------------------------------------------------------------------------
// ChannelCache

std::shared_ptr<grpc::Channel> ChannelCache::Get(const std::string& address) {
  absl::MutexLock lock(&mu_);
  auto& ch = channels_[address];
  if (!ch) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    // Notice a peer that vanished without closing the connection (a pulled cable, a frozen
    // host): ping an idle connection every 10 s and give up after 5 s without an answer.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    ch = grpc::CreateCustomChannel(address, InternalChannelCredentials(), args);
  }
  return ch;
}

// ---------------------------------------------------------------------------------------------
// RemoteInputChannel: one subscription to a remote subpartition.

class RemoteInputChannel {
 public:
  RemoteInputChannel(const InputChannelSpec& spec, std::shared_ptr<grpc::Channel> channel,
                     std::shared_ptr<BufferQueue> queue, size_t credits)
      : spec_(spec),
        stub_(proto::DataExchangeService::NewStub(channel)),
        queue_(std::move(queue)),
        credits_(credits) {
    stream_ = stub_->Subscribe(&ctx_);
    proto::SubscribeRequest first;
    first.set_partition_id(spec_.partition_id);
    first.set_subpartition(spec_.subpartition);
    first.set_credits(static_cast<int>(credits_));
    stream_->Write(first);
    reader_ = std::thread([this] { ReadLoop(); });
  }

  ~RemoteInputChannel() {
    ctx_.TryCancel();
    queue_->Close();
    reader_.join();
  }

  // The task took a buffer of this channel from the queue: grant one more credit.
  void OnConsumed() ABSL_LOCKS_EXCLUDED(write_mu_) {
    absl::MutexLock lock(&write_mu_);
    if (write_closed_) return;
    if (++ungranted_ < std::max<size_t>(1, credits_ / 2)) return;
    proto::SubscribeRequest more;
    more.set_credits(static_cast<int>(ungranted_));
    ungranted_ = 0;
    if (!stream_->Write(more)) write_closed_ = true;
  }

 private:
  void ReadLoop() ABSL_LOCKS_EXCLUDED(write_mu_) {
    proto::NetworkBuffer msg;
    bool ended = false;
    while (stream_->Read(&msg)) {
      Buffer b;
      b.kind = static_cast<internal::BufferKind>(msg.kind());
      b.data = std::move(*msg.mutable_data());
      b.value = msg.value();
      b.value2 = msg.value2();
      ended = b.kind == internal::BufferKind::kEndOfPartition;
      if (!queue_->Push(std::move(b), nullptr)) return;  // closed: the task is gone
      if (ended) break;
    }
    {
      absl::MutexLock lock(&write_mu_);
      write_closed_ = true;
      stream_->WritesDone();
    }
    grpc::Status status = stream_->Finish();
    if (ended && status.ok()) return;
    if (queue_->closed()) return;
    Buffer err;
    err.kind = kChannelError;
    err.data = absl::StrCat("lost connection to TaskManager ", spec_.producer_tm_id, " at ",
                            spec_.producer_address, " while reading partition ", spec_.partition_id,
                            ": ", status.ok() ? "stream ended early" : status.error_message());
    queue_->Push(std::move(err), nullptr);
  }

  InputChannelSpec spec_;
  std::unique_ptr<proto::DataExchangeService::Stub> stub_;
  grpc::ClientContext ctx_;
  // Read by the reader thread alone; written (credits, then WritesDone) under write_mu_ only.
  std::unique_ptr<grpc::ClientReaderWriter<proto::SubscribeRequest, proto::NetworkBuffer>> stream_;
  std::shared_ptr<BufferQueue> queue_;
  size_t credits_;
  absl::Mutex write_mu_;
  size_t ungranted_ ABSL_GUARDED_BY(write_mu_) = 0;
  bool write_closed_ ABSL_GUARDED_BY(write_mu_) = false;
  std::thread reader_;
};

// ---------------------------------------------------------------------------------------------
// InputGate

absl::StatusOr<std::unique_ptr<InputGate>> InputGate::Create(
    const std::vector<InputChannelSpec>& specs, PartitionRegistry& registry, ChannelCache& channels,
    size_t credits, const std::atomic<bool>* cancelled) {
  std::unique_ptr<InputGate> gate(new InputGate());
  gate->channels_.resize(specs.size());
  {
    absl::MutexLock lock(&gate->mu_);
    gate->queued_.assign(specs.size(), 0);
  }
  gate->blocked_.assign(specs.size(), 0);
  for (size_t i = 0; i < specs.size(); ++i) {
    Channel& ch = gate->channels_[i];
    ch.spec = specs[i];
    if (ch.spec.local) {
      auto q = registry.WaitForSubpartition(ch.spec.partition_id, ch.spec.subpartition, 60s,
                                            [cancelled] { return cancelled->load(); });
      if (!q.ok()) return q.status();
      ch.queue = *q;
    } else {
      ch.queue = std::make_shared<BufferQueue>(credits + 1);
      ch.remote = std::make_unique<RemoteInputChannel>(
          ch.spec, channels.Get(ch.spec.producer_address), ch.queue, credits);
    }
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    gate->channels_[i].queue->SetListener(gate.get(), static_cast<int>(i));
  }
  return gate;
}

InputGate::~InputGate() {
  for (auto& ch : channels_) {
    if (ch.spec.local) {
      if (ch.queue) ch.queue->SetListener(nullptr, 0);  // null when Create failed before it
    } else {
      ch.remote.reset();
    }
  }
}

void InputGate::NotifyAvailable(int channel) {
  {
    absl::MutexLock lock(&mu_);
    if (queued_[channel]) return;
    queued_[channel] = 1;
    ready_.push_back(channel);
  }
  cv_.Signal();
}

void InputGate::MarkFinished(int channel) {
  Channel& ch = channels_[channel];
  if (ch.finished) return;
  ch.finished = true;
  ++finished_count_;
}

void InputGate::Block(int channel) { blocked_[channel] = 1; }

void InputGate::UnblockAll() {
  for (size_t c = 0; c < blocked_.size(); ++c) {
    if (!blocked_[c]) continue;
    blocked_[c] = 0;
    if (channels_[c].queue->Size() > 0) NotifyAvailable(static_cast<int>(c));
  }
}

std::vector<std::shared_ptr<BufferQueue>> InputGate::queues() const {
  std::vector<std::shared_ptr<BufferQueue>> out;
  for (const Channel& ch : channels_) out.push_back(ch.queue);
  return out;
}

std::optional<InputGate::Next> InputGate::Poll(std::chrono::milliseconds timeout) {
  while (true) {
    int c;
    {
      absl::MutexLock lock(&mu_);
      if (ready_.empty()) {
        const auto start = std::chrono::steady_clock::now();
        const absl::Time deadline = absl::Now() + absl::FromChrono(timeout);
        bool timed_out = false;
        while (ready_.empty() && !timed_out) {
          timed_out = cv_.WaitWithDeadline(&mu_, deadline) && ready_.empty();
        }
        if (idle_ns_) {
          idle_ns_->add(std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count());
        }
        if (timed_out) return std::nullopt;
      }
      c = ready_.front();
      ready_.pop_front();
      queued_[c] = 0;
    }
    if (blocked_[c]) continue;  // UnblockAll() queues it again
    Channel& ch = channels_[c];
    std::optional<Buffer> b = ch.queue->TryPop();
    if (!b) continue;
    if (ch.queue->Size() > 0) NotifyAvailable(c);
    if (ch.remote) ch.remote->OnConsumed();
    if (bytes_in_ && b->kind == internal::BufferKind::kData) {
      bytes_in_->add(static_cast<int64_t>(b->data.size()));
    }
    return Next{c, ch.spec.input, std::move(*b)};
  }
}

// ---------------------------------------------------------------------------------------------
// DataExchangeServer

class DataExchangeServerImpl final : public DataExchangeServer,
                                     public proto::DataExchangeService::Service {
 public:
  explicit DataExchangeServerImpl(PartitionRegistry& registry) : registry_(registry) {}

  grpc::Service* service() override { return this; }
  void Shutdown() override { shutting_down_.store(true); }

  grpc::Status Subscribe(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<proto::NetworkBuffer, proto::SubscribeRequest>* stream) override {
    proto::SubscribeRequest req;
    if (!stream->Read(&req)) return grpc::Status(grpc::StatusCode::CANCELLED, "no request");
    const std::string partition_id = req.partition_id();
    int64_t credits = req.credits();
    auto gone = [&] { return ctx->IsCancelled() || shutting_down_.load(); };
    auto queue = registry_.WaitForSubpartition(partition_id, req.subpartition(), 60s, gone);
    if (!queue.ok()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, std::string(queue.status().message()));
    }
    proto::NetworkBuffer msg;
    while (true) {
      while (credits <= 0) {
        if (!stream->Read(&req)) return grpc::Status(grpc::StatusCode::CANCELLED, "consumer left");
        credits += req.credits();
      }
      std::optional<Buffer> b = (*queue)->PopWait(100ms);
      if (!b) {
        if (gone()) return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
        if ((*queue)->closed()) {
          return grpc::Status(grpc::StatusCode::ABORTED, "partition " + partition_id + " released");
        }
        continue;
      }
      msg.set_kind(static_cast<int32_t>(b->kind));
      msg.set_data(std::move(b->data));
      msg.set_value(b->value);
      msg.set_value2(b->value2);
      if (!stream->Write(msg)) return grpc::Status(grpc::StatusCode::CANCELLED, "consumer left");
      --credits;
      if (b->kind == internal::BufferKind::kEndOfPartition) return grpc::Status::OK;
    }
  }

 private:
  PartitionRegistry& registry_;
  std::atomic<bool> shutting_down_{false};
};

std::unique_ptr<DataExchangeServer> NewDataExchangeServer(PartitionRegistry& registry) {
  return std::make_unique<DataExchangeServerImpl>(registry);
}

}  // namespace sluice
