// Word count from a Kafka topic to a Kafka topic.
//
//   sluice run -D execution.checkpointing.interval=1s build/examples/libkafka_wordcount.so --
//       --bootstrap-servers 127.0.0.1:9092 --input-topic lines --output-topic counts
//       [--delivery-guarantee none|at-least-once|exactly-once] [--bounded]
//       [--producer-properties k=v,k=v]
//
// Each record of --input-topic is a line of text; each word's rolling count goes to
// --output-topic as a record with the word as key and `word,count` as value (the largest count of
// a word is its total). --producer-properties sets properties of the Kafka sink; against
// sluice-kafka-dev's mock cluster, exactly once needs
// sluice.marker.commit-outside-transaction=true.
#include <sluice/connectors/kafka.h>
#include <sluice/sluice.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace {
namespace kafka = sluice::kafka;
using WordCount = std::pair<std::string, int64_t>;
bool IsSeparator(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

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
}  // namespace

SLUICE_JOB(env, args) {
  std::string servers = args.required("bootstrap-servers");
  std::string guarantee_name = args.get("delivery-guarantee", "at-least-once");
  kafka::DeliveryGuarantee guarantee;
  if (guarantee_name == "none") {
    guarantee = kafka::DeliveryGuarantee::kNone;
  } else if (guarantee_name == "at-least-once") {
    guarantee = kafka::DeliveryGuarantee::kAtLeastOnce;
  } else if (guarantee_name == "exactly-once") {
    guarantee = kafka::DeliveryGuarantee::kExactlyOnce;
  } else {
    throw std::invalid_argument(
        "--delivery-guarantee must be none, at-least-once or exactly-once, got '" + guarantee_name +
        "'");
  }
  auto source = kafka::KafkaSource<std::string>::builder()
                    .set_bootstrap_servers(servers)
                    .set_topics({args.required("input-topic")})
                    .set_group_id(args.get("group-id", "sluice-kafka-wordcount"))
                    .set_deserializer(kafka::string_deserializer());
  if (args.get_bool("bounded", false)) source.set_bounded(kafka::OffsetsInitializer::latest());
  auto sink = kafka::KafkaSink<WordCount>::builder()
                  .set_bootstrap_servers(servers)
                  .set_topic(args.required("output-topic"))
                  .set_key_serializer([](const WordCount& wc) { return wc.first; })
                  .set_value_serializer([](const WordCount& wc) {
                    return wc.first + "," + std::to_string(wc.second);
                  })
                  .set_delivery_guarantee(guarantee);
  if (guarantee == kafka::DeliveryGuarantee::kExactlyOnce) {
    sink.set_transactional_id_prefix(args.get("transactional-id-prefix", "sluice-wordcount"));
  }
  SetProducerProperties(sink, args.get("producer-properties", ""));

  env.set_job_name("Kafka WordCount");
  env.add_source(source.build())
      .flat_map([](const std::string& line, sluice::Collector<WordCount>& out) {
        size_t i = 0, n = line.size();
        while (i < n) {
          while (i < n && IsSeparator(line[i])) ++i;
          size_t start = i;
          while (i < n && !IsSeparator(line[i])) ++i;
          if (i > start) out.collect(WordCount(line.substr(start, i - start), 1));
        }
      })
      .name("Tokenizer")
      .key_by([](const WordCount& wc) { return wc.first; })
      .sum<1>()
      .add_sink(sink.build());
}
