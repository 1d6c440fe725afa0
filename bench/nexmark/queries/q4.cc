// Nexmark q4, average price for a category: the winning price of every auction
// (winning_bids.h), averaged per category. The reference's SQL emits every change of every
// average; this job emits each category's final average when the input ends (one row per
// category), the only figure that does not depend on the order in which winning bids arrive.
// See nexmark_job.h for the arguments.
#include "queries/winning_bids.h"

namespace {

struct SumCount {
  int64_t sum = 0, count = 0;
  auto tie() { return std::tie(sum, count); }
  auto tie() const { return std::tie(sum, count); }
};

class AveragePerCategory final
    : public sluice::KeyedProcessFunction<int64_t, nexmark::CategoryPrice, nexmark::Q4Row> {
 public:
  void open(sluice::RuntimeContext& ctx) override {
    totals_ = &ctx.get_state(sluice::ValueStateDescriptor<SumCount>("totals"));
  }
  void process_element(const nexmark::CategoryPrice& v, Context&,
                       sluice::Collector<nexmark::Q4Row>&) override {
    totals_->merge(SumCount{v.price, 1}, [](const SumCount& a, const SumCount& b) {
      return SumCount{a.sum + b.sum, a.count + b.count};
    });
  }
  void end_input_of_key(const int64_t& category, sluice::Collector<nexmark::Q4Row>& out) override {
    SumCount t = totals_->value();
    if (t.count > 0) out.collect(nexmark::Q4Row{category, t.sum / t.count});
  }

 private:
  sluice::ValueState<SumCount>* totals_ = nullptr;
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q4: average price for a category");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto averages = nexmark::WinningBidsOf<false>(nexmark::Events(env, o))
                      .key_by([](const nexmark::CategoryPrice& v) { return v.category; })
                      .process(AveragePerCategory(), "Average per category");
  nexmark::SinkChecksum(averages, o);
}
