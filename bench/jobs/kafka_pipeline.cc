// Benchmark job: a stateless Kafka-to-Kafka pipeline, every record written unchanged.
//
//   Kafka source (bounded, earliest to the offsets latest at the start) -> map (identity)
//     -> Kafka sink, all chained into one task per subtask
//
//   --bootstrap-servers S     the Kafka cluster (required)
//   --input-topic T           read from (required)
//   --output-topic T          written to (required)
//   --delivery-guarantee G    none or at-least-once (default none)
//   --parallelism P           of every operator (default 1)
//   --producer-property K=V[,K=V...]   librdkafka properties of the sink
//   --consumer-property K=V[,K=V...]   librdkafka properties of the source
//
// The values are bytes (std::string); records carry no key. The job FINISHES when every partition
// has been read up to the offsets that were latest when it started.
#include <sluice/connectors/kafka.h>
#include <sluice/sluice.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

namespace kafka = sluice::kafka;

// "k1=v1,k2=v2" as pairs; throws naming the bad part.
std::vector<std::pair<std::string, std::string>> ParseProperties(const std::string& list) {
  std::vector<std::pair<std::string, std::string>> out;
  size_t i = 0;
  while (i < list.size()) {
    size_t end = list.find(',', i);
    if (end == std::string::npos) end = list.size();
    std::string kv = list.substr(i, end - i);
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw std::invalid_argument("a property must be key=value, got '" + kv + "'");
    }
    out.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
    i = end + 1;
  }
  return out;
}

}  // namespace

SLUICE_JOB(env, args) {
  const std::string servers = args.required("bootstrap-servers");
  const std::string guarantee_name = args.get("delivery-guarantee", "none");
  kafka::DeliveryGuarantee guarantee;
  if (guarantee_name == "none") {
    guarantee = kafka::DeliveryGuarantee::kNone;
  } else if (guarantee_name == "at-least-once") {
    guarantee = kafka::DeliveryGuarantee::kAtLeastOnce;
  } else {
    throw std::invalid_argument("--delivery-guarantee must be none or at-least-once, got '" +
                                guarantee_name + "'");
  }
  const int parallelism = static_cast<int>(args.get_int("parallelism", 1));

  auto source = kafka::KafkaSource<std::string>::builder()
                    .set_bootstrap_servers(servers)
                    .set_topics({args.required("input-topic")})
                    .set_group_id("sluice-kafka-bench-pipeline")
                    .set_starting_offsets(kafka::OffsetsInitializer::earliest())
                    .set_bounded(kafka::OffsetsInitializer::latest())
                    .set_deserializer(kafka::string_deserializer());
  for (const auto& [k, v] : ParseProperties(args.get("consumer-property", ""))) {
    source.set_property(k, v);
  }
  auto sink = kafka::KafkaSink<std::string>::builder()
                  .set_bootstrap_servers(servers)
                  .set_topic(args.required("output-topic"))
                  .set_value_serializer([](const std::string& s) { return s; })
                  .set_delivery_guarantee(guarantee);
  for (const auto& [k, v] : ParseProperties(args.get("producer-property", ""))) {
    sink.set_property(k, v);
  }

  env.set_job_name("bench: Kafka pipeline");
  env.set_parallelism(parallelism);
  env.add_source(source.build(), "Kafka input")
      .map([](std::string&& v) { return std::move(v); })
      .name("Identity")
      .add_sink(sink.build(), "Kafka output");
}
