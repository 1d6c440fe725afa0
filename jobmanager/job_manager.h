// JobManager: the cluster's coordinator.
//
// Owns the registered TaskManagers and their slots (heartbeat-monitored), the blob store of job
// libraries (by SHA-256), and the jobs: it turns a submitted job graph into deployed tasks, one
// slot per parallel pipeline (slot sharing), follows their states and decides the job's state.
// It never loads user code: the client builds the job graph, so a broken library cannot take the
// JobManager down.
// Threads: the gRPC server's, and a monitor thread that declares TaskManagers lost after
// heartbeat.timeout and forces stuck cancellations to finish.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace sluice {

class JobManagerImpl;

class JobManager {
 public:
  // Binds jobmanager.bind-host:jobmanager.rpc.port and starts serving.
  static absl::StatusOr<std::unique_ptr<JobManager>> Start(const Configuration& conf);
  ~JobManager();

  int port() const;
  // The REST server's port, or -1 when rest.port is -1.
  int rest_port() const;
  // host:port where clients and TaskManagers reach this JobManager.
  std::string address() const;
  void Shutdown();

 private:
  explicit JobManager(std::unique_ptr<JobManagerImpl> impl);
  std::unique_ptr<JobManagerImpl> impl_;
};

}  // namespace sluice
