// Alerting on Kafka: the job of examples/alerting, reading its readings from a Kafka topic.
//
//   sluice run -p 2 -D execution.checkpointing.interval=1s build/examples/libkafka_alerting.so --
//       --bootstrap-servers 127.0.0.1:9092 --topic readings --threshold 90
//       (--output DIR | --output-topic alerts [--delivery-guarantee exactly-once]
//        [--producer-properties k=v,k=v])
//
// Readings are text records `timestamp_ms,host,metric,value`. Their timestamps drive event time
// with watermarks per Kafka partition (a lagging partition holds event time back; with
// --idleness-ms N a partition silent for N ms does not). Per host and metric, in tumbling
// event-time windows, the average, maximum and count; `window_end,host,metric,avg,max,count` per
// window and `ALERT,window_end,host,metric,avg` when the average exceeds --threshold. Output: the
// exactly-once file sink into --output (the same lines as examples/alerting), or one Kafka
// record per line into --output-topic (--producer-properties: properties of the Kafka sink;
// against sluice-kafka-dev's mock cluster, exactly once needs
// sluice.marker.commit-outside-transaction=true). --bounded: the job FINISHES at the offsets that
// were the latest when it started.
//
// --rules-topic R: per-metric thresholds from a second topic, lines `metric,threshold`, that may
// change while the job runs (a metric without a rule keeps --threshold). The rules are broadcast
// state: every subtask of the alerting step holds them all, in its checkpoints, restored at any
// parallelism.
#include <sluice/connectors/files.h>
#include <sluice/connectors/kafka.h>
#include <sluice/sluice.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "../alerting/alerting.h"

namespace {

namespace kafka = sluice::kafka;

// A window's figures, before the threshold is applied.
struct WindowStats {
  int64_t end = 0;
  std::string host_metric;
  alerting::Stats stats;
  SLUICE_FIELDS(end, host_metric, stats)
};

class ToWindowStats final : public sluice::ProcessWindowFunction<alerting::Stats, WindowStats,
                                                                 std::string, sluice::TimeWindow> {
 public:
  void process(const std::string& host_metric, Context& ctx,
               const std::vector<alerting::Stats>& stats,
               sluice::Collector<WindowStats>& out) override {
    for (const alerting::Stats& s : stats)
      out.collect(WindowStats{ctx.window().end, host_metric, s});
  }
};

// A rule `metric,threshold`; a malformed one is ignored.
struct Rule {
  std::string metric;
  double threshold = 0;
  bool valid = false;
  SLUICE_FIELDS(metric, threshold, valid)
};
Rule ParseRule(std::string_view line) {
  Rule r;
  size_t comma = line.find(',');
  if (comma == std::string_view::npos || comma == 0) return r;
  r.metric = std::string(line.substr(0, comma));
  std::string value(line.substr(comma + 1));
  char* end = nullptr;
  r.threshold = std::strtod(value.c_str(), &end);
  r.valid = !value.empty() && end && *end == '\0';
  return r;
}

const sluice::MapStateDescriptor<std::string, double> kRules("thresholds");

// The lines of examples/alerting, with the threshold of each metric's rule.
class ApplyThresholds final
    : public sluice::BroadcastProcessFunction<WindowStats, Rule, std::string> {
 public:
  explicit ApplyThresholds(double fallback) : fallback_(fallback) {}
  void process_element(const WindowStats& w, ReadOnlyContext& ctx,
                       sluice::Collector<std::string>& out) override {
    const alerting::Stats& s = w.stats;
    double avg = s.sum / static_cast<double>(s.count);
    std::string end = std::to_string(w.end);
    out.collect(end + "," + w.host_metric + "," + alerting::FormatAverage(avg) + "," +
                alerting::FormatNumber(s.max) + "," + std::to_string(s.count));
    std::string metric = w.host_metric.substr(w.host_metric.find(',') + 1);
    double threshold = ctx.get_broadcast_state(kRules).get(metric).value_or(fallback_);
    if (avg > threshold) {
      out.collect("ALERT," + end + "," + w.host_metric + "," + alerting::FormatAverage(avg));
    }
  }
  void process_broadcast_element(const Rule& r, Context& ctx,
                                 sluice::Collector<std::string>&) override {
    if (r.valid) ctx.get_broadcast_state(kRules).put(r.metric, r.threshold);
  }

 private:
  double fallback_;
};

// The alerting step with per-metric thresholds from the Kafka topic `rules_topic`.
template <class Windows>
sluice::DataStream<std::string> WithRules(sluice::StreamExecutionEnvironment& env, Windows& windows,
                                          const std::string& servers,
                                          const std::string& rules_topic, const std::string& group,
                                          bool bounded, double threshold) {
  auto source = kafka::KafkaSource<std::string>::builder()
                    .set_bootstrap_servers(servers)
                    .set_topics({rules_topic})
                    .set_group_id(group + "-rules")
                    .set_starting_offsets(kafka::OffsetsInitializer::earliest())
                    .set_deserializer(kafka::string_deserializer());
  if (bounded) source.set_bounded(kafka::OffsetsInitializer::latest());
  auto rules = env.add_source(source.build(), "Kafka Rules")
                   .map([](const std::string& line) { return ParseRule(line); })
                   .name("Parse Rules")
                   .broadcast(kRules);
  return windows.aggregate(alerting::StatsAggregate(), ToWindowStats())
      .connect(rules)
      .process(ApplyThresholds(threshold), "Apply Thresholds");
}

kafka::OffsetsInitializer StartingOffsets(const std::string& mode) {
  if (mode == "earliest") return kafka::OffsetsInitializer::earliest();
  if (mode == "latest") return kafka::OffsetsInitializer::latest();
  if (mode == "committed") return kafka::OffsetsInitializer::committed_offsets();
  throw std::invalid_argument("--starting-offsets must be earliest, latest or committed, got '" +
                              mode + "'");
}

kafka::DeliveryGuarantee Guarantee(const std::string& g) {
  if (g == "none") return kafka::DeliveryGuarantee::kNone;
  if (g == "at-least-once") return kafka::DeliveryGuarantee::kAtLeastOnce;
  if (g == "exactly-once") return kafka::DeliveryGuarantee::kExactlyOnce;
  throw std::invalid_argument(
      "--delivery-guarantee must be none, at-least-once or exactly-once, got '" + g + "'");
}

// `--producer-properties k=v,k=v`: properties of the Kafka sink (librdkafka's, or the sink's own
// such as sluice.marker.commit-outside-transaction=true, which a run against sluice-kafka-dev's
// mock cluster needs for exactly once).
template <class Sink>
void SetProducerProperties(Sink& sink, const std::string& props) {
  for (size_t at = 0; at < props.size();) {
    size_t end = props.find(',', at);
    if (end == std::string::npos) end = props.size();
    std::string kv = props.substr(at, end - at);
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw std::invalid_argument("--producer-properties: '" + kv + "' is not key=value");
    }
    sink.set_property(kv.substr(0, eq), kv.substr(eq + 1));
    at = end + 1;
  }
}

