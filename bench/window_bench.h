// Figure 6 of sluice-bench (`sluice-bench windows`): the per-core cost of an event-time window
// aggregation, in one process on one thread, no cluster.
//
//   6. Records per CPU-second of a keyed sliding window (10 s size, 1 s slide) computing a count
//      and a sum of a double per key, beside the same with a tumbling 10 s window, beside a
//      hand-written loop computing the sliding windows' results (per key a ring of 1 s panes in
//      an std::unordered_map): the floor. Runs interleave A B C A B C ...; medians are shown,
//      with the ratios sliding / tumbling and window / loop. The sliding window's and the loop's
//      results are compared (number, counts, sums, a checksum): a mismatch is an error.
//
// The Sluice variants drive the window task as a TaskManager does: the job's chain {window, sink}
// built with StreamExecutionEnvironment::build_chain, one process_buffer() per network buffer of
// timestamped records (serialized as the producer of a key_by edge writes them, outside the timed
// part) and process_watermark() as the watermark advances. Threads: everything runs on the
// caller's thread.
#pragma once

#include <cstdint>

#include "absl/status/status.h"

namespace sluice::bench {

struct WindowBenchOptions {
  // One run of each variant over fewer records: a smoke run. Default: false.
  bool quick = false;
  // Records per run of each variant. Default: 0, meaning 4,000,000 (1,000,000 with quick).
  int64_t records = 0;
  // Distinct keys, drawn pseudo-randomly for each record. Default: 10,000.
  int keys = 10'000;
  // Records per second of event time (timestamps increase steadily). Default: 100,000.
  int64_t events_per_second = 100'000;
  // The watermark (the highest timestamp so far - 1, as for_monotonous_timestamps() makes it)
  // advances every this many ms of event time; at most the slide (1 s). Default: 100.
  int64_t watermark_interval_ms = 100;
  // Rounds of (sliding, tumbling, loop); medians are shown. Default: 0, meaning 5 (1 with quick).
  int runs = 0;
};

// Runs figure 6 and prints it on standard output. InvalidArgument for options out of range;
// DataLoss (after printing the figures) when the sliding window's results differ from the loop's
// or the totals are not what the input implies.
absl::Status RunWindowFigure(const WindowBenchOptions& options);

}  // namespace sluice::bench
