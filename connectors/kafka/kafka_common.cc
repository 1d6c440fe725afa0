#include "kafka_common.h"

#include <stdexcept>

namespace sluice::kafka::internal {

void SetProperty(rd_kafka_conf_t* conf, const std::string& key, const std::string& value) {
  char err[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
    throw std::invalid_argument("Kafka property '" + key + "' = '" + value + "': " + err);
  }
}

KafkaHandle NewClient(rd_kafka_type_t type, const std::map<std::string, std::string>& properties) {
  std::unique_ptr<rd_kafka_conf_t, RdKafkaDeleter> conf(rd_kafka_conf_new());
  for (const auto& [k, v] : properties) SetProperty(conf.get(), k, v);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof(err));
  if (!rk) throw std::runtime_error(std::string("cannot create a Kafka client: ") + err);
  conf.release();  // owned by rk now
  return KafkaHandle(rk);
}

PartitionList NewPartitionList(int size) {
  return PartitionList(rd_kafka_topic_partition_list_new(size));
}

}  // namespace sluice::kafka::internal
