// What the daemons need to run in high-availability mode, kept in the HA module so the daemons'
// mains stay small: a session for the configured quorum, a check of the storage folder.
#pragma once

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "jobmanager/ha/ha_options.h"
#include "jobmanager/ha/zookeeper_client.h"

namespace sluice::ha {

// A session with the configured quorum and timeouts. Unavailable naming the quorum and its key
// when no server answers within the connection timeout.
absl::StatusOr<std::unique_ptr<ZooKeeperClient>> ConnectToQuorum(const HaOptions& options);

// Creates high-availability.storageDir if needed and checks that a file can be written there.
// FailedPrecondition naming the key and the folder otherwise.
absl::Status CheckStorageDir(const HaOptions& options);

}  // namespace sluice::ha
