#include "jobmanager/ha/ha_services.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"

namespace sluice::ha {

absl::StatusOr<std::unique_ptr<ZooKeeperClient>> ConnectToQuorum(const HaOptions& options) {
  ZooKeeperClientOptions o;
  o.quorum = options.quorum;
  o.session_timeout_ms = options.session_timeout_ms;
  o.connection_timeout_ms = options.connection_timeout_ms;
  return ZooKeeperClient::Connect(o);
}

absl::Status CheckStorageDir(const HaOptions& options) {
  namespace fs = std::filesystem;
  const std::string& dir = options.storage_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::string probe = absl::StrCat(dir, "/.write-check-", ::getpid());
  bool ok = !ec;
  if (ok) {
    std::ofstream out(probe);
    out << "ok";
    out.close();
    ok = out.good();
  }
  fs::remove(probe, ec);
  if (!ok) {
    return absl::FailedPreconditionError(
        absl::StrCat("configuration key 'high-availability.storageDir': cannot write into '", dir,
                     "'", ec ? absl::StrCat(" (", ec.message(), ")") : ""));
  }
  return absl::OkStatus();
}

}  // namespace sluice::ha
