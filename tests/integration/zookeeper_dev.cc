#include "integration/zookeeper_dev.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace sluice::itest {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

bool KeepDirs() {
  const char* v = std::getenv("SLUICE_KEEP_TEST_DIR");
  return v && *v && std::string(v) != "0";
}

std::string FindJava() {
  if (const char* j = std::getenv("SLUICE_JAVA"); j && *j) return j;
  const char* path = std::getenv("PATH");
  for (absl::string_view dir : absl::StrSplit(path ? path : "/usr/bin:/bin", ':')) {
    std::string candidate = absl::StrCat(dir, "/java");
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string ClassPath() {
  if (const char* c = std::getenv("SLUICE_ZOOKEEPER_CLASSPATH"); c && *c) return c;
  std::string cp = "/usr/share/java/zookeeper.jar";
  // A logging binding, when there is one, so the server's warnings reach its log.
  if (fs::exists("/usr/share/java/slf4j-simple.jar")) cp += ":/usr/share/java/slf4j-simple.jar";
  return cp;
}

}  // namespace

bool ZooKeeperAnswers(int port, int timeout_ms) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, "ruok", 4, MSG_NOSIGNAL) == 4) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (answer.size() < 4 && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[16];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      answer.append(buf, n);
    }
  }
  ::close(fd);
  return answer == "imok";
}

ZooKeeperDev::~ZooKeeperDev() {
  const bool failed = ::testing::Test::HasFailure();
  (void)Stop();
  if (failed && !dir_.empty()) {
    std::cerr << "==== ZooKeeper folder " << dir_ << (KeepDirs() ? " (kept)" : "") << "\n"
              << "==== its log (tail)\n"
              << LastLines(Log(), 30) << "\n";
  }
  if (!dir_.empty() && !KeepDirs()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

absl::Status ZooKeeperDev::Start() {
  if (child_ && child_->Running()) return absl::FailedPreconditionError("ZooKeeper is running");
  std::string java = FindJava();
  if (java.empty()) {
    return absl::FailedPreconditionError(
        "no java on PATH (nor $SLUICE_JAVA): ZooKeeper needs a JVM (deploy/install-deps.sh)");
  }
  if (dir_.empty()) {
    dir_ = MakeTempDir();
    port_ = FreePort();
    fs::create_directories(dir_ + "/data");
    // tickTime 500 ms lets sessions be as short as 1 s (the server's least is two ticks); the
    // admin HTTP server (port 8080 by default) is off; ruok answers the readiness probe.
    std::string cfg = absl::StrCat(
        "tickTime=500\nminSessionTimeout=1000\nmaxSessionTimeout=60000\n", "dataDir=", dir_,
        "/data\nclientPort=", port_, "\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n",
        "4lw.commands.whitelist=ruok,srvr,stat\n");
    if (!WriteFile(dir_ + "/zoo.cfg", cfg)) {
      return absl::InternalError("cannot write " + dir_ + "/zoo.cfg");
    }
  }
  auto child = ChildProcess::Start(
      {java, "-Xmx128m", "-XX:+UseSerialGC", "-Dzookeeper.admin.enableServer=false",
       "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", ClassPath(),
       "org.apache.zookeeper.server.ZooKeeperServerMain", dir_ + "/zoo.cfg"},
      dir_ + "/zookeeper.out", dir_ + "/zookeeper.log");
  if (!child.ok()) return child.status();
  child_ = std::move(*child);
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!child_->Running()) {
      return absl::InternalError(absl::StrCat(
          "ZooKeeper exited with ", child_->exit_code().value_or(-1), ":\n", LastLines(Log(), 20)));
    }
    if (ZooKeeperAnswers(port_, 500)) return absl::OkStatus();
    std::this_thread::sleep_for(100ms);
  }
  return absl::DeadlineExceededError("ZooKeeper did not answer within 60 s:\n" +
                                     LastLines(Log(), 20));
}

absl::Status ZooKeeperDev::Stop() {
  if (!child_) return absl::OkStatus();
  Resume();  // a paused server cannot handle SIGTERM
  bool killed = false;
  child_->Stop(10s, &killed);
  child_.reset();
  if (killed) return absl::InternalError("ZooKeeper did not stop on SIGTERM within 10 s");
  return absl::OkStatus();
}

void ZooKeeperDev::Pause() {
  if (child_) child_->Signal(SIGSTOP);
}

void ZooKeeperDev::Resume() {
  if (child_) child_->Signal(SIGCONT);
}

bool ZooKeeperDev::Running() { return child_ && child_->Running(); }

pid_t ZooKeeperDev::pid() const { return child_ ? child_->pid() : -1; }

std::string ZooKeeperDev::quorum() const { return absl::StrCat("127.0.0.1:", port_); }

std::string ZooKeeperDev::Log() const {
  if (dir_.empty()) return "";
  return ReadFile(dir_ + "/zookeeper.log") + ReadFile(dir_ + "/zookeeper.out");
}

}  // namespace sluice::itest
