// The TaskManager's network stack: bounded buffer queues, result partitions, the partition
// registry, input gates over local channels, and credit-based flow control over a real loopback
// gRPC DataExchangeService.
#include "taskmanager/network.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sluice/serializer.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

Buffer Data(std::string bytes) {
  Buffer b;
  b.kind = internal::BufferKind::kData;
  b.data = std::move(bytes);
  return b;
}

// Appends one int64 record to `channel` and commits it.
void WriteRecord(ResultPartition& p, int channel, int64_t v) {
  DataOutput out(p.buffer(channel));
  Serializer<int64_t>::write(out, v);
  p.commit(channel);
}

std::vector<int64_t> Records(const std::string& bytes) {
  std::vector<int64_t> out;
  DataInput in(bytes);
  while (!in.at_end()) {
    int64_t v;
    Serializer<int64_t>::read(in, v);
    out.push_back(v);
  }
  return out;
}

// Everything in a queue, without waiting.
std::vector<Buffer> Drain(BufferQueue& q) {
  std::vector<Buffer> out;
  while (auto b = q.TryPop()) out.push_back(std::move(*b));
  return out;
}

class RecordingListener final : public AvailabilityListener {
 public:
  void NotifyAvailable(int channel) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back(channel);
  }
  std::vector<int> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::vector<int> calls_;
};

// ---------------------------------------------------------------------------------------------
// BufferQueue

TEST(BufferQueueTest, FifoUpToCapacity) {
  BufferQueue q(3);
  EXPECT_TRUE(q.Push(Data("a"), nullptr));
  EXPECT_TRUE(q.Push(Data("b"), nullptr));
  EXPECT_TRUE(q.Push(Data("c"), nullptr));
  EXPECT_EQ(q.Size(), 3u);
  EXPECT_EQ(q.TryPop()->data, "a");
  EXPECT_EQ(q.TryPop()->data, "b");
  EXPECT_TRUE(q.Push(Data("d"), nullptr));
  EXPECT_EQ(q.TryPop()->data, "c");
  EXPECT_EQ(q.TryPop()->data, "d");
  EXPECT_FALSE(q.TryPop().has_value());
  EXPECT_EQ(q.Size(), 0u);
  EXPECT_FALSE(q.closed());
}

TEST(BufferQueueTest, EventsKeepTheirKindAndValues) {
  BufferQueue q(2);
  Buffer b;
  b.kind = internal::BufferKind::kBarrier;
  b.value = 12;
  b.value2 = 34;
  ASSERT_TRUE(q.Push(b, nullptr));
  auto got = q.TryPop();
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->kind, internal::BufferKind::kBarrier);
  EXPECT_EQ(got->value, 12);
  EXPECT_EQ(got->value2, 34);
}

