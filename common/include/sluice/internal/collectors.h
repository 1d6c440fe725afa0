// Collectors that connect operators: fan-out, discard, and the network partitioners, which
// serialize records into a RecordWriter's channels.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/functions.h"
#include "sluice/internal/partitioner.h"
#include "sluice/internal/runtime.h"
#include "sluice/keys.h"
#include "sluice/serializer.h"

namespace sluice::internal {

// Where a collector counts the records it passes on (metrics; null: it counts nothing): a
// network writer its edge's records, a fan-out its operator's records out.
struct OutputCounters {
  SingleWriterCounter* records = nullptr;
  void count() {
    if (records) records->add(1);
  }
};

// A type-erased owning handle to a Collector<T>.
struct ErasedCollector {
  std::unique_ptr<CollectorBase> owner;
  void* ptr = nullptr;                 // Collector<T>*
  OutputCounters* counters = nullptr;  // for the collectors that count
};

template <class T>
ErasedCollector erase_collector(std::unique_ptr<Collector<T>> c,
                                OutputCounters* counters = nullptr) {
  ErasedCollector e;
  e.ptr = static_cast<void*>(c.get());
  e.counters = counters;
  e.owner = std::move(c);
  return e;
}

template <class T>
class DiscardCollector final : public Collector<T> {
 public:
  void emit(T&&) override {}
};

template <class T>
class FanOutCollector final : public Collector<T> {
 public:
  explicit FanOutCollector(std::vector<Collector<T>*> outs) : outs_(std::move(outs)) {}
  void emit(T&& v) override {
    counters.count();
    for (size_t i = 0; i + 1 < outs_.size(); ++i) outs_[i]->emit(T(v));
    outs_.back()->emit(std::move(v));
  }
  OutputCounters counters;

 private:
  std::vector<Collector<T>*> outs_;
};

// Writes records to one network edge. On an edge whose records carry timestamps, `timestamp`
// points at the chain's current record timestamp, written (8 bytes) before each record.
template <class T>
class WriterCollector : public Collector<T> {
 protected:
  WriterCollector(RecordWriter* w, const int64_t* timestamp) : w_(w), timestamp_(timestamp) {}

 public:
  OutputCounters counters;  // counted once per record, whatever the number of channels

 protected:
  void write(int channel, const T& v) {
    std::string& buf = w_->buffer(channel);
    DataOutput out(buf);
    if (timestamp_) Serializer<int64_t>::write(out, *timestamp_);
    Serializer<T>::write(out, v);
    w_->commit(channel);
  }
  RecordWriter* w_;
  const int64_t* timestamp_;
};

// The handle of a network writer, which counts what it writes.
template <class T>
ErasedCollector erase_writer(std::unique_ptr<WriterCollector<T>> c) {
  OutputCounters* counters = &c->counters;
  return erase_collector<T>(std::move(c), counters);
}

// The channels of a forward, rescale, rebalance or broadcast edge: forward and rescale go round
// robin over the consumers this producer is connected to, rebalance over all of them (starting at
// the producer's index), broadcast to every one.
struct ChannelCycle {
  // Throws std::logic_error for a partitioner that picks channels by record (hash, custom).
  static ChannelCycle of(Partitioner p, const TaskInfo& info, int num_channels);
  bool all = false;  // broadcast
  int begin = 0;
  int end = 1;
  int next = 0;
};

// Writes to the channels a ChannelCycle picks: what the records need of their type is only their
// serialization, so one class per record type serves the four partitioners.
template <class T>
class CycleCollector final : public WriterCollector<T> {
 public:
  CycleCollector(RecordWriter* w, ChannelCycle cycle, const int64_t* ts)
      : WriterCollector<T>(w, ts), cycle_(cycle) {}
  void emit(T&& v) override {
    this->counters.count();
    if (cycle_.all) {
      for (int c = 0; c < this->w_->num_channels(); ++c) this->write(c, v);
      return;
    }
    this->write(cycle_.next, v);
    if (++cycle_.next == cycle_.end) cycle_.next = cycle_.begin;
  }

 private:
  ChannelCycle cycle_;
};

// The writer of a forward, rescale, rebalance or broadcast edge (a WriterFactory).
template <class T>
ErasedCollector make_cycle_writer(RecordWriter* w, Partitioner p, const TaskInfo& info,
                                  const int64_t* timestamp) {
  return erase_writer<T>(std::make_unique<CycleCollector<T>>(
      w, ChannelCycle::of(p, info, w->num_channels()), timestamp));
}

template <class T, class KS>
class KeyGroupCollector final : public WriterCollector<T> {
 public:
  KeyGroupCollector(RecordWriter* w, const TaskInfo& info, const int64_t* ts, KS ks)
      : WriterCollector<T>(w, ts), ks_(std::move(ks)), max_parallelism_(info.max_parallelism) {}
  void emit(T&& v) override {
    this->counters.count();
    using K = std::decay_t<std::invoke_result_t<KS&, const T&>>;
    int kg = key_group_for_hash(KeyHash<K>{}(ks_(static_cast<const T&>(v))), max_parallelism_);
    this->write(subtask_for_key_group(kg, max_parallelism_, this->w_->num_channels()), v);
  }

 private:
  KS ks_;
  int max_parallelism_;
};

template <class T, class P, class KS>
class CustomCollector final : public WriterCollector<T> {
 public:
  CustomCollector(RecordWriter* w, const int64_t* ts, P p, KS ks)
      : WriterCollector<T>(w, ts), p_(std::move(p)), ks_(std::move(ks)) {}
  void emit(T&& v) override {
    this->counters.count();
    int n = this->w_->num_channels();
    int c = static_cast<int>(p_(ks_(static_cast<const T&>(v)), n));
    if (c < 0 || c >= n) {
      throw std::out_of_range("custom partitioner returned channel " + std::to_string(c) + " of " +
                              std::to_string(n));
    }
    this->write(c, v);
  }

 private:
  P p_;
  KS ks_;
};
}  // namespace sluice::internal
