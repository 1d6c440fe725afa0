// JarStore: the job libraries uploaded over the REST API (POST /jars/upload), kept in
// web.upload.dir so that they survive a JobManager restart. A library is stored as
// `<sha256>.so`, named by the hash of its bytes: a file name from a request never becomes a
// path, and the same bytes are stored once. Each upload is a jar of its own, as in Flink: a
// sidecar `<sha256>-<token>.json` (16 random hex digits) holds the name it was uploaded under,
// and its id is `<sha256>-<token>_<name>` (Flink's is `<uuid>_<name>.jar`). Deleting one upload
// leaves the others of the same bytes; the library goes with the last.
//
// Threads: every method may be called from any thread (uploads and deletions of the same bytes
// are serialized); files are written under a temporary name and renamed, so a reader never sees
// a partial library or sidecar.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace sluice {

struct StoredJar {
  std::string id;    // <sha256>-<token>_<name>
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
  // safe) as a new jar. InvalidArgument when the bytes are not an ELF file; Internal when a file
  // cannot be written. The same bytes again share the stored library.
  absl::StatusOr<StoredJar> Put(std::string_view bytes, const std::string& file_name)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The jar `jar_id`. InvalidArgument when the id is malformed (not a hex hash, '-', a 16-digit
  // hex token, '_' and a safe name), NotFound when no upload has it (its name included).
  absl::StatusOr<StoredJar> Get(const std::string& jar_id) const;
  // Every jar, the newest upload first.
  std::vector<StoredJar> List() const;
  // Removes a jar, and its library when no other jar has the same bytes; the errors of Get.
  absl::Status Delete(const std::string& jar_id) ABSL_LOCKS_EXCLUDED(mu_);

  const std::string& dir() const { return dir_; }

 private:
  explicit JarStore(std::string dir) : dir_(std::move(dir)) {}
  // The jar of sidecar `<key>.json` (key: <sha256>-<token>).
  absl::StatusOr<StoredJar> Read(const std::string& key) const;
  const std::string dir_;
  absl::Mutex mu_;  // a library's file against its last jar's deletion
};

// The last path component of an uploaded file's name with every character other than letters,
// digits, '.', '_' and '-' replaced by '_', every ".." by '_', leading dots removed, at most 128
// characters;
// "job.so" when nothing is left.
std::string SafeJarName(const std::string& file_name);

}  // namespace sluice
