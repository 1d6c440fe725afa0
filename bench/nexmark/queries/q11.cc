// Nexmark q11, user sessions: the bids of each bidder per session (event-time session windows
// with a gap of 10 s): bidder, count, start and end (last bid + gap). See nexmark_job.h for the
// arguments.
#include "queries/nexmark_job.h"

namespace {

using nexmark::BidderWindowRow;

class SessionRow final
    : public sluice::ProcessWindowFunction<int64_t, BidderWindowRow, int64_t, sluice::TimeWindow> {
 public:
  void process(const int64_t& bidder, Context& ctx, const std::vector<int64_t>& counts,
               sluice::Collector<BidderWindowRow>& out) override {
    for (int64_t n : counts) {
      out.collect(BidderWindowRow{bidder, n, ctx.window().start, ctx.window().end});
    }
  }
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q11: user sessions");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto sessions = nexmark::Bids(nexmark::Events(env, o))
                      .key_by([](const nexmark::Bid& b) { return b.bidder; })
                      .window(sluice::EventTimeSessionWindows::with_gap(std::chrono::seconds(10)))
                      .aggregate(nexmark::CountBids(), SessionRow());
  nexmark::SinkChecksum(sessions, o);
}
