// Counts records per key from Kafka: records `key,seq` from --topic (bounded at the offsets
// latest at the start, unless --unbounded), a rolling count per key, lines `key,count` into the
// exactly-once file sink at --output or into the Kafka topic --output-topic with
// --delivery-guarantee. --throttle-us N sleeps N µs per record (to kill TaskManagers mid-run).
// --topic-pattern R reads the topics matching R instead; --fail-on V makes the deserializer
// reject records whose value is V. --consumer-properties k=v,k=v passes librdkafka consumer
// properties to the source (e.g. small fetches, so that a broker outage stalls reading);
// --producer-properties k=v,k=v passes properties to the Kafka sink (e.g.
// sluice.marker.commit-outside-transaction=true against the mock cluster).
#include <sluice/connectors/files.h>
#include <sluice/connectors/kafka.h>
#include <sluice/sluice.h>

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace {
namespace kafka = sluice::kafka;
using KeyCount = std::pair<std::string, int64_t>;

class Count final : public sluice::KeyedProcessFunction<std::string, std::string, std::string> {
 public:
  void open(sluice::RuntimeContext& ctx) override {
    count_ = &ctx.get_state(sluice::ValueStateDescriptor<int64_t>("count"));
  }
  void process_element(const std::string& key, Context&,
                       sluice::Collector<std::string>& out) override {
    int64_t n = count_->value() + 1;
    count_->update(n);
    out.collect(key + "," + std::to_string(n));
  }

 private:
  sluice::ValueState<int64_t>* count_ = nullptr;
};

// `k=v,k=v` as a map; `flag` names the argument in the error.
std::map<std::string, std::string> ParseProperties(const std::string& flag,
                                                   const std::string& props) {
  std::map<std::string, std::string> out;
  for (size_t at = 0; at < props.size();) {
    size_t end = props.find(',', at);
    if (end == std::string::npos) end = props.size();
    std::string kv = props.substr(at, end - at);
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw std::invalid_argument("--" + flag + ": '" + kv + "' is not key=value");
    }
    out[kv.substr(0, eq)] = kv.substr(eq + 1);
    at = end + 1;
  }
  return out;
}
}  // namespace

SLUICE_JOB(env, args) {
  std::string servers = args.required("bootstrap-servers");
  int64_t throttle_us = args.get_int("throttle-us", 0);
  std::string fail_on = args.get("fail-on", "");
  auto source =
      kafka::KafkaSource<std::string>::builder()
          .set_bootstrap_servers(servers)
          .set_group_id(args.get("group-id", "kafka-count"))
          .set_value_only_deserializer([fail_on](std::string_view v) {
            if (!fail_on.empty() && v == fail_on) {
              throw std::invalid_argument("the value '" + std::string(v) + "' is rejected");
            }
            return std::string(v);
          });
  if (args.has("topic-pattern")) {
    source.set_topic_pattern(args.get("topic-pattern"));
  } else {
    source.set_topics({args.required("topic")});
  }
  if (args.has("discovery-interval-ms")) {
    source.set_property("partition.discovery.interval.ms", args.get("discovery-interval-ms"));
  }
  for (const auto& [k, v] :
       ParseProperties("consumer-properties", args.get("consumer-properties", ""))) {
    source.set_property(k, v);
  }
  std::string start = args.get("starting-offsets", "earliest");
  if (start == "latest") {
    source.set_starting_offsets(kafka::OffsetsInitializer::latest());
  } else if (start == "committed") {
    source.set_starting_offsets(kafka::OffsetsInitializer::committed_offsets());
  } else if (start.rfind("timestamp:", 0) == 0) {
    source.set_starting_offsets(kafka::OffsetsInitializer::timestamp(std::stoll(start.substr(10))));
  }
  if (!args.get_bool("unbounded", false)) source.set_bounded(kafka::OffsetsInitializer::latest());

  auto counts = env.add_source(source.build())
                    .map([throttle_us](const std::string& v) {
                      if (throttle_us > 0) {
                        std::this_thread::sleep_for(std::chrono::microseconds(throttle_us));
                      }
                      return v.substr(0, v.find(','));
                    })
                    .name("Key")
                    .key_by([](const std::string& k) { return k; })
                    .process(Count())
                    .name("Count");
  if (args.has("output-topic")) {
    std::string g = args.get("delivery-guarantee", "at-least-once");
    auto sink = kafka::KafkaSink<std::string>::builder()
                    .set_bootstrap_servers(servers)
                    .set_topic(args.get("output-topic"))
                    .set_value_serializer([](const std::string& s) { return s; });
    if (g == "exactly-once") {
      sink.set_delivery_guarantee(kafka::DeliveryGuarantee::kExactlyOnce);
      if (args.has("transactional-id-prefix")) {
        sink.set_transactional_id_prefix(args.get("transactional-id-prefix"));
      }
    } else if (g == "at-least-once") {
      sink.set_delivery_guarantee(kafka::DeliveryGuarantee::kAtLeastOnce);
    }
    for (const auto& [k, v] :
         ParseProperties("producer-properties", args.get("producer-properties", ""))) {
      sink.set_property(k, v);
    }
    counts.add_sink(sink.build());
  } else {
    counts.sink_to(sluice::files::ExactlyOnceTextFileSink<std::string>(args.required("output")));
  }
}
