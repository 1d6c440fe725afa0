// The built-in sources, as SourceFunctions: a collection and a number sequence. Files and sockets
// are connectors (connectors/).
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "sluice/functions.h"

namespace sluice {

// A GNU extension, named once so that users compiling with -Wpedantic see no warning.
__extension__ using Int128 = __int128;

// The elements in order. Operator state: the index of the next element to emit.
template <class T>
class CollectionSource final : public SourceFunction<T> {
 public:
  explicit CollectionSource(std::vector<T> elements) : elements_(std::move(elements)) {}
  bool is_parallel() const override { return false; }
  void open(RuntimeContext& ctx) override {
    state_ = &ctx.get_operator_list_state(ListStateDescriptor<uint64_t>("next-index"));
    next_ = 0;
    if (ctx.is_restored()) {
      // Non-parallel: one element, stored by the only subtask.
      std::vector<uint64_t> stored = state_->get();
      if (!stored.empty()) next_ = *std::min_element(stored.begin(), stored.end());
    }
  }
  void run(typename SourceFunction<T>::SourceContext& ctx) override {
    for (; next_ < elements_.size(); ++next_) {
      if (!this->is_running()) return;
      ctx.collect(elements_[next_]);  // a checkpoint taken in here stores next_: this element
    }
  }
  void snapshot_state(int64_t) override { state_->update({next_}); }

 private:
  std::vector<T> elements_;
  uint64_t next_ = 0;
  OperatorListState<uint64_t>* state_ = nullptr;
};

// from..to inclusive; subtask i of p emits the i-th contiguous share.
//
// Operator state: the ranges still to emit, as [next, last] pairs (inclusive, as an exclusive
// end would overflow at INT64_MAX). After a restore at another parallelism each subtask emits
// the ranges it was given, so every number is emitted exactly once over all subtasks.
class SequenceSource final : public SourceFunction<int64_t> {
 public:
  using Range = std::pair<int64_t, int64_t>;  // [next, last]

  SequenceSource(int64_t from, int64_t to) : from_(from), to_(to) {}
  void open(RuntimeContext& ctx) override;
  // Inline: the record loop, where a job can devirtualize collect() down its chain.
  void run(SourceContext& ctx) override {
    uint64_t k = 0;
    while (!pending_.empty()) {
      Range& r = pending_.front();
      for (;;) {
        if ((k++ & 1023) == 0 && !is_running()) return;
        ctx.collect(int64_t{r.first});  // a checkpoint taken in here stores r: this number on
        if (r.first == r.second) break;
        ++r.first;
      }
      pending_.erase(pending_.begin());
    }
  }
  void snapshot_state(int64_t) override;

 private:
  int64_t from_, to_;
  std::vector<Range> pending_;
  OperatorListState<Range>* state_ = nullptr;
};

}  // namespace sluice
