// Channel choice of the network partitioners that do not look at the record.
#include "sluice/internal/collectors.h"

#include <stdexcept>
#include <string>

namespace sluice::internal {

ChannelCycle ChannelCycle::of(Partitioner p, const TaskInfo& info, int num_channels) {
  ChannelCycle c;
  switch (p) {
    case Partitioner::kForward:
    case Partitioner::kRescale: {
      SubtaskRange range = pointwise_consumers(info.subtask_index, info.parallelism, num_channels);
      c.begin = range.begin;
      c.end = range.end;
      c.next = range.begin;
      return c;
    }
    case Partitioner::kRebalance:
      c.begin = 0;
      c.end = num_channels;
      c.next = info.subtask_index % num_channels;
      return c;
    case Partitioner::kBroadcast:
      c.all = true;
      return c;
    default:
      throw std::logic_error(std::string("no writer for partitioner ") + partitioner_name(p));
  }
}

}  // namespace sluice::internal
