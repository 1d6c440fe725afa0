// How the CLI finds the JobManager it talks to.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace sluice {

// The JobManager's RPC address: -m (`flag`) when given, else in high-availability mode the
// leader published in ZooKeeper, else jobmanager.rpc.address:port.
//
// -m may name the JobManager's REST address instead, as Flink's -m does: unless its port is the
// configured jobmanager.rpc.port, the CLI asks GET /jobmanager/config there (over HTTPS when
// security.ssl.rest.enabled, with the token of security.rest.auth.token-file), which gives the
// port the JobManager's RPC listens on; an address that does not answer HTTP is taken as the
// RPC address itself.
//
// Unavailable naming the quorum and node when no leader is published within the connection
// timeout; PermissionDenied when the REST server refuses the CLI's token (or its lack);
// InvalidArgument naming the key of a token file that cannot be read.
absl::StatusOr<std::string> JobManagerAddress(const Configuration& conf, const std::string& flag);

}  // namespace sluice
