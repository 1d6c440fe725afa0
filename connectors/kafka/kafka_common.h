// What the Kafka source and sink share, on librdkafka: configuration and error wording.
#pragma once

#include <librdkafka/rdkafka.h>

#include <map>
#include <memory>
#include <string>

namespace sluice::kafka::internal {

struct RdKafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
  void operator()(rd_kafka_consumer_group_metadata_t* m) const {
    rd_kafka_consumer_group_metadata_destroy(m);
  }
};
using KafkaHandle = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;
using TopicHandle = std::unique_ptr<rd_kafka_topic_t, RdKafkaDeleter>;
using PartitionList = std::unique_ptr<rd_kafka_topic_partition_list_t, RdKafkaDeleter>;
using KafkaError = std::unique_ptr<rd_kafka_error_t, RdKafkaDeleter>;

// Sets `key` to `value`; throws std::invalid_argument naming the property and librdkafka's
// reason when it refuses.
void SetProperty(rd_kafka_conf_t* conf, const std::string& key, const std::string& value);

// A client of `type` with the properties set in order; throws naming the property or the reason.
KafkaHandle NewClient(rd_kafka_type_t type, const std::map<std::string, std::string>& properties);

// Topic-partition lists.
PartitionList NewPartitionList(int size = 1);

}  // namespace sluice::kafka::internal
