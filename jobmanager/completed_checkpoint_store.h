// The two small stores a CheckpointCoordinator keeps its durable facts in, as Flink's
// CompletedCheckpointStore and CheckpointIDCounter: the retained completed checkpoints of a job,
// and the next checkpoint id. The standalone implementations keep them in the JobManager's
// memory (the _metadata files the coordinator writes are what outlives the process); high
// availability adds implementations that keep them where a new JobManager finds them.
//
// Threads: not thread-safe; the coordinator calls them under the Dispatcher's lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/checkpoint.pb.h"

namespace sluice {

class CompletedCheckpointStore {
 public:
  virtual ~CompletedCheckpointStore() = default;
  // Adds the newest completed checkpoint and returns those it subsumes (oldest first): the ones
  // past the number to retain, no longer kept. An error leaves the store unchanged.
  virtual absl::StatusOr<std::vector<proto::CheckpointMetadata>> Add(
      proto::CheckpointMetadata checkpoint) = 0;
  // The newest, or null when there is none.
  virtual const proto::CheckpointMetadata* Latest() const = 0;
  // Every retained checkpoint, oldest first.
  virtual std::vector<const proto::CheckpointMetadata*> Retained() const = 0;
};

// Keeps the newest `num_retained` (at least 1) in memory.
class StandaloneCompletedCheckpointStore final : public CompletedCheckpointStore {
 public:
  explicit StandaloneCompletedCheckpointStore(size_t num_retained)
      : num_retained_(num_retained < 1 ? 1 : num_retained) {}
  absl::StatusOr<std::vector<proto::CheckpointMetadata>> Add(
      proto::CheckpointMetadata checkpoint) override;
  const proto::CheckpointMetadata* Latest() const override;
  std::vector<const proto::CheckpointMetadata*> Retained() const override;

 private:
  const size_t num_retained_;
  std::deque<proto::CheckpointMetadata> checkpoints_;
};

class CheckpointIdCounter {
 public:
  virtual ~CheckpointIdCounter() = default;
  // The id for a new checkpoint; the next call returns a larger one.
  virtual absl::StatusOr<int64_t> GetAndIncrement() = 0;
  // The id the next GetAndIncrement returns.
  virtual int64_t Get() const = 0;
  // Numbering goes on from `next` (a restored job continues after its checkpoint's id).
  virtual absl::Status SetCount(int64_t next) = 0;
};

// Counts in memory from 1.
class StandaloneCheckpointIdCounter final : public CheckpointIdCounter {
 public:
  absl::StatusOr<int64_t> GetAndIncrement() override { return next_++; }
  int64_t Get() const override { return next_; }
  absl::Status SetCount(int64_t next) override {
    next_ = next;
    return absl::OkStatus();
  }

 private:
  int64_t next_ = 1;
};

}  // namespace sluice
