// Nexmark q1, currency conversion: every bid with its price in euros (0.908 * dollars, kept
// exact as thousandths). See nexmark_job.h for the arguments.
#include "queries/nexmark_job.h"

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q1: currency conversion");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto rows = nexmark::Bids(nexmark::Events(env, o)).map([](const nexmark::Bid& b) {
    return nexmark::Q1Row{b.auction, b.bidder, b.price * 908, b.date_time, b.extra};
  });
  nexmark::SinkChecksum(rows.name("To euros"), o);
}