TEST(BufferQueueTest, PushBlocksWhileFullUntilAPop) {
  BufferQueue q(2);
  ASSERT_TRUE(q.Push(Data("1"), nullptr));
  ASSERT_TRUE(q.Push(Data("2"), nullptr));
  auto pushed = std::async(std::launch::async, [&] { return q.Push(Data("3"), nullptr); });
  EXPECT_EQ(pushed.wait_for(150ms), std::future_status::timeout)
      << "push into a full queue returned";
  EXPECT_EQ(q.Size(), 2u);
  EXPECT_EQ(q.TryPop()->data, "1");
  ASSERT_EQ(pushed.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(pushed.get());
  EXPECT_EQ(q.Size(), 2u);
  EXPECT_EQ(q.TryPop()->data, "2");
  EXPECT_EQ(q.TryPop()->data, "3");
}

TEST(BufferQueueTest, PopWaitAlsoFreesRoom) {
  BufferQueue q(1);
  ASSERT_TRUE(q.Push(Data("1"), nullptr));
  auto pushed = std::async(std::launch::async, [&] { return q.Push(Data("2"), nullptr); });
  EXPECT_EQ(pushed.wait_for(100ms), std::future_status::timeout);
  EXPECT_EQ(q.PopWait(1s)->data, "1");
  ASSERT_EQ(pushed.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(pushed.get());
}

TEST(BufferQueueTest, PopWaitTimesOutOrWakesOnPush) {
  BufferQueue q(4);
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(q.PopWait(60ms).has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);

  std::thread pusher([&] {
    std::this_thread::sleep_for(50ms);
    q.Push(Data("late"), nullptr);
  });
  start = std::chrono::steady_clock::now();
  auto b = q.PopWait(10s);
  pusher.join();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->data, "late");
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(BufferQueueTest, CloseWakesABlockedPushAndLaterPushesFail) {
  BufferQueue q(1);
  ASSERT_TRUE(q.Push(Data("kept"), nullptr));
  auto pushed = std::async(std::launch::async, [&] { return q.Push(Data("dropped"), nullptr); });
  EXPECT_EQ(pushed.wait_for(100ms), std::future_status::timeout);
  q.Close();
  ASSERT_EQ(pushed.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(pushed.get());
  EXPECT_TRUE(q.closed());
  EXPECT_FALSE(q.Push(Data("after"), nullptr));
  // What was queued before the close can still be read; then PopWait returns at once.
  EXPECT_EQ(q.Size(), 1u);
  EXPECT_EQ(q.PopWait(1s)->data, "kept");
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(q.PopWait(10s).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(BufferQueueTest, CloseWakesABlockedPopWait) {
  BufferQueue q(1);
  auto popped = std::async(std::launch::async, [&] { return q.PopWait(20s); });
  EXPECT_EQ(popped.wait_for(100ms), std::future_status::timeout);
  q.Close();
  ASSERT_EQ(popped.wait_for(5s), std::future_status::ready);
  EXPECT_FALSE(popped.get().has_value());
}

TEST(BufferQueueTest, CancelFlagAbortsABlockedPush) {
  BufferQueue q(1);
  ASSERT_TRUE(q.Push(Data("1"), nullptr));

  std::atomic<bool> already{true};
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(q.Push(Data("2"), &already));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);

  std::atomic<bool> cancelled{false};
  auto pushed = std::async(std::launch::async, [&] { return q.Push(Data("3"), &cancelled); });
  EXPECT_EQ(pushed.wait_for(150ms), std::future_status::timeout);
  cancelled.store(true);
  ASSERT_EQ(pushed.wait_for(5s), std::future_status::ready) << "cancel flag not noticed";
  EXPECT_FALSE(pushed.get());
  EXPECT_EQ(q.Size(), 1u);
  EXPECT_FALSE(q.closed());

  // The flag only matters while the queue is full.
  EXPECT_EQ(q.TryPop()->data, "1");
  EXPECT_TRUE(q.Push(Data("4"), &already));
}

TEST(BufferQueueTest, ListenerIsToldOfArrivals) {
  BufferQueue q(4);
  RecordingListener listener;
  q.SetListener(&listener, 7);
  EXPECT_TRUE(listener.calls().empty()) << "told of an empty queue";
  q.Push(Data("a"), nullptr);
  q.Push(Data("b"), nullptr);
  EXPECT_THAT(listener.calls(), ElementsAre(7, 7));

  // A listener set on a queue that holds data is told at once.
  RecordingListener late;
  q.SetListener(&late, 3);
  EXPECT_THAT(late.calls(), ElementsAre(3));
  EXPECT_EQ(listener.calls().size(), 2u);

  q.SetListener(nullptr, 0);
  q.Push(Data("c"), nullptr);
  EXPECT_THAT(late.calls(), ElementsAre(3));
}

// ---------------------------------------------------------------------------------------------
// ResultPartition

TEST(ResultPartitionTest, FlushesABufferWhenItFills) {
  ResultPartition p("job-a/v0/s0", 2, /*buffer_size=*/16, /*queue_capacity=*/8, nullptr);
  EXPECT_EQ(p.num_channels(), 2);
  EXPECT_EQ(p.id(), "job-a/v0/s0");
  EXPECT_FALSE(p.has_pending());

  WriteRecord(p, 0, 1);
  EXPECT_TRUE(p.has_pending());
  EXPECT_EQ(p.subpartition(0)->Size(), 0u) << "flushed before full";
  WriteRecord(p, 0, 2);  // 16 bytes: full
  ASSERT_EQ(p.subpartition(0)->Size(), 1u);
  WriteRecord(p, 0, 3);
  EXPECT_EQ(p.subpartition(0)->Size(), 1u);
  EXPECT_EQ(p.subpartition(1)->Size(), 0u);
  EXPECT_EQ(p.buffer(0).size(), 8u);

  auto b = p.subpartition(0)->TryPop();
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->kind, internal::BufferKind::kData);
  EXPECT_THAT(Records(b->data), ElementsAre(1, 2));
}

TEST(ResultPartitionTest, FlushAllSendsEveryPartlyFilledBuffer) {
  ResultPartition p("job-a/v0/s1", 3, 1024, 8, nullptr);
  WriteRecord(p, 0, 10);
  WriteRecord(p, 2, 20);
  WriteRecord(p, 2, 21);
  EXPECT_EQ(p.subpartition(0)->Size(), 0u);
  p.FlushAll();
  EXPECT_FALSE(p.has_pending());
  auto c0 = Drain(*p.subpartition(0));
  auto c1 = Drain(*p.subpartition(1));
  auto c2 = Drain(*p.subpartition(2));
  ASSERT_EQ(c0.size(), 1u);
  EXPECT_THAT(Records(c0[0].data), ElementsAre(10));
  EXPECT_TRUE(c1.empty()) << "empty buffer sent";
  ASSERT_EQ(c2.size(), 1u);
  EXPECT_THAT(Records(c2[0].data), ElementsAre(20, 21));
  EXPECT_TRUE(p.buffer(0).empty());

  p.FlushAll();  // nothing new
  EXPECT_EQ(p.subpartition(0)->Size(), 0u);
  EXPECT_EQ(p.subpartition(2)->Size(), 0u);
}

TEST(ResultPartitionTest, BroadcastEventFollowsTheDataOnEverySubpartition) {
  ResultPartition p("job-a/v0/s2", 2, 1024, 8, nullptr);
  WriteRecord(p, 0, 5);
  WriteRecord(p, 0, 6);
  p.BroadcastEvent(internal::BufferKind::kWatermark, 1000);
  WriteRecord(p, 1, 7);
  p.BroadcastEvent(internal::BufferKind::kBarrier, 3, 99);
  p.BroadcastEvent(internal::BufferKind::kEndOfPartition);

  auto c0 = Drain(*p.subpartition(0));
  ASSERT_EQ(c0.size(), 4u);
  EXPECT_EQ(c0[0].kind, internal::BufferKind::kData);
  EXPECT_THAT(Records(c0[0].data), ElementsAre(5, 6));
  EXPECT_EQ(c0[1].kind, internal::BufferKind::kWatermark);
  EXPECT_EQ(c0[1].value, 1000);
  EXPECT_EQ(c0[2].kind, internal::BufferKind::kBarrier);
  EXPECT_EQ(c0[2].value, 3);
  EXPECT_EQ(c0[2].value2, 99);
  EXPECT_EQ(c0[3].kind, internal::BufferKind::kEndOfPartition);

  auto c1 = Drain(*p.subpartition(1));
  ASSERT_EQ(c1.size(), 4u);
  EXPECT_EQ(c1[0].kind, internal::BufferKind::kWatermark);
  EXPECT_EQ(c1[1].kind, internal::BufferKind::kData);
  EXPECT_THAT(Records(c1[1].data), ElementsAre(7));
  EXPECT_EQ(c1[2].kind, internal::BufferKind::kBarrier);
  EXPECT_EQ(c1[3].kind, internal::BufferKind::kEndOfPartition);
}

TEST(ResultPartitionTest, BufferTimeoutFlushesOnTheNextCommit) {
  FlushClock clock(1ms);
  ResultPartition p("job-a/v0/s3", 1, 1 << 20, 8, &clock);
  WriteRecord(p, 0, 1);
  std::this_thread::sleep_for(30ms);  // the clock advances
  WriteRecord(p, 0, 2);
  // Both records have left the open buffer, though it is far from full.
  EXPECT_TRUE(p.buffer(0).empty());
  std::vector<int64_t> sent;
  for (const Buffer& b : Drain(*p.subpartition(0))) {
    for (int64_t v : Records(b.data)) sent.push_back(v);
  }
  EXPECT_THAT(sent, ElementsAre(1, 2));
}

TEST(ResultPartitionTest, WithoutAClockPartialBuffersWaitForAFlush) {
  ResultPartition p("job-a/v0/s4", 1, 1 << 20, 8, nullptr);
  WriteRecord(p, 0, 1);
  std::this_thread::sleep_for(20ms);
  WriteRecord(p, 0, 2);
  EXPECT_EQ(p.subpartition(0)->Size(), 0u);
  EXPECT_EQ(p.buffer(0).size(), 16u);
}

TEST(ResultPartitionTest, ReleaseClosesTheQueuesAndLaterSendsThrowTaskCancelled) {
  ResultPartition p("job-a/v0/s5", 2, 8, 4, nullptr);
  WriteRecord(p, 0, 1);
  p.Release();
  EXPECT_TRUE(p.subpartition(0)->closed());
  EXPECT_TRUE(p.subpartition(1)->closed());
  EXPECT_THROW(WriteRecord(p, 0, 2), TaskCancelled);
}

TEST(ResultPartitionTest, CancelFlagAbortsAWriteBlockedOnAFullQueue) {
  ResultPartition p("job-a/v0/s6", 1, 8, 1, nullptr);
  std::atomic<bool> cancelled{false};
  p.set_cancel_flag(&cancelled);
  WriteRecord(p, 0, 1);  // fills the queue
  auto blocked = std::async(std::launch::async, [&] { WriteRecord(p, 0, 2); });
  EXPECT_EQ(blocked.wait_for(150ms), std::future_status::timeout)
      << "write to a full queue returned";
  cancelled.store(true);
  ASSERT_EQ(blocked.wait_for(5s), std::future_status::ready);
  EXPECT_THROW(blocked.get(), TaskCancelled);
}

// ---------------------------------------------------------------------------------------------
// PartitionRegistry

TEST(PartitionRegistryTest, WaitForSubpartition) {
  PartitionRegistry registry;
  auto never = [] { return false; };

  auto missing = registry.WaitForSubpartition("job-x/p", 0, 50ms, never);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("job-x/p"));

  auto cancelled = registry.WaitForSubpartition("job-x/p", 0, 10s, [] { return true; });
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled);

  auto p = std::make_shared<ResultPartition>("job-x/p", 2, 64, 4, nullptr);
  std::thread registrar([&] {
    std::this_thread::sleep_for(80ms);
    registry.Register(p);
  });
  auto q = registry.WaitForSubpartition("job-x/p", 1, 10s, never);
  registrar.join();
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->get(), p->subpartition(1).get());

  auto bad = registry.WaitForSubpartition("job-x/p", 2, 10s, never);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(registry.WaitForSubpartition("job-x/p", -1, 10s, never).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PartitionRegistryTest, ReleaseJobReleasesOnlyThatJobsPartitions) {
  // Partition ids are "<job>.e<edge>.s<subtask>.a<attempt>"; a job whose id is a prefix of
  // another's keeps its partitions.
  PartitionRegistry registry;
  auto a0 = std::make_shared<ResultPartition>("jobA.e0.s0.a0", 1, 64, 4, nullptr);
  auto a1 = std::make_shared<ResultPartition>("jobA.e1.s0.a0", 1, 64, 4, nullptr);
  auto b0 = std::make_shared<ResultPartition>("jobB.e0.s0.a0", 1, 64, 4, nullptr);
  auto ab = std::make_shared<ResultPartition>("jobAB.e0.s0.a0", 1, 64, 4, nullptr);
  registry.Register(a0);
  registry.Register(a1);
  registry.Register(b0);
  registry.Register(ab);
  EXPECT_EQ(registry.size(), 4u);
  registry.ReleaseJob("jobA");
  EXPECT_EQ(registry.size(), 2u);
  EXPECT_TRUE(a0->subpartition(0)->closed());
  EXPECT_TRUE(a1->subpartition(0)->closed());
  EXPECT_FALSE(b0->subpartition(0)->closed());
  EXPECT_FALSE(ab->subpartition(0)->closed());
  EXPECT_EQ(
      registry.WaitForSubpartition("jobA.e0.s0.a0", 0, 10ms, [] { return false; }).status().code(),
      absl::StatusCode::kNotFound);
  EXPECT_TRUE(registry.WaitForSubpartition("jobB.e0.s0.a0", 0, 10ms, [] { return false; }).ok());
  EXPECT_TRUE(registry.WaitForSubpartition("jobAB.e0.s0.a0", 0, 10ms, [] { return false; }).ok());
}

// ---------------------------------------------------------------------------------------------
// InputGate over local channels

TEST(InputGateTest, LocalChannelsDeliverEveryBufferInOrderThenEndOfPartition) {
  constexpr int kProducers = 3;
  constexpr int64_t kRecords = 300;
  PartitionRegistry registry;
  ChannelCache channels;
  std::vector<std::shared_ptr<ResultPartition>> partitions;
  std::vector<InputChannelSpec> specs;
  for (int i = 0; i < kProducers; ++i) {
    // Each producer has two consumers; this gate is consumer 1. Small queues force blocking.
    partitions.push_back(std::make_shared<ResultPartition>("job-l/v0/s" + std::to_string(i), 2,
                                                           /*buffer_size=*/8, /*capacity=*/2,
                                                           nullptr));
    InputChannelSpec spec;
    spec.input = i == 2 ? 1 : 0;
    spec.partition_id = partitions.back()->id();
    spec.subpartition = 1;
    spec.local = true;
    specs.push_back(spec);
  }
  registry.Register(partitions[0]);
  registry.Register(partitions[1]);
  // The third registers late: Create waits for it.
  std::thread late([&] {
    std::this_thread::sleep_for(100ms);
    registry.Register(partitions[2]);
  });
  std::atomic<bool> cancelled{false};
  auto gate = InputGate::Create(specs, registry, channels, 4, &cancelled);
  late.join();
  ASSERT_TRUE(gate.ok()) << gate.status();
  ASSERT_EQ((*gate)->num_channels(), 3u);

  std::vector<std::thread> producers;
  for (int i = 0; i < kProducers; ++i) {
    producers.emplace_back([&, i] {
      for (int64_t r = 0; r < kRecords; ++r) WriteRecord(*partitions[i], 1, i * 100000 + r);
      partitions[i]->BroadcastEvent(internal::BufferKind::kEndOfPartition);
    });
  }

  std::vector<std::vector<int64_t>> got(kProducers);
  std::vector<int> eops(kProducers);
  while (!(*gate)->AllFinished()) {
    auto next = (*gate)->Poll(10s);
    ASSERT_TRUE(next.has_value()) << "no buffer within 10 s";
    ASSERT_GE(next->channel, 0);
    ASSERT_LT(next->channel, kProducers);
    EXPECT_EQ(next->input, specs[next->channel].input);
    ASSERT_EQ(eops[next->channel], 0)
        << "buffer after end of partition on channel " << next->channel;
    if (next->buffer.kind == internal::BufferKind::kEndOfPartition) {
      ++eops[next->channel];
      (*gate)->MarkFinished(next->channel);
    } else {
      ASSERT_EQ(next->buffer.kind, internal::BufferKind::kData);
      for (int64_t v : Records(next->buffer.data)) got[next->channel].push_back(v);
    }
  }
  for (auto& t : producers) t.join();
  for (int i = 0; i < kProducers; ++i) {
    std::vector<int64_t> expected;
    for (int64_t r = 0; r < kRecords; ++r) expected.push_back(i * 100000 + r);
    EXPECT_EQ(got[i], expected) << "channel " << i;
    EXPECT_EQ(eops[i], 1);
    // Subpartition 0 (the other consumer's) holds just its end of partition.
    EXPECT_EQ(partitions[i]->subpartition(0)->Size(), 1u);
  }
  EXPECT_FALSE((*gate)->Poll(50ms).has_value());
}

TEST(InputGateTest, CreateFailsWhenCancelledWhileWaitingForAPartition) {
  PartitionRegistry registry;
  ChannelCache channels;
  InputChannelSpec spec;
  spec.partition_id = "job-never/v0/s0";
  std::atomic<bool> cancelled{true};
  auto start = std::chrono::steady_clock::now();
  auto gate = InputGate::Create({spec}, registry, channels, 4, &cancelled);
  EXPECT_EQ(gate.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

// ---------------------------------------------------------------------------------------------
// Remote channels over a real loopback gRPC server.

class LoopbackServer {
 public:
  explicit LoopbackServer(PartitionRegistry& registry)
      : exchange_(NewDataExchangeServer(registry)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(exchange_->service());
    server_ = builder.BuildAndStart();
  }
  ~LoopbackServer() { Shutdown(); }
  bool ok() const { return server_ != nullptr && port_ > 0; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  void Shutdown() {
    if (!server_) return;
    exchange_->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + 500ms);
    server_.reset();
  }

 private:
  std::unique_ptr<DataExchangeServer> exchange_;  // outlives server_
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

InputChannelSpec RemoteSpec(const std::string& partition_id, const std::string& address) {
  InputChannelSpec spec;
  spec.input = 0;
  spec.partition_id = partition_id;
  spec.subpartition = 0;
  spec.local = false;
  spec.producer_address = address;
  spec.producer_tm_id = "tm-producer";
  return spec;
}

TEST(RemoteChannelTest, CreditBasedFlowControlBoundsTheBuffersInFlight) {
  constexpr int64_t kBuffers = 2000;
  constexpr size_t kQueueCapacity = 4;
  constexpr size_t kCredits = 4;
  constexpr int64_t kSlack = 3;  // the buffer being handed over at each end, and counting order
  constexpr int64_t kBound = kQueueCapacity + kCredits + kSlack;

  PartitionRegistry producer_registry;
  LoopbackServer server(producer_registry);
  ASSERT_TRUE(server.ok());
  auto partition = std::make_shared<ResultPartition>("job-fc/v0/s0", 1, /*buffer_size=*/8,
                                                     kQueueCapacity, nullptr);
  std::atomic<bool> producer_cancelled{false};
  partition->set_cancel_flag(&producer_cancelled);
  producer_registry.Register(partition);

  // One record per buffer, so `produced` counts buffers handed to the partition queue.
  std::atomic<int64_t> produced{0};
  std::thread producer([&] {
    try {
      for (int64_t i = 0; i < kBuffers; ++i) {
        WriteRecord(*partition, 0, i);
        produced.store(i + 1);
      }
      partition->BroadcastEvent(internal::BufferKind::kBarrier, 5, 6);
      partition->BroadcastEvent(internal::BufferKind::kEndOfPartition);
    } catch (const TaskCancelled&) {
    }
  });

  PartitionRegistry consumer_registry;
  ChannelCache channels;
  std::atomic<bool> consumer_cancelled{false};
  auto gate = InputGate::Create({RemoteSpec(partition->id(), server.address())}, consumer_registry,
                                channels, kCredits, &consumer_cancelled);
  ASSERT_TRUE(gate.ok()) << gate.status();

  // A sampler watches the gap between the producer and the consumer throughout. It reads
  // `produced` before `consumed`, so a late `consumed` can only make the gap look smaller.
  std::atomic<int64_t> consumed{0};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> sampled_max_gap{0}, samples{0};
  std::thread sampler([&] {
    while (!stop.load()) {
      int64_t p = produced.load();
      int64_t c = consumed.load();
      sampled_max_gap.store(std::max(sampled_max_gap.load(), p - c));
      samples.fetch_add(1);
      std::this_thread::sleep_for(200us);
    }
  });

  int64_t max_gap = 0;
  bool saw_barrier = false, saw_end = false;
  // Only a guard against a hang: a sanitizer build on a loaded machine needs well over 25 s.
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (!saw_end && std::chrono::steady_clock::now() < deadline) {
    auto next = (*gate)->Poll(10s);
    if (!next) break;
    const Buffer& b = next->buffer;
    if (b.kind == internal::BufferKind::kData) {
      std::vector<int64_t> records = Records(b.data);
      ASSERT_EQ(records.size(), 1u);
      ASSERT_EQ(records[0], consumed.load()) << "out of order";
      consumed.fetch_add(1);
      max_gap = std::max(max_gap, produced.load() - consumed.load());
      // A slow consumer: the producer is stopped by back-pressure, not by luck.
      std::this_thread::sleep_for(300us);
    } else if (b.kind == internal::BufferKind::kBarrier) {
      EXPECT_EQ(consumed.load(), kBuffers);
      EXPECT_EQ(b.value, 5);
      EXPECT_EQ(b.value2, 6);
      saw_barrier = true;
    } else if (b.kind == internal::BufferKind::kEndOfPartition) {
      saw_end = true;
    } else {
      ADD_FAILURE() << "unexpected buffer kind " << static_cast<int>(b.kind) << ": " << b.data;
      break;
    }
  }
  stop.store(true);
  sampler.join();
  if (!saw_end) {
    producer_cancelled.store(true);
    partition->Release();
  }
  producer.join();

  RecordProperty("max_gap", static_cast<int>(max_gap));
  RecordProperty("sampled_max_gap", static_cast<int>(sampled_max_gap.load()));
  RecordProperty("samples", static_cast<int>(samples.load()));
  EXPECT_EQ(consumed.load(), kBuffers);
  EXPECT_TRUE(saw_barrier);
  EXPECT_TRUE(saw_end);
  EXPECT_GT(samples.load(), 100);
  EXPECT_LE(max_gap, kBound) << "the producer ran ahead of the consumer";
  EXPECT_LE(sampled_max_gap.load(), kBound) << "the producer ran ahead of the consumer";
  // The producer did run ahead as far as the partition queue allows (so the bound was tested).
  EXPECT_GT(std::max(max_gap, sampled_max_gap.load()), static_cast<int64_t>(kQueueCapacity));
  // After the end of the partition, nothing more arrives (no spurious channel error).
  EXPECT_FALSE((*gate)->Poll(200ms).has_value());
}

TEST(RemoteChannelTest, ServerShutdownMidStreamIsAChannelError) {
  PartitionRegistry producer_registry;
  LoopbackServer server(producer_registry);
  ASSERT_TRUE(server.ok());
  auto partition = std::make_shared<ResultPartition>("job-kill/v0/s0", 1, 8, 4, nullptr);
  producer_registry.Register(partition);
  std::atomic<bool> producer_done{false};
  std::thread producer([&] {
    try {
      for (int64_t i = 0;; ++i) WriteRecord(*partition, 0, i);  // until released
    } catch (const TaskCancelled&) {
    }
    producer_done.store(true);
  });

  PartitionRegistry consumer_registry;
  ChannelCache channels;
  std::atomic<bool> cancelled{false};
  auto gate = InputGate::Create({RemoteSpec(partition->id(), server.address())}, consumer_registry,
                                channels, 4, &cancelled);
  ASSERT_TRUE(gate.ok()) << gate.status();

  int64_t expected = 0;
  for (int i = 0; i < 50; ++i) {
    auto next = (*gate)->Poll(10s);
    ASSERT_TRUE(next.has_value());
    ASSERT_EQ(next->buffer.kind, internal::BufferKind::kData);
    ASSERT_THAT(Records(next->buffer.data), ElementsAre(expected));
    ++expected;
  }

  server.Shutdown();

  // What was already in flight still arrives in order, then the error.
  std::optional<InputGate::Next> next;
  for (int i = 0; i < 100; ++i) {
    next = (*gate)->Poll(10s);
    ASSERT_TRUE(next.has_value()) << "no channel error after the server went away";
    if (next->buffer.kind != internal::BufferKind::kData) break;
    ASSERT_THAT(Records(next->buffer.data), ElementsAre(expected));
    ++expected;
  }
  ASSERT_EQ(next->buffer.kind, kChannelError);
  EXPECT_THAT(next->buffer.data, HasSubstr("lost connection"));
  EXPECT_THAT(next->buffer.data, HasSubstr("tm-producer"));
  EXPECT_THAT(next->buffer.data, HasSubstr(server.address()));
  EXPECT_THAT(next->buffer.data, HasSubstr("job-kill/v0/s0"));
  EXPECT_FALSE((*gate)->Poll(100ms).has_value());

  EXPECT_FALSE(producer_done.load()) << "the producer should still be blocked on its full queue";
  partition->Release();
  producer.join();
  EXPECT_TRUE(producer_done.load());
}

}  // namespace
}  // namespace sluice
