// Nexmark q2, selection: the auction and price of the bids on every 123rd auction. See
// nexmark_job.h for the arguments.
#include "queries/nexmark_job.h"

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q2: selection");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto rows = nexmark::Bids(nexmark::Events(env, o))
                  .filter([](const nexmark::Bid& b) { return b.auction % 123 == 0; })
                  .name("auction % 123 == 0")
                  .map([](const nexmark::Bid& b) {
                    return nexmark::Q2Row{b.auction, b.price};
                  });
  nexmark::SinkChecksum(rows.name("Project"), o);
}
