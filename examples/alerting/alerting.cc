// Alerting: metrics per host per window, and an alert when a window's average is too high.
//
//   sluice run -p 2 -D execution.checkpointing.interval=1s build/examples/libalerting.so --
//       --input readings.csv --output /tmp/alerts --threshold 90
//
// Reads lines `timestamp_ms,host,metric,value` (lines starting with # are skipped), gives each
// reading its timestamp with bounded out-of-orderness, and computes per host and metric, in
// tumbling event-time windows, the average, maximum and count. Each window writes
// `window_end,host,metric,avg,max,count`, and `ALERT,window_end,host,metric,avg` when the average
// exceeds --threshold, through an exactly-once file sink into --output. Readings later than the
// out-of-orderness are dropped and counted (the TaskManager logs the count); malformed lines go
// to --output/malformed. --rate R replays the file at R lines per second per source subtask.
#include "alerting.h"

#include <sluice/connectors/files.h>
#include <sluice/sluice.h>

#include <chrono>
#include <stdexcept>
#include <string>

SLUICE_JOB(env, args) {
  if (!args.has("input")) throw std::invalid_argument("--input FILE is required");
  if (!args.has("output")) throw std::invalid_argument("--output DIR is required");
  const alerting::WindowSettings w = alerting::ParseWindowSettings(args);
  double rate = args.get_double("rate", 0);
  std::string output = args.get("output");

  env.set_job_name("Alerting");
  sluice::OutputTag<std::string> malformed("malformed");
  // The parser is chained to the source (a pacing step behind a network edge would fill the
  // edge's buffers and hold back checkpoint barriers behind them).
  auto readings = env.add_source(sluice::files::TextFileSource(args.get("input")))
                      .process(alerting::Parse(malformed, rate));
  readings.name("Parse");
  readings
      .assign_timestamps_and_watermarks(
          sluice::WatermarkStrategy<alerting::Reading>::for_bounded_out_of_orderness(
              std::chrono::milliseconds(w.out_of_orderness_ms))
              .with_timestamp_assigner(
                  [](const alerting::Reading& r, int64_t) { return r.timestamp_ms; }))
      .key_by(alerting::HostMetric)
      .window(sluice::TumblingEventTimeWindows::of(std::chrono::milliseconds(w.window_ms)))
      .aggregate(alerting::StatsAggregate(), alerting::Report(w.threshold))
      .sink_to(sluice::files::ExactlyOnceTextFileSink<std::string>(output));
  readings.get_side_output(malformed).sink_to(
      sluice::files::ExactlyOnceTextFileSink<std::string>(output + "/malformed"),
      "Malformed Lines");
}
