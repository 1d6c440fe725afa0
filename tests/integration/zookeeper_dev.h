// Integration-test piece for high availability: a single-node ZooKeeper server (Debian's
// zookeeper package, run on its JVM) as a child of the test, on a free 127.0.0.1 port, with its
// configuration and data in a temporary folder.
//
// Every wait is bounded; the server is stopped by its pid (SIGTERM, then SIGKILL) and dies with
// the test process (PR_SET_PDEATHSIG, see harness.h). It can be stopped and started again on the
// same port and data (a ZooKeeper outage), or paused with SIGSTOP.
//
// $SLUICE_JAVA names the java binary (default: the first java on PATH);
// $SLUICE_ZOOKEEPER_CLASSPATH the server's classpath (default: /usr/share/java/zookeeper.jar,
// whose manifest lists its dependencies).
//
// Single-threaded use, like harness.h.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "integration/harness.h"

namespace sluice::itest {

class ZooKeeperDev {
 public:
  ZooKeeperDev() = default;
  // Stop(); prints the server's log (tail) when the test failed; removes the folder (kept with
  // SLUICE_KEEP_TEST_DIR=1).
  ~ZooKeeperDev();
  ZooKeeperDev(const ZooKeeperDev&) = delete;
  ZooKeeperDev& operator=(const ZooKeeperDev&) = delete;

  // Starts the server and waits (at most 60 s) until it answers `ruok`. The first start picks
  // the port and folder; a later one reuses both (same data). Error with the server's log when
  // java is missing, the server exits or does not answer in time.
  absl::Status Start();
  // SIGTERM, up to 10 s for the exit, then SIGKILL. Idempotent.
  absl::Status Stop();
  // SIGSTOP / SIGCONT: the server stops answering without closing its connections.
  void Pause();
  void Resume();

  bool Running();
  pid_t pid() const;
  int port() const { return port_; }
  // "127.0.0.1:<port>": the value for high-availability.zookeeper.quorum.
  std::string quorum() const;
  const std::string& dir() const { return dir_; }
  std::string Log() const;

 private:
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> child_;
};

// True when `quorum`'s single server answers "imok" to "ruok" within `timeout_ms`.
bool ZooKeeperAnswers(int port, int timeout_ms);

}  // namespace sluice::itest
