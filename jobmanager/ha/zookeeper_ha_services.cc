#include "jobmanager/ha/zookeeper_ha_services.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/checkpoint_storage.h"
#include "common/ids.h"
#include "common/job_states.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace sluice::ha {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("cannot read '", path, "'"));
  return s.str();
}

// Creates `path` with `data`, or replaces the data of the node already there.
absl::Status Upsert(ZooKeeperClient* zk, const std::string& path, const std::string& data) {
  auto created = zk->Create(path, data, CreateMode::kPersistent);
  if (created.ok()) return absl::OkStatus();
  if (created.status().code() != absl::StatusCode::kAlreadyExists) return created.status();
  return zk->Set(path, data);
}

// Deletes a node; one already gone is fine.
absl::Status DeleteIfThere(ZooKeeperClient* zk, const std::string& path) {
  absl::Status s = zk->Delete(path);
  return s.code() == absl::StatusCode::kNotFound ? absl::OkStatus() : s;
}

// Checkpoint nodes are named by the id in 19 digits, so that names sort as ids do.
std::string CheckpointNodeName(int64_t id) {
  char name[24];
  std::snprintf(name, sizeof name, "%019" PRId64, id);
  return name;
}

// The retained completed checkpoints of one job: each is written as <dir>/<id>/_metadata, then
// named by a node under `node`; subsumed ones lose their node, then their file.
class ZooKeeperCompletedCheckpointStore final : public CompletedCheckpointStore {
 public:
  ZooKeeperCompletedCheckpointStore(ZooKeeperClient* zk, std::string node, std::string dir,
                                    size_t num_retained)
      : zk_(zk),
        node_(std::move(node)),
        dir_(std::move(dir)),
        num_retained_(std::max<size_t>(num_retained, 1)) {}

