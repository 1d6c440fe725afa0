// Test job: asynchronous requests answered by a thread pool after random delays, between a
// replayable source and the exactly-once file sink. With checkpoints, every input must reach the
// committed output exactly once, however the job fails and restores.
//
//   --keys K --per-key N --rate R   the sequence-count source (examples/sequence_count): (key,
//                                   seq) for seq 1..N of keys 0..K-1, at R records/s in all
//   --output DIR                    committed part files of `key,seq` lines
//   --ordered                       ordered_wait (default: unordered_wait)
//   --capacity C                    requests in flight per subtask (default 10)
//   --max-delay-ms D                each answer comes after 0..D ms (default 20)
#include <sluice/connectors/files.h>
#include <sluice/sluice.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sequence_count.h"

namespace {

using sequence_count::KeySeq;

// Runs tasks on a few threads, each after a random pause of up to `max_delay`. Once stopping,
// the tasks left run without their pause; the destructor joins the threads.
class DelayedPool {
 public:
  DelayedPool(int threads, std::chrono::milliseconds max_delay) : max_delay_(max_delay) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~DelayedPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void Submit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

 private:
  void Loop() {
    std::mt19937_64 rng(std::random_device{}());
    std::uniform_int_distribution<int64_t> delay_us(0, max_delay_.count() * 1000);
    while (true) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
        // The pause, unless stopping (then at once).
        cv_.wait_for(lock, std::chrono::microseconds(delay_us(rng)), [&] { return stop_; });
      }
      task();
    }
  }

  std::chrono::milliseconds max_delay_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// Answers each (key, seq) with the line "key,seq" from the pool.
class Lookup final : public sluice::AsyncFunction<KeySeq, std::string> {
 public:
  explicit Lookup(std::chrono::milliseconds max_delay) : max_delay_(max_delay) {}
  void open(sluice::RuntimeContext&) override {
    pool_ = std::make_shared<DelayedPool>(4, max_delay_);
  }
  void async_invoke(const KeySeq& r,
                    std::shared_ptr<sluice::ResultFuture<std::string>> result) override {
    std::string line = std::to_string(r.key) + "," + std::to_string(r.seq);
    pool_->Submit([line = std::move(line), result] { result->complete({line}); });
  }
  void close() override { pool_.reset(); }

 private:
  std::chrono::milliseconds max_delay_;
  std::shared_ptr<DelayedPool> pool_;
};

}  // namespace

SLUICE_JOB(env, args) {
  int64_t keys = args.get_int("keys", 20);
  int64_t per_key = args.get_int("per-key", 100);
  double rate = args.get_double("rate", 0);
  int64_t capacity = args.get_int("capacity", 10);
  int64_t max_delay_ms = args.get_int("max-delay-ms", 20);
  if (keys < 1 || per_key < 1) throw std::invalid_argument("--keys and --per-key must be >= 1");
  if (max_delay_ms < 0) throw std::invalid_argument("--max-delay-ms must not be negative");

  env.set_job_name("Async Lookup");
  auto source =
      env.add_source(sequence_count::SequenceCountSource(keys, per_key, rate), "Key Sequences");
  Lookup lookup{std::chrono::milliseconds(max_delay_ms)};
  const auto timeout = std::chrono::seconds(10);
  auto looked_up = args.get_bool("ordered", false)
                       ? sluice::AsyncDataStream::ordered_wait(source, lookup, timeout,
                                                               static_cast<int>(capacity))
                       : sluice::AsyncDataStream::unordered_wait(source, lookup, timeout,
                                                                 static_cast<int>(capacity));
  looked_up.sink_to(
      sluice::files::ExactlyOnceTextFileSink<std::string>(args.get("output", "/tmp/async_lookup")));
}
