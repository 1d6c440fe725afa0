// JobLibrary: a job's shared library, loaded with dlopen and checked before use.
//
// Load() refuses a file that is not a shared library, one without the SLUICE_JOB entry point, and
// one built against another SDK ABI (the error names both stamps). BuildEnvironment() runs the
// entry point; an exception from it becomes an InvalidArgument error with its message. Loaded
// libraries stay loaded for the life of the process (they are cached by path).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sluice/sluice.h"

namespace sluice {

class JobLibrary {
 public:
  static absl::StatusOr<std::shared_ptr<JobLibrary>> Load(const std::string& path);

  absl::StatusOr<std::unique_ptr<StreamExecutionEnvironment>> BuildEnvironment(
      const std::vector<std::string>& args) const;

  const std::string& path() const { return path_; }
  const std::string& abi_stamp() const { return abi_stamp_; }

  // The stamp of this runtime.
  static const char* RuntimeAbiStamp() { return SLUICE_ABI_STAMP; }

 private:
  JobLibrary(std::string path, JobEntryFn entry, std::string stamp)
      : path_(std::move(path)), entry_(entry), abi_stamp_(std::move(stamp)) {}
  std::string path_;
  JobEntryFn entry_;
  std::string abi_stamp_;
};

}  // namespace sluice
