// BlobStore: the JobManager's store of job libraries, one file per library named by the SHA-256
// of its bytes, in a folder of its own under blob.storage.directory (removed when the store is
// destroyed). TaskManagers download libraries from it by hash.
//
// Threads: every method may be called from any thread; files are written under a temporary name
// and renamed, so a reader never sees a partial library.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace sluice {

class BlobStore {
 public:
  // Libraries larger than this are refused.
  static constexpr size_t kMaxLibraryBytes = size_t{1} << 30;

  // Creates the folder `dir`. An error naming it when it cannot be created.
  static absl::StatusOr<std::unique_ptr<BlobStore>> Create(std::string dir);
  // Removes the folder and every library in it.
  ~BlobStore();

  // Stores a shared library; returns its SHA-256 (lower-case hex). InvalidArgument when the
  // bytes are not an ELF file, ResourceExhausted above kMaxLibraryBytes, Internal when the file
  // cannot be written.
  absl::StatusOr<std::string> Put(std::string_view bytes);
  // The path of a stored library. InvalidArgument for a malformed hash, NotFound when no
  // library has it.
  absl::StatusOr<std::string> Path(const std::string& sha256) const;
  bool Contains(const std::string& sha256) const { return Path(sha256).ok(); }

  const std::string& dir() const { return dir_; }

 private:
  explicit BlobStore(std::string dir) : dir_(std::move(dir)) {}
  const std::string dir_;
};

// True for 64 lower-case hex digits.
bool IsSha256Hex(const std::string& s);

}  // namespace sluice
