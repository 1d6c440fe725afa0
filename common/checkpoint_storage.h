// Checkpoint storage on a file system: the state files tasks write and the _metadata the
// JobManager writes, under <state.checkpoints.dir>/<job-id>/chk-<n>/.
//
// Every file starts with a magic number and a format version and ends with a CRC-32C of all the
// bytes before it; files are written under a temporary name, synced and renamed, so a reader sees
// a whole file or none. Every error names the file and what is wrong with it (missing,
// truncated, not a Sluice file, another format version, checksum mismatch).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/checkpoint.pb.h"
#include "sluice/internal/runtime.h"

namespace sluice {

// CRC-32C (Castagnoli) of `data`, continuing from `crc` (0 to start).
uint32_t Crc32c(std::string_view data, uint32_t crc = 0);

// "<root>/<job_id>/chk-<checkpoint_id>"
std::string CheckpointDirectory(const std::string& root, const std::string& job_id,
                                int64_t checkpoint_id);

// Writes the snapshots of one subtask to `path` (temporary name, fsync, rename). On success
// fills `handle`'s size and crc32c (the caller sets vertex, subtask and file name).
absl::Status WriteStateFile(const std::string& path,
                            const std::vector<internal::OperatorSnapshot>& snapshots,
                            proto::StateHandle* handle);
// Reads a state file back; checks magic, version, length and checksum, and, when
// `expected` is given, that size and crc32c match the handle.
absl::StatusOr<std::vector<internal::OperatorSnapshot>> ReadStateFile(
    const std::string& path, const proto::StateHandle* expected = nullptr);

// Copies `from` to `to` under a temporary name, renamed when whole (synced first, with its
// directory, when `sync`). Errors name both files.
absl::Status CopyFileDurably(const std::string& from, const std::string& to, bool sync);
// Writes `bytes` to `path` the same way: under a temporary name, renamed when whole (synced
// first, with its directory, when `sync`), so a reader never sees a partial file. Errors name it.
absl::Status WriteFileDurably(const std::string& path, std::string_view bytes, bool sync);

// Writes <dir>/_metadata atomically.
absl::Status WriteMetadata(const std::string& dir, const proto::CheckpointMetadata& metadata);
// Reads a checkpoint's metadata from a chk-<n> directory or from its _metadata file.
absl::StatusOr<proto::CheckpointMetadata> ReadMetadata(const std::string& path);

}  // namespace sluice