// The timestamp at the start of a reading's line; a malformed line keeps Kafka's timestamp (the
// parser sends it to the malformed output).
int64_t LineTimestamp(const std::string& line, int64_t kafka_ts) {
  int64_t ts = 0;
  auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), ts);
  if (ec != std::errc() || end == line.data() + line.size() || *end != ',') return kafka_ts;
  return ts;
}

}  // namespace

SLUICE_JOB(env, args) {
  std::string servers = args.required("bootstrap-servers");
  std::string topic = args.required("topic");
  const alerting::WindowSettings w = alerting::ParseWindowSettings(args);
  if (args.has("output") == args.has("output-topic")) {
    throw std::invalid_argument("give either --output DIR or --output-topic TOPIC");
  }
  int64_t idleness = args.get_int("idleness-ms", 0);
  std::string group = args.get("group-id", "sluice-kafka-alerting");

  auto builder =
      kafka::KafkaSource<std::string>::builder()
          .set_bootstrap_servers(servers)
          .set_topics({topic})
          .set_group_id(group)
          .set_starting_offsets(StartingOffsets(args.get("starting-offsets", "earliest")))
          .set_deserializer(kafka::string_deserializer());
  if (args.has("discovery-interval-ms")) {
    builder.set_property("partition.discovery.interval.ms", args.get("discovery-interval-ms"));
  }
  if (args.get_bool("bounded", false)) builder.set_bounded(kafka::OffsetsInitializer::latest());

  auto strategy = sluice::WatermarkStrategy<std::string>::for_bounded_out_of_orderness(
                      std::chrono::milliseconds(w.out_of_orderness_ms))
                      .with_timestamp_assigner(LineTimestamp);
  if (idleness > 0) strategy = strategy.with_idleness(std::chrono::milliseconds(idleness));

  env.set_job_name("Kafka Alerting");
  sluice::OutputTag<std::string> malformed("malformed");
  auto readings = env.from_source(builder.build(), strategy, "Kafka Readings")
                      .process(alerting::Parse(malformed, 0));
  readings.name("Parse");
  auto windows =
      readings.key_by(alerting::HostMetric)
          .window(sluice::TumblingEventTimeWindows::of(std::chrono::milliseconds(w.window_ms)));
  sluice::DataStream<std::string> alerts =
      args.has("rules-topic")
          ? WithRules(env, windows, servers, args.get("rules-topic"), group,
                      args.get_bool("bounded", false), w.threshold)
          : windows.aggregate(alerting::StatsAggregate(), alerting::Report(w.threshold));

  if (args.has("output")) {
    std::string output = args.get("output");
    alerts.sink_to(sluice::files::ExactlyOnceTextFileSink<std::string>(output));
    readings.get_side_output(malformed).sink_to(
        sluice::files::ExactlyOnceTextFileSink<std::string>(output + "/malformed"),
        "Malformed Lines");
  } else {
    auto guarantee = Guarantee(args.get("delivery-guarantee", "at-least-once"));
    auto sink = kafka::KafkaSink<std::string>::builder()
                    .set_bootstrap_servers(servers)
                    .set_topic(args.get("output-topic"))
                    .set_value_serializer([](const std::string& s) { return s; })
                    .set_delivery_guarantee(guarantee);
    if (guarantee == kafka::DeliveryGuarantee::kExactlyOnce) {
      sink.set_transactional_id_prefix(args.get("transactional-id-prefix", group));
    }
    SetProducerProperties(sink, args.get("producer-properties", ""));
    alerts.add_sink(sink.build());
  }
}
