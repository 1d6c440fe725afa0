// Nexmark q0, pass through: every bid's columns to the sink (the cost of the source, the
// projection and the sink alone). See nexmark_job.h for the arguments.
#include "queries/nexmark_job.h"

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q0: pass through");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto rows = nexmark::Bids(nexmark::Events(env, o)).map([](const nexmark::Bid& b) {
    return nexmark::BidRow{b.auction, b.bidder, b.price, b.date_time, b.extra};
  });
  nexmark::SinkChecksum(rows.name("Project"), o);
}