  // Reads back the newest `num_retained` checkpoints the nodes name, oldest first, and removes
  // the nodes (and files) of older ones. A retained checkpoint that cannot be read is an error
  // naming its node and file: falling back to an older one could repeat output its sinks
  // committed already.
  absl::Status Load() {
    ASSIGN_OR_RETURN(std::vector<std::string> names, zk_->Children(node_));
    std::sort(names.begin(), names.end());
    const size_t first = names.size() > num_retained_ ? names.size() - num_retained_ : 0;
    for (size_t i = 0; i < names.size(); ++i) {
      const std::string node = node_ + "/" + names[i];
      ASSIGN_OR_RETURN(std::string pointer, zk_->Get(node));
      if (i < first) {
        // Subsumed, left by a leader that could not remove it.
        if (DeleteIfThere(zk_, node).ok()) {
          std::error_code ec;
          fs::remove_all(fs::path(pointer).parent_path(), ec);
        }
        continue;
      }
      auto meta = ReadMetadata(pointer);
      if (!meta.ok()) {
        return absl::DataLossError(absl::StrCat("completed checkpoint at ZooKeeper node ", node,
                                                " cannot be read: ", meta.status().message()));
      }
      checkpoints_.push_back(std::move(*meta));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<proto::CheckpointMetadata>> Add(
      proto::CheckpointMetadata checkpoint) override {
    const std::string name = CheckpointNodeName(checkpoint.checkpoint_id());
    const std::string folder = absl::StrCat(dir_, "/", checkpoint.checkpoint_id());
    std::error_code ec;
    fs::create_directories(folder, ec);
    RETURN_IF_ERROR(WriteMetadata(folder, checkpoint));
    auto created = zk_->Create(node_ + "/" + name, folder + "/_metadata", CreateMode::kPersistent);
    // On an error the file stays: with the connection lost the create may still have been
    // applied, and then the node names it.
    if (!created.ok()) return created.status();
    checkpoints_.push_back(std::move(checkpoint));
    std::vector<proto::CheckpointMetadata> subsumed;
    while (checkpoints_.size() > num_retained_) {
      const int64_t id = checkpoints_.front().checkpoint_id();
      absl::Status s = DeleteIfThere(zk_, node_ + "/" + CheckpointNodeName(id));
      if (!s.ok()) {
        // Left for the next leader's recovery, which keeps only the newest anyway.
        spdlog::warn("cannot remove subsumed checkpoint {}'s node: {}", id,
                     std::string(s.message()));
      } else {
        fs::remove_all(absl::StrCat(dir_, "/", id), ec);
      }
      subsumed.push_back(std::move(checkpoints_.front()));
      checkpoints_.pop_front();
    }
    return subsumed;
  }

  const proto::CheckpointMetadata* Latest() const override {
    return checkpoints_.empty() ? nullptr : &checkpoints_.back();
  }

  std::vector<const proto::CheckpointMetadata*> Retained() const override {
    std::vector<const proto::CheckpointMetadata*> out;
    for (const auto& c : checkpoints_) out.push_back(&c);
    return out;
  }

 private:
  ZooKeeperClient* const zk_;
  const std::string node_;
  const std::string dir_;
  const size_t num_retained_;
  std::deque<proto::CheckpointMetadata> checkpoints_;
};

// The next checkpoint id in a node. Only the leader writes it, so the value it last wrote (or
// read at recovery) is the node's.
class ZooKeeperCheckpointIdCounter final : public CheckpointIdCounter {
 public:
  ZooKeeperCheckpointIdCounter(ZooKeeperClient* zk, std::string node, int64_t next)
      : zk_(zk), node_(std::move(node)), next_(next) {}

  absl::StatusOr<int64_t> GetAndIncrement() override {
    RETURN_IF_ERROR(zk_->Set(node_, std::to_string(next_ + 1)));
    return next_++;
  }
  int64_t Get() const override { return next_; }
  absl::Status SetCount(int64_t next) override {
    RETURN_IF_ERROR(zk_->Set(node_, std::to_string(next)));
    next_ = next;
    return absl::OkStatus();
  }

 private:
  ZooKeeperClient* const zk_;
  const std::string node_;
  int64_t next_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ZooKeeperHaServices>> ZooKeeperHaServices::Create(
    ZooKeeperClient* client, const HaOptions& options) {
  std::string storage = options.storage_dir + options.cluster_path;
  std::unique_ptr<ZooKeeperHaServices> services(
      new ZooKeeperHaServices(client, options.cluster_path, storage));
  for (const char* kind : {"jobgraphs", "jobresults", "checkpoints", "checkpoint-counter"}) {
    RETURN_IF_ERROR(client->CreateParents(JoinPath(options.cluster_path, kind)));
  }
  for (const char* folder : {"jobgraphs", "blobs", "checkpoints"}) {
    std::error_code ec;
    fs::create_directories(absl::StrCat(storage, "/", folder), ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("configuration key 'high-availability.storageDir': cannot create '", storage,
                       "/", folder, "': ", ec.message()));
    }
  }
  return services;
}

std::string ZooKeeperHaServices::LibraryPath(const std::string& sha256) const {
  return absl::StrCat(storage_, "/blobs/", sha256);
}

absl::Status ZooKeeperHaServices::PutJob(const proto::PersistedJob& job,
                                         const std::string& library_path) {
  const std::string& sha = job.request().library_sha256();
  std::error_code ec;
  if (!fs::exists(LibraryPath(sha), ec)) {
    RETURN_IF_ERROR(CopyFileDurably(library_path, LibraryPath(sha), /*sync=*/true));
  }
  std::string file = absl::StrCat(storage_, "/jobgraphs/", job.job_id());
  RETURN_IF_ERROR(WriteFileDurably(file, job.SerializeAsString(), /*sync=*/true));
  return Upsert(zk_, Node("jobgraphs", job.job_id()), file);
}

absl::Status ZooKeeperHaServices::JobEnded(const std::string& job_id, proto::JobState state) {
  // The result first: from here on no leader recovers the job, whatever is left below. A result
  // recorded before stays (this may be a cleanup, or a second call).
  auto result = zk_->Create(Node("jobresults", job_id), std::string(JobStateName(state)),
                            CreateMode::kPersistent);
  if (!result.ok() && result.status().code() != absl::StatusCode::kAlreadyExists) {
    return result.status();
  }
  RETURN_IF_ERROR(DeleteIfThere(zk_, Node("jobgraphs", job_id)));
  std::error_code ec;
  fs::remove(absl::StrCat(storage_, "/jobgraphs/", job_id), ec);
  const std::string checkpoints = Node("checkpoints", job_id);
  auto names = zk_->Children(checkpoints);
  if (names.ok()) {
    for (const std::string& n : *names) RETURN_IF_ERROR(DeleteIfThere(zk_, checkpoints + "/" + n));
  } else if (names.status().code() != absl::StatusCode::kNotFound) {
    return names.status();
  }
  RETURN_IF_ERROR(DeleteIfThere(zk_, checkpoints));
  fs::remove_all(absl::StrCat(storage_, "/checkpoints/", job_id), ec);
  return DeleteIfThere(zk_, Node("checkpoint-counter", job_id));
}

absl::StatusOr<std::vector<HighAvailabilityServices::RecoveredJob>>
ZooKeeperHaServices::RecoverJobs() {
  ASSIGN_OR_RETURN(std::vector<std::string> ids, zk_->Children(nodes_ + "/jobgraphs"));
  std::sort(ids.begin(), ids.end());
  std::vector<RecoveredJob> out;
  for (const std::string& id : ids) {
    ASSIGN_OR_RETURN(bool ended, zk_->Exists(Node("jobresults", id)));
    if (ended) {
      // Its leader recorded the end but died before removing the rest.
      spdlog::info("job {} has ended already; removing what is left of it", id);
      absl::Status s = JobEnded(id, proto::JOB_FINISHED);
      if (!s.ok()) spdlog::warn("job {}: {}", id, std::string(s.message()));
      continue;
    }
    auto pointer = zk_->Get(Node("jobgraphs", id));
    if (!pointer.ok()) {
      // (NotFound: another JobManager removed it meanwhile.)
      spdlog::error("job {} cannot be recovered: {}", id, std::string(pointer.status().message()));
      continue;
    }
    RecoveredJob job;
    auto bytes = ReadWholeFile(*pointer);
    if (!bytes.ok() || !job.job.ParseFromString(*bytes) || job.job.job_id() != id) {
      spdlog::error("job {} cannot be recovered: its graph file '{}' (named by node {}) {}", id,
                    *pointer, Node("jobgraphs", id),
                    bytes.ok() ? "does not parse" : std::string(bytes.status().message()));
      continue;
    }
    job.library_path = LibraryPath(job.job.request().library_sha256());
    out.push_back(std::move(job));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<CompletedCheckpointStore>>
ZooKeeperHaServices::CreateCheckpointStore(const std::string& job_id, size_t num_retained) {
  RETURN_IF_ERROR(zk_->CreateParents(Node("checkpoints", job_id)));
  auto store = std::make_unique<ZooKeeperCompletedCheckpointStore>(
      zk_, Node("checkpoints", job_id), absl::StrCat(storage_, "/checkpoints/", job_id),
      num_retained);
  RETURN_IF_ERROR(store->Load());
  return store;
}

absl::StatusOr<std::unique_ptr<CheckpointIdCounter>> ZooKeeperHaServices::CreateCheckpointIdCounter(
    const std::string& job_id) {
  const std::string node = Node("checkpoint-counter", job_id);
  int64_t next = 1;
  auto value = zk_->Get(node);
  if (value.ok()) {
    if (!absl::SimpleAtoi(*value, &next) || next < 1) {
      return absl::DataLossError(
          absl::StrCat("ZooKeeper node ", node, " holds '", *value, "', not a checkpoint id"));
    }
  } else if (value.status().code() == absl::StatusCode::kNotFound) {
    RETURN_IF_ERROR(Upsert(zk_, node, "1"));
  } else {
    return value.status();
  }
  return std::make_unique<ZooKeeperCheckpointIdCounter>(zk_, node, next);
}

}  // namespace sluice::ha
