// JarStore: the job libraries uploaded over the REST API (POST /jars/upload), kept in
// web.upload.dir so that they survive a JobManager restart. A library is stored as
// `<sha256>.so`, named by the hash of its bytes: a file name from a request never becomes a
// path. The name it was uploaded under is metadata only, in a sidecar `<sha256>.json`; the
// jar id the API shows is `<sha256>_<name>`, as Flink's is `<uuid>_<name>.jar`.
//
// Threads: every method may be called from any thread; files are written under a temporary
// name and renamed, so a reader never sees a partial library or sidecar.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

struct StoredJar {
  std::string id;    // <sha256>_<name>
  std::string name;  // the uploaded file's name, made safe (see SafeJarName)
  std::string path;  // the library's file
  int64_t uploaded_ms = 0;
  // The library exports Sluice's job entry point (found in its bytes, not by loading it).
  bool has_entry = false;
};

class JarStore {
 public:
  // Creates the folder `dir` if needed. Internal naming it when it cannot be created;
  // FailedPrecondition when it belongs to another user (its group and others lose write
  // permission if they have it).
  static absl::StatusOr<std::unique_ptr<JarStore>> Create(std::string dir);

  // Stores library bytes uploaded as `file_name` (only its last path component is kept, made
  // safe). InvalidArgument when the bytes are not an ELF file; Internal when a file cannot be
  // written. The same bytes again give the same stored file (their name is updated).
  absl::StatusOr<StoredJar> Put(std::string_view bytes, const std::string& file_name);
  // The stored library `jar_id`. InvalidArgument when the id is malformed (not a hex hash, an
  // underscore and a safe name), NotFound when no library has it.
  absl::StatusOr<StoredJar> Get(const std::string& jar_id) const;
  // Every stored library, the newest upload first.
  std::vector<StoredJar> List() const;
  // Removes a stored library; the errors of Get.
  absl::Status Delete(const std::string& jar_id);

  const std::string& dir() const { return dir_; }

 private:
  explicit JarStore(std::string dir) : dir_(std::move(dir)) {}
  absl::StatusOr<StoredJar> Read(const std::string& sha256) const;
  const std::string dir_;
};

// The last path component of an uploaded file's name with every character other than letters,
// digits, '.', '_' and '-' replaced by '_', every ".." by '_', leading dots removed, at most 128
// characters;
// "job.so" when nothing is left.
std::string SafeJarName(const std::string& file_name);

}  // namespace sluice
