// Test job: events keyed by name, connected with a broadcast stream of rules, for the broadcast
// state integration test. It runs in two phases, of the same graph:
//   --phase load     the rule source emits the rules r0..r4 and then removes r2; each event
//                    source subtask emits three events for each of its keys (k0..k<K-1>, key
//                    index modulo the parallelism). Each source writes a marker file once it has
//                    emitted everything, then idles (taking checkpoints) until it is cancelled.
//                    The function only counts events per key; nothing is written.
//   --phase probe    the rule source emits nothing; each event source subtask emits one event for
//                    each of its keys and ends. Per event the function writes
//                    `<key> count=<events of the key> subtask=<its subtask> rules=<rule names>`.
// Started with `-s` from a checkpoint of the load phase, the probe phase shows that every subtask
// got the rules back, at whatever parallelism, and each key its count.
//   --keys K         number of keys (default 12)
//   --output DIR     where the probe phase writes (required)
//   --marker-dir DIR where the load phase's sources write `rules` and `events-<subtask>`
//                    (required)
//   --idle-timeout-s S  a load-phase source ends anyway after S seconds idle (default 120)
#include <sluice/connectors/files.h>
#include <sluice/sluice.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace {

using Event = std::pair<std::string, int64_t>;  // key, 1
using Rule = std::pair<std::string, bool>;      // name, false to remove it

// Writes an empty file named `name` in `dir`.
void Mark(const std::string& dir, const std::string& name) {
  std::ofstream(std::filesystem::path(dir) / name).flush();
}

// Idles until cancelled or `timeout_s` passes, flushing: checkpoints are taken meanwhile.
template <class Ctx, class Stopped>
void Idle(Ctx& ctx, int64_t timeout_s, Stopped stopped) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (!stopped() && std::chrono::steady_clock::now() < deadline) {
    ctx.flush();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

class RuleSource : public sluice::SourceFunction<Rule> {
 public:
  RuleSource(bool load, std::string markers, int64_t timeout_s)
      : load_(load), markers_(std::move(markers)), timeout_s_(timeout_s) {}
  void open(sluice::RuntimeContext& ctx) override { ctx_ = &ctx; }
  void run(SourceContext& out) override {
    if (!load_) return;
    for (int r = 0; r < 5; ++r) out.collect(Rule("r" + std::to_string(r), true));
    out.collect(Rule("r2", false));
    out.flush();
    Mark(markers_, "rules");
    Idle(out, timeout_s_, [this] { return !is_running() || ctx_->cancelled(); });
  }
  bool is_parallel() const override { return false; }

 private:
  bool load_;
  std::string markers_;
  int64_t timeout_s_;
  sluice::RuntimeContext* ctx_ = nullptr;
};

class EventSource : public sluice::SourceFunction<Event> {
 public:
  EventSource(bool load, int64_t keys, std::string markers, int64_t timeout_s)
      : load_(load), keys_(keys), markers_(std::move(markers)), timeout_s_(timeout_s) {}
  void open(sluice::RuntimeContext& ctx) override { ctx_ = &ctx; }
  void run(SourceContext& out) override {
    const int subtask = ctx_->index_of_this_subtask();
    const int parallelism = ctx_->number_of_parallel_subtasks();
    for (int round = 0; round < (load_ ? 3 : 1); ++round) {
      for (int64_t k = subtask; k < keys_; k += parallelism) {
        out.collect(Event("k" + std::to_string(k), 1));
      }
    }
    if (!load_) return;
    out.flush();
    Mark(markers_, "events-" + std::to_string(subtask));
    Idle(out, timeout_s_, [this] { return !is_running() || ctx_->cancelled(); });
  }

 private:
  bool load_;
  int64_t keys_;
  std::string markers_;
  int64_t timeout_s_;
  sluice::RuntimeContext* ctx_ = nullptr;
};

class ApplyRules
    : public sluice::KeyedBroadcastProcessFunction<std::string, Event, Rule, std::string> {
 public:
  ApplyRules(sluice::MapStateDescriptor<std::string, bool> rules, bool probe)
      : rules_(std::move(rules)), probe_(probe) {}
  void open(sluice::RuntimeContext& ctx) override {
    count_ = &ctx.get_state(sluice::ValueStateDescriptor<int64_t>("count", 0));
    subtask_ = ctx.index_of_this_subtask();
  }
  void process_element(const Event& e, ReadOnlyContext& ctx,
                       sluice::Collector<std::string>& out) override {
    int64_t count = count_->value() + e.second;
    count_->update(count);
    if (!probe_) return;
    std::string names;
    for (const auto& [name, on] : ctx.get_broadcast_state(rules_).entries()) {
      if (!on) continue;
      names += (names.empty() ? "" : ",") + name;
    }
    out.collect(ctx.current_key() + " count=" + std::to_string(count) +
                " subtask=" + std::to_string(subtask_) + " rules=" + names);
  }
  void process_broadcast_element(const Rule& r, Context& ctx,
                                 sluice::Collector<std::string>&) override {
    auto& rules = ctx.get_broadcast_state(rules_);
    if (r.second) {
      rules.put(r.first, true);
    } else {
      rules.remove(r.first);
    }
  }

 private:
  sluice::MapStateDescriptor<std::string, bool> rules_;
  bool probe_;
  sluice::ValueState<int64_t>* count_ = nullptr;
  int subtask_ = -1;
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Broadcast Rules");
  const std::string phase = args.required("phase");
  if (phase != "load" && phase != "probe") {
    throw std::invalid_argument("--phase must be load or probe, not '" + phase + "'");
  }
  const bool load = phase == "load";
  const int64_t keys = args.get_int("keys", 12);
  const std::string markers = args.required("marker-dir");
  const int64_t timeout_s = args.get_int("idle-timeout-s", 120);
  sluice::MapStateDescriptor<std::string, bool> rules("rules");

  auto rule_stream = env.add_source(RuleSource(load, markers, timeout_s), "Rules").broadcast(rules);
  env.add_source(EventSource(load, keys, markers, timeout_s), "Events")
      .key_by([](const Event& e) { return e.first; })
      .connect(rule_stream)
      .process(ApplyRules(rules, !load), "Apply Rules")
      .add_sink(sluice::files::TextFileSink(args.required("output")));
}
