// Test job: the sequence-count pipeline (examples/sequence_count) over millions of keys, with a
// source whose checkpointed position is one number per subtask (the example's source stores one
// element per key), one keyed state per key instead of three, and a gate that holds the job
// between two passes over the keys. A test lets the first pass put every key into keyed state,
// kills a TaskManager while the job waits at the gate, and opens the gate once the job has
// restored: the second pass then updates every key from restored state.
//
//   --keys K          keys 0..K-1 (required)
//   --per-key N       passes over the keys, seq 1..N of each (default 2)
//   --gate FILE       before pass --gate-pass, wait until FILE exists (required); a waiting
//                     subtask i creates FILE.waiting-<i> first
//   --gate-pass S     the pass that waits (default 2)
//   --gate-timeout-s T  go on anyway after T seconds of waiting (default 300)
//   --timer-every N   the first record of every N-th key (key % N == 0) registers an event-time
//                     timer, which fires at the end of input (no watermark comes before); a key
//                     whose timers did not fire as often as it registered them counts a
//                     violation (default 0: no timers)
//   --output DIR      committed part files of `key,count,violations` lines (required)
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

// Subtask i of p owns keys i, i+p, ... below K and emits pass after pass over them in order:
// record number t is (key i + p * (t % owned), seq t / owned + 1). Operator state: t, with p and
// i, so a restore at another parallelism is refused rather than miscounted.
class PassSource final : public sluice::SourceFunction<KeySeq> {
 public:
  PassSource(int64_t keys, int64_t passes, std::string gate, int64_t gate_pass, int64_t timeout_s)
      : keys_(keys),
        passes_(passes),
        gate_(std::move(gate)),
        gate_pass_(gate_pass),
        timeout_s_(timeout_s) {}

  void open(sluice::RuntimeContext& ctx) override {
    state_ = &ctx.get_operator_list_state(sluice::ListStateDescriptor<int64_t>("position"));
    p_ = ctx.number_of_parallel_subtasks();
    i_ = ctx.index_of_this_subtask();
    owned_ = i_ < keys_ ? (keys_ - i_ + p_ - 1) / p_ : 0;
    next_ = 0;
    if (ctx.is_restored()) {
      std::vector<int64_t> saved = state_->get();
      if (saved.size() != 3 || saved[0] != p_ || saved[1] != i_) {
        throw std::runtime_error("the restored position is for another parallelism");
      }
      next_ = saved[2];
    }
    ctx_ = &ctx;
  }

  void run(SourceContext& out) override {
    const int64_t total = owned_ * passes_;
    for (; next_ < total; ++next_) {
      if ((next_ & 1023) == 0 && stopped()) return;
      int64_t seq = next_ / owned_ + 1;
      if (seq == gate_pass_ && next_ % owned_ == 0 && !WaitForGate(out)) return;
      out.collect(KeySeq{i_ + p_ * (next_ % owned_), seq});  // may checkpoint next_ first
    }
  }

  void snapshot_state(int64_t) override { state_->update({p_, i_, next_}); }

 private:
  bool stopped() const { return !is_running() || (ctx_ && ctx_->cancelled()); }

  // Waits until the gate exists (or the timeout passes), flushing so that checkpoints are taken
  // meanwhile; false when cancelled.
  bool WaitForGate(SourceContext& out) {
    std::ofstream(gate_ + ".waiting-" + std::to_string(i_)).flush();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s_);
    while (!std::filesystem::exists(gate_) && std::chrono::steady_clock::now() < deadline) {
      if (stopped()) return false;
      out.flush();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return !stopped();
  }

  int64_t keys_, passes_;
  std::string gate_;
  int64_t gate_pass_, timeout_s_;
  int64_t p_ = 1, i_ = 0, owned_ = 0, next_ = 0;
  sluice::OperatorListState<int64_t>* state_ = nullptr;
  sluice::RuntimeContext* ctx_ = nullptr;
};

// Per key, in one ValueState: how many records arrived, how many did not carry seq count + 1
// (a repeat, a gap or a reordering), and how often the key's timer fired (--timer-every). At
// the end of input: `key,count,violations`, the lines of the sequence-count example.
struct Counts {
  int64_t count = 0;
  int64_t violations = 0;
  int64_t timers_fired = 0;
  SLUICE_FIELDS(count, violations, timers_fired)
};

class CountInOrder final : public sluice::KeyedProcessFunction<int64_t, KeySeq, std::string> {
 public:
  explicit CountInOrder(int64_t timer_every) : timer_every_(timer_every) {}

  void open(sluice::RuntimeContext& ctx) override {
    counts_ = &ctx.get_state(sluice::ValueStateDescriptor<Counts>("counts"));
  }
  void process_element(const KeySeq& r, Context& ctx, sluice::Collector<std::string>&) override {
    Counts c = counts_->value();
    if (r.seq != c.count + 1) ++c.violations;
    ++c.count;
    counts_->update(c);
    if (has_timer(r.key) && r.seq == 1) ctx.timer_service().register_event_time_timer(r.key);
  }
  void on_timer(int64_t, OnTimerContext&, sluice::Collector<std::string>&) override {
    Counts c = counts_->value();
    ++c.timers_fired;
    counts_->update(c);
  }
  void end_input_of_key(const int64_t& key, sluice::Collector<std::string>& out) override {
    Counts c = counts_->value();
    if (c.timers_fired != (has_timer(key) ? 1 : 0)) ++c.violations;
    out.collect(std::to_string(key) + "," + std::to_string(c.count) + "," +
                std::to_string(c.violations));
  }

 private:
  bool has_timer(int64_t key) const { return timer_every_ > 0 && key % timer_every_ == 0; }

  int64_t timer_every_;
  sluice::ValueState<Counts>* counts_ = nullptr;
};

}  // namespace

SLUICE_JOB(env, args) {
  int64_t keys = args.get_int("keys", 0);
  int64_t per_key = args.get_int("per-key", 2);
  if (keys < 1) throw std::invalid_argument("--keys must be at least 1");
  if (per_key < 1) throw std::invalid_argument("--per-key must be at least 1");
  int64_t timer_every = args.get_int("timer-every", 0);
  if (timer_every < 0) throw std::invalid_argument("--timer-every must not be negative");
  env.set_job_name("Large State");
  env.add_source(PassSource(keys, per_key, args.required("gate"), args.get_int("gate-pass", 2),
                            args.get_int("gate-timeout-s", 300)),
                 "Key Passes")
      .key_by([](const KeySeq& r) { return r.key; })
      .process(CountInOrder(timer_every), "Count In Order")
      .sink_to(sluice::files::ExactlyOnceTextFileSink<std::string>(args.required("output")));
}
