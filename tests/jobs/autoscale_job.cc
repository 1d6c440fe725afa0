// Test job for the autoscaler: a source whose rate the test changes while the job runs, a cheap
// map, and a keyed count that takes a fixed time per record (the one vertex the autoscaler
// should rescale; it sleeps, so a test of many subtasks does not need as many cores):
//
//   Source: Paced Sequences (p 1) -> Fast Map (p 1) -> Slow Count -> Sink: Exactly-Once Text File
//
//   --keys K          keys 0..K-1, emitted round robin with seq 1, 2, ... (default 10)
//   --rate-file F     holds the source's rate in records per second, read every 100 ms
//                     (required; a missing or unreadable file keeps the last rate, at first 100)
//   --stop-file F     the source ends its input once F exists (required)
//   --cost-us N       microseconds Slow Count takes per record (default 1000)
//   --output DIR      committed part files of `key,count,violations` lines at the end of input
//
// Every key's count is the number of its records and violations counts gaps and repeats of seq,
// so exactly-once processing across rescales leaves 0 violations for every key.
#include <sluice/connectors/files.h>
#include <sluice/sluice.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sequence_count.h"

namespace {

using sequence_count::KeySeq;
using Clock = std::chrono::steady_clock;

class PacedSource final : public sluice::SourceFunction<KeySeq> {
 public:
  using Progress = std::pair<int64_t, int64_t>;  // key, next seq
  PacedSource(int64_t keys, std::string rate_file, std::string stop_file)
      : keys_(keys), rate_file_(std::move(rate_file)), stop_file_(std::move(stop_file)) {}

  void open(sluice::RuntimeContext& ctx) override {
    state_ = &ctx.get_operator_list_state(sluice::ListStateDescriptor<Progress>("key-progress"));
    progress_ = ctx.is_restored() ? state_->get() : std::vector<Progress>{};
    if (!ctx.is_restored()) {
      for (int64_t k = 0; k < keys_; ++k) progress_.push_back({k, 1});
    }
  }

  void run(SourceContext& ctx) override {
    double credit = 0;
    auto last = Clock::now();
    auto next_read = last;
    for (size_t i = 0; is_running() && !progress_.empty(); i = (i + 1) % progress_.size()) {
      // Emits as the rate allows: credit grows by rate * elapsed time.
      while (credit < 1 && is_running()) {
        auto now = Clock::now();
        if (now >= next_read) {
          if (std::filesystem::exists(stop_file_)) return;
          ReadRate();
          next_read = now + std::chrono::milliseconds(100);
        }
        credit = std::min(credit + rate_ * std::chrono::duration<double>(now - last).count(),
                          std::max(1.0, rate_ / 10));
        last = now;
        if (credit < 1) {
          ctx.flush();
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
      }
      Progress& p = progress_[i];
      ctx.collect(KeySeq{p.first, p.second});  // may checkpoint first, storing p.second
      ++p.second;
      credit -= 1;
    }
  }

  void snapshot_state(int64_t) override { state_->update(progress_); }

 private:
  void ReadRate() {
    std::ifstream in(rate_file_);
    double r = 0;
    if (in >> r && r >= 0) rate_ = r;
  }

  int64_t keys_;
  std::string rate_file_, stop_file_;
  double rate_ = 100;
  std::vector<Progress> progress_;
  sluice::OperatorListState<Progress>* state_ = nullptr;
};

// CountSequence after a fixed time per record. The task counts the time as busy (it is neither
// waiting for input nor for room downstream), as it would count the work it stands for.
class SlowCount final : public sluice::KeyedProcessFunction<int64_t, KeySeq, std::string> {
 public:
  explicit SlowCount(int64_t cost_us) : cost_(std::chrono::microseconds(cost_us)) {}
  void open(sluice::RuntimeContext& ctx) override { count_.open(ctx); }
  void process_element(const KeySeq& r, Context& c, sluice::Collector<std::string>& out) override {
    std::this_thread::sleep_for(cost_);
    count_.process_element(r, c, out);
  }
  void end_input_of_key(const int64_t& key, sluice::Collector<std::string>& out) override {
    count_.end_input_of_key(key, out);
  }

 private:
  Clock::duration cost_;
  sequence_count::CountSequence count_;
};

}  // namespace

SLUICE_JOB(env, args) {
  int64_t keys = args.get_int("keys", 10);
  int64_t cost_us = args.get_int("cost-us", 1000);
  if (keys < 1) throw std::invalid_argument("--keys must be at least 1");
  env.set_job_name("Autoscale");
  env.add_source(PacedSource(keys, args.required("rate-file"), args.required("stop-file")),
                 "Paced Sequences")
      .set_parallelism(1)
      .rebalance()
      .map([](const KeySeq& r) { return r; })
      .name("Fast Map")
      .set_parallelism(1)
      .key_by([](const KeySeq& r) { return r.key; })
      .process(SlowCount(cost_us), "Slow Count")
      .sink_to(sluice::files::ExactlyOnceTextFileSink<std::string>(args.required("output")));
}
