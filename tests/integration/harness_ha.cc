#include "integration/harness_ha.h"

#include <signal.h>

#include <filesystem>
#include <iostream>
#include <regex>

#include "absl/strings/str_cat.h"

namespace sluice::itest {

HaCluster::HaCluster(int session_timeout_ms)
    : session_timeout_ms_(session_timeout_ms), dir_(MakeTempDir()) {}

HaCluster::~HaCluster() {
  for (auto& [name, p] : daemons_) {
    if (p) p->Stop(std::chrono::seconds(5));
  }
  daemons_.clear();
  (void)zk_.Stop();
  if (!std::getenv("SLUICE_KEEP_TEST_DIR")) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::vector<std::string> HaCluster::Args(const std::string& binary,
                                         const std::vector<std::string>& extra) const {
  std::vector<std::string> settings = {
      "high-availability.type=zookeeper",
      "high-availability.zookeeper.quorum=" + zk_.quorum(),
      "high-availability.storageDir=" + dir_ + "/ha",
      absl::StrCat("high-availability.zookeeper.client.session-timeout=", session_timeout_ms_,
                   " ms"),
      "jobmanager.bind-host=127.0.0.1",
      "jobmanager.rpc.address=127.0.0.1",
      "rest.bind-address=127.0.0.1",
      "taskmanager.host=127.0.0.1",
      "taskmanager.bind-host=127.0.0.1",
      "heartbeat.interval=200ms",
      "heartbeat.timeout=2s",
      "rest.port=0",
      "blob.storage.directory=" + dir_ + "/blobs",
  };
  settings.insert(settings.end(), extra.begin(), extra.end());
  std::vector<std::string> argv{BinDir() + "/" + binary};
  for (const auto& s : settings) {
    argv.push_back("-D");
    argv.push_back(s);
  }
  return argv;
}

std::vector<std::string> HaCluster::CliFlags() const {
  return {"-D", "high-availability.type=zookeeper",
          "-D", "high-availability.zookeeper.quorum=" + zk_.quorum(),
          "-D", "high-availability.storageDir=" + dir_ + "/ha"};
}

ChildProcess* HaCluster::Start(const std::string& binary, const std::string& name,
                               const std::vector<std::string>& extra) {
  auto p = ChildProcess::Start(Args(binary, extra), dir_ + "/" + name + ".out",
                               dir_ + "/" + name + ".log");
  EXPECT_TRUE(p.ok()) << name << ": " << p.status();
  if (!p.ok()) return nullptr;
  daemons_[name] = std::move(*p);
  return daemons_[name].get();
}

ChildProcess* HaCluster::process(const std::string& name) {
  auto it = daemons_.find(name);
  return it == daemons_.end() ? nullptr : it->second.get();
}

void HaCluster::Kill(const std::string& name) {
  ChildProcess* p = process(name);
  if (!p) return;
  p->Signal(SIGKILL);
  EXPECT_TRUE(p->WaitForExit(std::chrono::seconds(10))) << name;
}

std::string HaCluster::Log(const std::string& name) const {
  return ReadFile(dir_ + "/" + name + ".log");
}

int HaCluster::Grants(const std::string& name) const {
  std::string log = Log(name);
  int n = 0;
  for (size_t at = log.find("JobManager leads at"); at != std::string::npos;
       at = log.find("JobManager leads at", at + 1)) {
    ++n;
  }
  return n;
}

std::string HaCluster::LeaderAddress(const std::string& name) const {
  static const std::regex re("JobManager leads at (\\S+)");
  std::string log = Log(name);
  std::string last;
  for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
       ++it) {
    last = (*it)[1].str();
  }
  return last;
}

std::string HaCluster::CurrentLeaderAddress() const {
  static const std::regex re(
      "(\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d+)[^\\n]*JobManager leads at (\\S+)");
  std::string latest_time, address;
  for (const auto& [name, p] : daemons_) {
    if (name.rfind("jm", 0) != 0) continue;
    std::string log = Log(name);
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
      if ((*it)[1].str() >= latest_time) {
        latest_time = (*it)[1].str();
        address = (*it)[2].str();
      }
    }
  }
  return address;
}

std::string HaCluster::WaitForLeadership(const std::string& name, int grants_before,
                                         std::chrono::milliseconds timeout) {
  ChildProcess* p = process(name);
  bool led = WaitUntil([&] { return Grants(name) > grants_before || (p && !p->Running()); },
                       timeout, std::chrono::milliseconds(20));
  return led && Grants(name) > grants_before ? LeaderAddress(name) : "";
}

void HaCluster::DumpLogs() const {
  for (const auto& [name, p] : daemons_) {
    std::cerr << "==== " << name << " log (tail)\n" << LastLines(Log(name), 40) << "\n";
  }
}

}  // namespace sluice::itest
