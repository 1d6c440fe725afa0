// Nexmark q14, calculation: bids whose price in euros is between 1 M and 50 M, with the kind of
// hour they were made at (day, night, other; UTC) and the number of 'c' in their extra field
// (the reference's user-defined count_char). See nexmark_job.h for the arguments.
#include "queries/nexmark_job.h"

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q14: calculation");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto rows = nexmark::Bids(nexmark::Events(env, o))
                  .flat_map([](const nexmark::Bid& b, sluice::Collector<nexmark::Q14Row>& out) {
                    nexmark::Q14Row row;
                    if (nexmark::Q14RowOf(b, &row)) out.collect(std::move(row));
                  })
                  .name("Calculate");
  nexmark::SinkChecksum(rows, o);
}
