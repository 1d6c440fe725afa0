// Test job: sequence_job's keyed running sum with --output, whose source subtasks, once they have
// emitted their share of the numbers, wait until the file --gate exists before they end. A test
// holds jobs RUNNING at the same time this way, then lets them finish by creating the file.
//   --count N        numbers 0..N-1 (default 10000)
//   --keys K         key = n % K (default 100)
//   --output DIR     write `key,sum` lines (required)
//   --gate FILE      end only once FILE exists (required)
//   --gate-timeout-s S  end anyway after S seconds (default 120), so a forgotten gate cannot
//                    hold a job forever
#include <sluice/connectors/files.h>
#include <sluice/sluice.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <utility>

using KV = std::pair<int64_t, int64_t>;

namespace {

class GatedSequence : public sluice::SourceFunction<int64_t> {
 public:
  GatedSequence(int64_t count, std::string gate, int64_t timeout_s)
      : count_(count), gate_(std::move(gate)), timeout_s_(timeout_s) {}
  void open(sluice::RuntimeContext& ctx) override {
    int i = ctx.index_of_this_subtask();
    int p = ctx.number_of_parallel_subtasks();
    begin_ = count_ * i / p;
    end_ = count_ * (i + 1) / p;
    ctx_ = &ctx;
  }
  void run(SourceContext& out) override {
    for (int64_t v = begin_; v < end_; ++v) {
      if ((v & 1023) == 0 && stopped()) return;
      out.collect(int64_t(v));
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s_);
    while (!stopped() && !std::filesystem::exists(gate_) &&
           std::chrono::steady_clock::now() < deadline) {
      out.flush();  // where a checkpoint of a waiting job is taken
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

 private:
  bool stopped() const { return !is_running() || (ctx_ && ctx_->cancelled()); }

  int64_t count_;
  std::string gate_;
  int64_t timeout_s_;
  int64_t begin_ = 0, end_ = 0;
  sluice::RuntimeContext* ctx_ = nullptr;
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Gated Sequence");
  int64_t keys = args.get_int("keys", 100);
  env.add_source(GatedSequence(args.get_int("count", 10000), args.required("gate"),
                               args.get_int("gate-timeout-s", 120)),
                 "Gated Sequence Source")
      .map([keys](int64_t n) { return KV(n % keys, n); })
      .key_by([](const KV& kv) { return kv.first; })
      .sum<1>()
      .add_sink(sluice::files::TextFileSink(args.required("output")));
}
