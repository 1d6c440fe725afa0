// The functions of the sequence-count job (sequence_count.cc), in a header so that tests can run
// them in-process.
//
// SequenceCountSource emits (key, seq) for seq 1..N of each of K keys; CountSequence counts, per
// key, the records and the gaps or repeats in seq. With exactly-once processing every key ends
// with count N and no violations, however often the job fails and restores.
#pragma once

#include <sluice/sluice.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sequence_count {

struct KeySeq {
  int64_t key = 0;
  int64_t seq = 0;
  SLUICE_FIELDS(key, seq)
};

// A parallel, replayable source. Subtask i of p owns keys i, i+p, i+2p, ... below `keys` and
// emits round robin over them (key a seq 1, key b seq 1, ..., key a seq 2, ...), at most `rate`
// records per second over all subtasks (rate / p per subtask; 0: as fast as possible).
//
// Operator state: one (key, next seq) element per owned key. A checkpoint taken inside
// collect(v) stores v's seq as v's key's next, so v is emitted again after a restore. After a
// restore at another parallelism a subtask owns the keys whose elements it was given.
class SequenceCountSource final : public sluice::SourceFunction<KeySeq> {
 public:
  using Progress = std::pair<int64_t, int64_t>;  // key, next seq to emit

  SequenceCountSource(int64_t keys, int64_t per_key, double rate)
      : keys_(keys), per_key_(per_key), rate_(rate) {}

  void open(sluice::RuntimeContext& ctx) override {
    state_ = &ctx.get_operator_list_state(sluice::ListStateDescriptor<Progress>("key-progress"));
    progress_.clear();
    if (ctx.is_restored()) {
      progress_ = state_->get();
    } else {
      int p = ctx.number_of_parallel_subtasks();
      for (int64_t k = ctx.index_of_this_subtask(); k < keys_; k += p) progress_.push_back({k, 1});
    }
    subtask_rate_ = rate_ / ctx.number_of_parallel_subtasks();
  }

  void run(SourceContext& ctx) override {
    size_t unfinished = 0;
    for (const Progress& p : progress_) unfinished += p.second <= per_key_ ? 1 : 0;
    auto start = std::chrono::steady_clock::now();
    int64_t emitted = 0;
    for (size_t i = 0; unfinished > 0 && is_running(); i = (i + 1) % progress_.size()) {
      Progress& p = progress_[i];
      if (p.second > per_key_) continue;
      if (subtask_rate_ > 0 && !wait_for_turn(ctx, start, emitted)) return;
      ctx.collect(KeySeq{p.first, p.second});  // may checkpoint first, storing p.second
      ++emitted;
      if (++p.second > per_key_) --unfinished;
    }
  }

  void snapshot_state(int64_t) override { state_->update(progress_); }

 private:
  // Sleeps until record number `emitted` is due at the subtask's rate; false if cancelled.
  bool wait_for_turn(SourceContext& ctx, std::chrono::steady_clock::time_point start,
                     int64_t emitted) {
    auto due = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(emitted / subtask_rate_));
    if (std::chrono::steady_clock::now() >= due) return true;
    ctx.flush();  // what was collected goes out before the pause
    while (is_running()) {
      auto now = std::chrono::steady_clock::now();
      if (now >= due) return true;
      std::this_thread::sleep_for(
          std::min<std::chrono::steady_clock::duration>(due - now, std::chrono::milliseconds(50)));
    }
    return false;
  }

  int64_t keys_;
  int64_t per_key_;
  double rate_;
  double subtask_rate_ = 0;
  std::vector<Progress> progress_;
  sluice::OperatorListState<Progress>* state_ = nullptr;
};

// Per key, in keyed state: how many records arrived, the last seq, and how many records did not
// carry last seq + 1 (a gap, a repeat or a reordering). At the end of input it emits
// `key,count,violations` for every key.
class CountSequence final : public sluice::KeyedProcessFunction<int64_t, KeySeq, std::string> {
 public:
  void open(sluice::RuntimeContext& ctx) override {
    count_ = &ctx.get_state(sluice::ValueStateDescriptor<int64_t>("count"));
    last_ = &ctx.get_state(sluice::ValueStateDescriptor<int64_t>("last-seq"));
    violations_ = &ctx.get_state(sluice::ValueStateDescriptor<int64_t>("violations"));
  }
  void process_element(const KeySeq& r, Context&, sluice::Collector<std::string>&) override {
    count_->update(count_->value() + 1);
    if (r.seq != last_->value() + 1) violations_->update(violations_->value() + 1);
    last_->update(r.seq);
  }
  void end_input_of_key(const int64_t& key, sluice::Collector<std::string>& out) override {
    out.collect(std::to_string(key) + "," + std::to_string(count_->value()) + "," +
                std::to_string(violations_->value()));
  }

 private:
  sluice::ValueState<int64_t>* count_ = nullptr;
  sluice::ValueState<int64_t>* last_ = nullptr;
  sluice::ValueState<int64_t>* violations_ = nullptr;
};

}  // namespace sequence_count
