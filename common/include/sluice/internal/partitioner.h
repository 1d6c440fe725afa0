// How a network edge distributes records over the consumer's subtasks.
#pragma once

namespace sluice::internal {

enum class Partitioner { kDefault, kForward, kRebalance, kRescale, kHash, kBroadcast, kCustom };

inline const char* partitioner_name(Partitioner p) {
  switch (p) {
    case Partitioner::kDefault:
      return "default";
    case Partitioner::kForward:
      return "forward";
    case Partitioner::kRebalance:
      return "rebalance";
    case Partitioner::kRescale:
      return "rescale";
    case Partitioner::kHash:
      return "hash";
    case Partitioner::kBroadcast:
      return "broadcast";
    case Partitioner::kCustom:
      return "custom";
  }
  return "unknown";
}

}  // namespace sluice::internal
