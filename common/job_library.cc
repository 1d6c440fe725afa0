#include "common/job_library.h"

#include <dlfcn.h>

#include <cstring>
#include <fstream>

#include "absl/base/const_init.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace sluice {

absl::StatusOr<std::shared_ptr<JobLibrary>> JobLibrary::Load(const std::string& path) {
  {
    std::ifstream f(path, std::ios::binary);
    if (!f) return absl::NotFoundError(absl::StrCat("cannot read job library '", path, "'"));
    char magic[4] = {0, 0, 0, 0};
    f.read(magic, 4);
    if (f.gcount() != 4 || std::memcmp(magic,
                                       "\x7f"
                                       "ELF",
                                       4) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", path, "' is not a shared library (no ELF header)"));
    }
  }
  // dlopen and dlerror share process-wide state (no field of ours to annotate); serialize them.
  ABSL_CONST_INIT static absl::Mutex mu(absl::kConstInit);
  absl::MutexLock lock(&mu);
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = ::dlerror();
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load job library '", path, "': ", err ? err : "unknown error"));
  }
  auto stamp_fn = reinterpret_cast<const char* (*)()>(::dlsym(handle, kAbiStampSymbol));
  auto entry = reinterpret_cast<JobEntryFn>(::dlsym(handle, kJobEntrySymbol));
  if (!stamp_fn || !entry) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' has no Sluice job entry point (", kJobEntrySymbol,
                     "): define one with SLUICE_JOB(env, args) { ... } from <sluice/sluice.h>"));
  }
  const char* raw_stamp = stamp_fn();
  std::string stamp = raw_stamp ? raw_stamp : "(none)";
  if (stamp != RuntimeAbiStamp()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job library '", path, "' was built for ABI '", stamp, "' but this runtime is '",
        RuntimeAbiStamp(), "': rebuild the job against this Sluice SDK with the same compiler"));
  }
  return std::shared_ptr<JobLibrary>(new JobLibrary(path, entry, std::move(stamp)));
}

absl::StatusOr<std::unique_ptr<StreamExecutionEnvironment>> JobLibrary::BuildEnvironment(
    const std::vector<std::string>& args) const {
  auto env = std::make_unique<StreamExecutionEnvironment>();
  JobArgs job_args(args);
  try {
    entry_(env.get(), &job_args);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("the job's entry point failed: ", e.what()));
  } catch (...) {
    return absl::InvalidArgumentError("the job's entry point threw an unknown exception");
  }
  if (env->nodes().empty()) {
    return absl::InvalidArgumentError("the job's entry point defined no operators");
  }
  return env;
}

}  // namespace sluice
