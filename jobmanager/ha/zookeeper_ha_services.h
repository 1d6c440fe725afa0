// HighAvailabilityServices on ZooKeeper and high-availability.storageDir. ZooKeeper holds small
// nodes that point at files in the storage folder (a folder every JobManager reaches):
//
//   <cluster path>/jobgraphs/<job id>            -> <storage>/jobgraphs/<job id>   (PersistedJob)
//   <cluster path>/jobresults/<job id>           the job's final state: it is never recovered
//   <cluster path>/checkpoints/<job id>/<id, 19 digits>
//                                                -> <storage>/checkpoints/<job id>/<id>/_metadata
//   <cluster path>/checkpoint-counter/<job id>   the next checkpoint id, in decimal
//   libraries: <storage>/blobs/<sha256>
// where <storage> is high-availability.storageDir joined with the cluster path. A file is
// written whole before the node that points at it, so a node never names a partial file.
//
// Every write goes through the JobManager's ZooKeeper session: once it has expired (and another
// JobManager may lead) they fail, so an old leader cannot add a checkpoint (and so never tells
// sinks to commit one). The calls it makes to TaskManagers are fenced by them (TaskManager::Fence).
#pragma once

#include <memory>
#include <string>

#include "jobmanager/ha/ha_options.h"
#include "jobmanager/ha/zookeeper_client.h"
#include "jobmanager/high_availability.h"

namespace sluice::ha {

class ZooKeeperHaServices final : public HighAvailabilityServices {
 public:
  // Creates the nodes and folders it needs. `client` must outlive the services. Errors name the
  // node (and quorum) or the folder.
  static absl::StatusOr<std::unique_ptr<ZooKeeperHaServices>> Create(ZooKeeperClient* client,
                                                                     const HaOptions& options);

  absl::Status PutJob(const proto::PersistedJob& job, const std::string& library_path) override;
  absl::Status JobEnded(const std::string& job_id, proto::JobState state) override;
  absl::StatusOr<std::vector<RecoveredJob>> RecoverJobs() override;
  absl::StatusOr<std::unique_ptr<CompletedCheckpointStore>> CreateCheckpointStore(
      const std::string& job_id, size_t num_retained) override;
  absl::StatusOr<std::unique_ptr<CheckpointIdCounter>> CreateCheckpointIdCounter(
      const std::string& job_id) override;

  // Where the library with this hash is kept.
  std::string LibraryPath(const std::string& sha256) const;

 private:
  ZooKeeperHaServices(ZooKeeperClient* client, std::string nodes, std::string storage)
      : zk_(client), nodes_(std::move(nodes)), storage_(std::move(storage)) {}
  std::string Node(const std::string& kind, const std::string& job_id) const {
    return nodes_ + "/" + kind + "/" + job_id;
  }

  ZooKeeperClient* const zk_;
  const std::string nodes_;    // the cluster path
  const std::string storage_;  // storageDir joined with the cluster path
};

}  // namespace sluice::ha
