// The environment's graph building that knows no record type, compiled once into the SDK
// library.
#include "sluice/datastream.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace sluice {

internal::Node* StreamExecutionEnvironment::add_node(std::unique_ptr<internal::Node> node) {
  node->id = static_cast<int>(nodes_.size());
  internal::Node* raw = node.get();
  nodes_.push_back(std::move(node));
  return raw;
}

int StreamExecutionEnvironment::add_node(std::unique_ptr<internal::Node> node, std::string name,
                                         std::string kind, std::vector<internal::InputSpec> inputs,
                                         bool timestamped) {
  node->name = std::move(name);
  node->kind = std::move(kind);
  node->inputs = std::move(inputs);
  node->timestamped = timestamped;
  return add_node(std::move(node))->id;
}

void internal::set_uid(Node& node, std::string uid) {
  if (uid.empty()) throw std::invalid_argument("the uid of '" + node.name + "' is empty");
  node.uid = std::move(uid);
}

std::vector<internal::InputSpec> StreamExecutionEnvironment::edges_from(
    const std::vector<int>& ids, internal::Partitioner p,
    const internal::WriterFactory& writer) const {
  std::vector<internal::InputSpec> specs;
  for (int id : ids) {
    internal::InputSpec spec;
    spec.node = id;
    spec.partitioner = p;
    spec.make_writer = writer;
    spec.timestamped = nodes_[id]->timestamped;
    specs.push_back(std::move(spec));
  }
  return specs;
}

bool StreamExecutionEnvironment::any_timestamped(const std::vector<int>& ids) const {
  for (int id : ids) {
    if (nodes_[id]->timestamped) return true;
  }
  return false;
}

DataStream<int64_t> StreamExecutionEnvironment::generate_sequence(int64_t from, int64_t to) {
  if (to < from) {
    throw std::invalid_argument("generate_sequence: 'to' (" + std::to_string(to) +
                                ") is below 'from' (" + std::to_string(from) + ")");
  }
  return add_source_node<int64_t>(SequenceSource(from, to), "Sequence Source", true);
}

}  // namespace sluice
