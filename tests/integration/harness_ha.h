// Integration-test piece for high availability: a cluster of real processes (a ZooKeeper
// server, JobManagers contending for leadership, TaskManagers following the leader) on
// 127.0.0.1 with ports chosen at run time. Each daemon has a name ("jm-a", "tm-1") and a log
// <folder>/<name>.log, appended to when it is started again; every process is stopped by its pid
// (and dies with the test, see harness.h). Single-threaded use, like harness.h.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "integration/harness.h"
#include "integration/zookeeper_dev.h"

namespace sluice::itest {

class HaCluster {
 public:
  // `session_timeout_ms`: high-availability.zookeeper.client.session-timeout.
  explicit HaCluster(int session_timeout_ms);
  // Stops every daemon, then ZooKeeper; removes the folder (kept with SLUICE_KEEP_TEST_DIR=1).
  ~HaCluster();
  HaCluster(const HaCluster&) = delete;
  HaCluster& operator=(const HaCluster&) = delete;

  absl::Status StartZooKeeper() { return zk_.Start(); }
  ZooKeeperDev& zookeeper() { return zk_; }
  const std::string& dir() const { return dir_; }
  int session_timeout_ms() const { return session_timeout_ms_; }

  // The command line of `binary` (in the build's bin folder) with the cluster's settings and
  // `extra` ("key=value") as -D options.
  std::vector<std::string> Args(const std::string& binary,
                                const std::vector<std::string>& extra = {}) const;
  // The -D options that make the CLI find the leader through ZooKeeper.
  std::vector<std::string> CliFlags() const;

  // Starts daemon `name` of `binary` (sluice-jobmanager, sluice-taskmanager), replacing one of
  // that name that has exited. Null (with a test failure) when it cannot be started.
  ChildProcess* Start(const std::string& binary, const std::string& name,
                      const std::vector<std::string>& extra = {});
  ChildProcess* process(const std::string& name);
  // kill -9, and waits for the exit.
  void Kill(const std::string& name);

  std::string Log(const std::string& name) const;
  // How often `name` became leader (its log's "JobManager leads at" lines), and the RPC address
  // of the last time ("" when never).
  int Grants(const std::string& name) const;
  std::string LeaderAddress(const std::string& name) const;
  // The RPC address the JobManager that became leader last (by its log's time stamps) published,
  // or "": where a job is after leadership moved in ways a test did not cause (a ZooKeeper
  // session lost on a loaded machine).
  std::string CurrentLeaderAddress() const;
  // Waits until `name` has become leader more than `grants_before` times; its address, or "".
  std::string WaitForLeadership(const std::string& name, int grants_before,
                                std::chrono::milliseconds timeout);
  // The named daemons' log tails, for a failed test.
  void DumpLogs() const;

 private:
  const int session_timeout_ms_;
  ZooKeeperDev zk_;
  std::string dir_;
  std::map<std::string, std::unique_ptr<ChildProcess>> daemons_;
};

}  // namespace sluice::itest
