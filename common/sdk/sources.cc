// The built-in sources compiled once into the SDK library (see sluice/sources.h).
#include "sluice/sources.h"

namespace sluice {

void SequenceSource::open(RuntimeContext& ctx) {
  state_ = &ctx.get_operator_list_state(ListStateDescriptor<Range>("pending-ranges"));
  pending_.clear();
  if (ctx.is_restored()) {
    pending_ = state_->get();
    return;
  }
  // 128-bit arithmetic: to - from + 1 can exceed int64_t (e.g. up to INT64_MAX).
  Int128 n = static_cast<Int128>(to_) - from_ + 1;
  int i = ctx.index_of_this_subtask();
  int p = ctx.number_of_parallel_subtasks();
  Int128 begin = from_ + n * i / p;
  Int128 end = from_ + n * (i + 1) / p;  // exclusive
  if (begin < end) pending_.push_back({static_cast<int64_t>(begin), static_cast<int64_t>(end - 1)});
}
void SequenceSource::snapshot_state(int64_t) { state_->update(pending_); }

}  // namespace sluice
