// High availability's settings, read once from the configuration (the high-availability.* keys
// of common/config.cc) and checked together, so a mistake is reported at start-up naming its key.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace sluice::ha {

struct HaOptions {
  // high-availability.type: ZOOKEEPER. Default: false (NONE).
  bool enabled = false;
  // high-availability.zookeeper.quorum, as given ("host:port,host:port"). Default: "".
  std::string quorum;
  // high-availability.storageDir. Default: "".
  std::string storage_dir;
  // path.root joined with cluster-id, normalized: "/sluice/default". Every node of this cluster
  // lies under it. Default: "/sluice/default".
  std::string cluster_path = "/sluice/default";
  // high-availability.zookeeper.client.session-timeout. Default: 6000.
  int64_t session_timeout_ms = 6000;
  // high-availability.zookeeper.client.connection-timeout. Default: 3000.
  int64_t connection_timeout_ms = 3000;
  // high-availability.jobmanager.port: [first, last]; 0, 0 for any free port. Default: 0, 0.
  int first_port = 0;
  int last_port = 0;

  // Reads and checks the keys. With type NONE the other keys are not checked and `enabled` is
  // false. InvalidArgument naming the key when, in zookeeper mode, the quorum or storage folder
  // is missing, the quorum is not a list of host:port, a path is not absolute or has an empty or
  // "."/".." segment, a timeout is not positive, or the port is not a port, range or 0.
  static absl::StatusOr<HaOptions> FromConfiguration(const Configuration& conf);
};

// Joins two node paths: JoinPath("/sluice", "/default") == "/sluice/default"; JoinPath("/a", "b")
// == "/a/b"; a trailing '/' is dropped.
std::string JoinPath(const std::string& parent, const std::string& child);

}  // namespace sluice::ha
