#include "jobmanager/completed_checkpoint_store.h"

namespace sluice {

absl::StatusOr<std::vector<proto::CheckpointMetadata>> StandaloneCompletedCheckpointStore::Add(
    proto::CheckpointMetadata checkpoint) {
  checkpoints_.push_back(std::move(checkpoint));
  std::vector<proto::CheckpointMetadata> subsumed;
  while (checkpoints_.size() > num_retained_) {
    subsumed.push_back(std::move(checkpoints_.front()));
    checkpoints_.pop_front();
  }
  return subsumed;
}

const proto::CheckpointMetadata* StandaloneCompletedCheckpointStore::Latest() const {
  return checkpoints_.empty() ? nullptr : &checkpoints_.back();
}

std::vector<const proto::CheckpointMetadata*> StandaloneCompletedCheckpointStore::Retained() const {
  std::vector<const proto::CheckpointMetadata*> out;
  for (const auto& c : checkpoints_) out.push_back(&c);
  return out;
}

}  // namespace sluice
