// JobManager: the cluster's coordinator process, assembled from its units.
//
//   JobManagerService (gRPC)  ─┐
//   RestServer (HTTP, :8081)  ─┴─▶ JobManagerGateway = Dispatcher ──▶ TaskManagerGateway (gRPC)
//                                   ├─ ResourceManager: TaskManagers, heartbeats, slots
//                                   ├─ Scheduler: deployment descriptors, slot sharing
//                                   ├─ RestartStrategy per job: failover
//                                   ├─ CheckpointCoordinator per job (+ its two stores)
//                                   └─ BlobStore: job libraries by SHA-256
//
// It never loads user code: the client builds the job graph, so a broken library cannot take
// the JobManager down. Threads: the gRPC server's, the REST server's pool, and the
// Dispatcher's monitor and coordinator threads. See dispatcher.h for the locking rules.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace grpc {
class Server;
}

namespace sluice {

class Dispatcher;
class GrpcListener;
class HighAvailabilityServices;
class JobManagerMetrics;
class JobManagerService;
class RestServer;

class JobManager {
 public:
  // Binds jobmanager.bind-host:jobmanager.rpc.port (and rest.bind-address:rest.port unless
  // rest.port is -1) and starts serving. Unavailable when a port is taken or a name does not
  // resolve; Internal when the blob store cannot be created.
  // With `ha` (high availability; it must outlive the JobManager) submitted jobs and their
  // checkpoints are kept there, and with `recover` the jobs it holds are recovered before Start
  // returns (else the caller calls RecoverJobs).
  static absl::StatusOr<std::unique_ptr<JobManager>> Start(const Configuration& conf,
                                                           HighAvailabilityServices* ha = nullptr,
                                                           bool recover = true);
  // High availability: takes up the jobs kept there (Dispatcher::RecoverJobs); may be called
  // again after an error.
  absl::Status RecoverJobs();
  ~JobManager();

  int port() const { return port_; }
  // The REST server's port, or -1 when rest.port is -1.
  int rest_port() const;
  // host:port where clients and TaskManagers reach this JobManager.
  std::string address() const { return address_; }
  // Stops serving and removes the blob store's folder. Idempotent.
  void Shutdown();

 private:
  JobManager() = default;

  std::unique_ptr<JobManagerMetrics> metrics_;  // outlives the Dispatcher's metric groups
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<JobManagerService> service_;
  std::unique_ptr<GrpcListener> listener_;  // outlives server_
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<RestServer> rest_;
  int port_ = 0;
  int rest_port_ = -1;
  std::string address_;
  bool stopped_ = false;
};

}  // namespace sluice
