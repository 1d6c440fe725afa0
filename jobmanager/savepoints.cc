#include "jobmanager/savepoints.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/checkpoint_storage.h"
#include "common/ids.h"

namespace sluice {

namespace fs = std::filesystem;

std::string NewSavepointFolder(const std::string& target_directory, const std::string& job_id) {
  return (fs::path(target_directory) / NewInstanceId("savepoint-" + job_id.substr(0, 6))).string();
}

absl::StatusOr<std::string> SavepointTargetDirectory(const Configuration& conf,
                                                     const std::string& requested) {
  std::string dir = requested;
  const char* key = "the requested folder";
  if (dir.empty()) {
    // Flink 1's state.savepoints.dir is another name of this option (common/config.cc).
    key = "execution.checkpointing.savepoint-dir";
    dir = conf.GetString(key);
  }
  if (dir.empty()) {
    return absl::InvalidArgumentError(
        "no folder for the savepoint: name one, or set execution.checkpointing.savepoint-dir");
  }
  if (!fs::path(dir).is_absolute()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the savepoint folder '", dir, "' (", key, ") is not an absolute path"));
  }
  return dir;
}

namespace {

// Moves `from` to `to`, copying when they lie on different file systems.
absl::Status MoveFile(const std::string& from, const std::string& to) {
  if (std::rename(from.c_str(), to.c_str()) == 0) return absl::OkStatus();
  if (errno != EXDEV) {
    return absl::InternalError(
        absl::StrCat("cannot move '", from, "' to '", to, "': ", std::strerror(errno)));
  }
  absl::Status st = CopyFileDurably(from, to, /*sync=*/true);
  if (!st.ok()) return st;
  std::error_code ec;
  fs::remove(from, ec);
  return absl::OkStatus();
}

// Fills `tmp` and renames it to sp.dir once whole, so that a savepoint folder always holds a
// whole savepoint.
absl::Status Relocate(CheckpointCoordinator::ToWrite& sp, const std::string& tmp) {
  const proto::CheckpointMetadata& m = sp.metadata;
  const std::string own = absl::StrCat("chk-", m.checkpoint_id(), "/");
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot create savepoint folder '", tmp, "': ", ec.message()));
  }
  for (proto::StateHandle& h : *sp.metadata.mutable_handles()) {
    if (h.shared_files_size() > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "vertex ", h.vertex_id(), " subtask ", h.subtask(),
          " finished before the savepoint with incremental RocksDB state, which a savepoint "
          "cannot hold; take it while the task runs, or use state.backend.incremental: false"));
    }
    const std::string from = absl::StrCat(sp.job_dir, "/", h.file());
    const std::string name = fs::path(h.file()).filename().string();
    const std::string to = absl::StrCat(tmp, "/", name);
    // The savepoint's own files move; one an earlier checkpoint stored (a task that had
    // finished) is copied, as that checkpoint keeps it.
    absl::Status st =
        h.file().rfind(own, 0) == 0 ? MoveFile(from, to) : CopyFileDurably(from, to, /*sync=*/true);
    if (!st.ok()) return st;
    h.set_file(name);
  }
  absl::Status st = WriteMetadata(tmp, sp.metadata);
  if (!st.ok()) return st;
  fs::rename(tmp, sp.dir, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot rename '", tmp, "' to '", sp.dir, "': ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteSavepoint(CheckpointCoordinator::ToWrite& sp) {
  const std::string tmp = sp.dir + ".inprogress";
  absl::Status st = Relocate(sp, tmp);
  std::error_code ec;
  if (!st.ok()) fs::remove_all(tmp, ec);
  // The chk-<n> folder the tasks wrote into (empty once its files moved).
  fs::remove_all(absl::StrCat(sp.job_dir, "/chk-", sp.metadata.checkpoint_id()), ec);
  return st;
}

absl::Status DisposeSavepoint(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("no savepoint path given");
  if (!fs::path(path).is_absolute()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the savepoint path '", path, "' is not an absolute path"));
  }
  auto meta = ReadMetadata(path);
  if (!meta.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is not a savepoint: ", meta.status().message()));
  }
  if (!meta->savepoint()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", path, "' is a retained checkpoint, not a savepoint: it is not disposed of"));
  }
  fs::path folder(path);
  if (folder.filename() == "_metadata") folder = folder.parent_path();
  if (folder.filename().empty()) folder = folder.parent_path();
  std::error_code ec;
  fs::remove_all(folder, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("cannot remove savepoint '", folder.string(), "': ", ec.message()));
  }
  return absl::OkStatus();
}

}  // namespace sluice
