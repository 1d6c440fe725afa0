#include "common/log_files.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace sluice {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

void Write(const fs::path& p, const std::string& content) {
  std::ofstream f(p, std::ios::binary | std::ios::trunc);
  f << content;
}

std::vector<std::string> Names(const std::vector<LogFileInfo>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) out.push_back(f.name);
  return out;
}

// A folder laid out as deploy/daemon.sh leaves it: instance 0's current log and output files
// (open as `log_fd` and `out_fd`, as a daemon's standard error and output), their rotated
// generations, another instance's files, and files that look alike but are no generation.
class LogFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sluice-log-files-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    Write(dir_ / "sluice-taskmanager-0-host.log", "current log line\n");
    Write(dir_ / "sluice-taskmanager-0-host.log.1", "older log\n");
    Write(dir_ / "sluice-taskmanager-0-host.log.2", "oldest log\n");
    Write(dir_ / "sluice-taskmanager-0-host.log.10", "tenth\n");
    Write(dir_ / "sluice-taskmanager-0-host.out", "printed\n");
    Write(dir_ / "sluice-taskmanager-0-host.out.1", "printed before\n");
    Write(dir_ / "sluice-taskmanager-1-host.log", "another instance\n");
    Write(dir_ / "sluice-taskmanager-0-host.log.old", "not a generation\n");
    Write(dir_ / "sluice-taskmanager-0-host.log.1x", "not a generation\n");
    Write(dir_ / "sluice-taskmanager-0-host.log.", "not a generation\n");
    Write(dir_ / "secret.txt", "secret\n");
    fs::create_symlink("/etc/passwd", dir_ / "sluice-taskmanager-0-host.log.3");
    fs::create_directory(dir_ / "sluice-taskmanager-0-host.log.4");
    log_fd_ = ::open((dir_ / "sluice-taskmanager-0-host.log").c_str(), O_WRONLY | O_APPEND);
    out_fd_ = ::open((dir_ / "sluice-taskmanager-0-host.out").c_str(), O_WRONLY | O_APPEND);
    ASSERT_GE(log_fd_, 0);
    ASSERT_GE(out_fd_, 0);
  }
  void TearDown() override {
    if (log_fd_ >= 0) ::close(log_fd_);
    if (out_fd_ >= 0) ::close(out_fd_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path dir_;
  int log_fd_ = -1, out_fd_ = -1;
};

TEST_F(LogFilesTest, ListsTheCurrentFilesAndTheirGenerationsOnly) {
  DaemonLogFiles files(log_fd_, out_fd_);
  std::vector<LogFileInfo> list = files.List();
  EXPECT_THAT(Names(list),
              ElementsAre("sluice-taskmanager-0-host.log", "sluice-taskmanager-0-host.log.1",
                          "sluice-taskmanager-0-host.log.2", "sluice-taskmanager-0-host.log.10",
                          "sluice-taskmanager-0-host.out", "sluice-taskmanager-0-host.out.1"));
  ASSERT_FALSE(list.empty());
  EXPECT_EQ(list[0].size, 17);
  EXPECT_GT(list[0].mtime_ms, 1'600'000'000'000);
  EXPECT_EQ(files.CurrentLogName(), "sluice-taskmanager-0-host.log");
  EXPECT_EQ(files.CurrentOutName(), "sluice-taskmanager-0-host.out");
}

TEST_F(LogFilesTest, SeesWhatTheDaemonWritesAndNewGenerations) {
  DaemonLogFiles files(log_fd_, out_fd_);
  const std::string line = "task Map (2/4) of job 0123 switched to RUNNING\n";
  ASSERT_EQ(::write(log_fd_, line.data(), line.size()), static_cast<ssize_t>(line.size()));
  auto tail = files.Read("sluice-taskmanager-0-host.log");
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(tail->data, "current log line\n" + line);
  EXPECT_EQ(tail->offset, 0);
  EXPECT_EQ(tail->size, static_cast<int64_t>(tail->data.size()));
  Write(dir_ / "sluice-taskmanager-0-host.out.2", "new generation\n");
  EXPECT_THAT(Names(files.List()), ::testing::Contains("sluice-taskmanager-0-host.out.2"));
  auto out = files.Read("sluice-taskmanager-0-host.out.2");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->data, "new generation\n");
}

TEST_F(LogFilesTest, ReadsOnlyTheEndOfALongFile) {
  std::string big;
  for (int i = 0; i < 1000; ++i) big += "line " + std::to_string(i) + "\n";
  Write(dir_ / "sluice-taskmanager-0-host.log.1", big);
  DaemonLogFiles files(log_fd_, out_fd_);
  auto tail = files.Read("sluice-taskmanager-0-host.log.1", 100);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(tail->size, static_cast<int64_t>(big.size()));
  EXPECT_EQ(tail->offset, static_cast<int64_t>(big.size()) - 100);
  EXPECT_EQ(tail->data, big.substr(big.size() - 100));
  EXPECT_NE(tail->data.find("line 999\n"), std::string::npos);
}

TEST_F(LogFilesTest, RefusesEveryNameThatIsNotListed) {
  DaemonLogFiles files(log_fd_, out_fd_);
  const std::string full = (dir_ / "sluice-taskmanager-0-host.log").string();
  struct Case {
    std::string name;
    absl::StatusCode code;
  };
  const std::vector<Case> cases = {
      {"", absl::StatusCode::kInvalidArgument},
      {".", absl::StatusCode::kInvalidArgument},
      {"..", absl::StatusCode::kInvalidArgument},
      {"../secret.txt", absl::StatusCode::kInvalidArgument},
      {"/etc/passwd", absl::StatusCode::kInvalidArgument},
      {full, absl::StatusCode::kInvalidArgument},
      {"./sluice-taskmanager-0-host.log", absl::StatusCode::kInvalidArgument},
      {std::string("sluice-taskmanager-0-host.log\0", 30), absl::StatusCode::kInvalidArgument},
      {"secret.txt", absl::StatusCode::kNotFound},
      {"sluice-taskmanager-1-host.log", absl::StatusCode::kNotFound},
      {"sluice-taskmanager-0-host.log.old", absl::StatusCode::kNotFound},
      {"sluice-taskmanager-0-host.log.", absl::StatusCode::kNotFound},
      {"sluice-taskmanager-0-host.log.3", absl::StatusCode::kNotFound},  // a link to /etc/passwd
      {"sluice-taskmanager-0-host.log.4", absl::StatusCode::kNotFound},  // a folder
      {"..%2fsecret.txt", absl::StatusCode::kNotFound},
      {"%2e%2e%2fsecret.txt", absl::StatusCode::kNotFound},
      {"SLUICE-TASKMANAGER-0-HOST.LOG", absl::StatusCode::kNotFound},
      {"sluice-taskmanager-0-host.log ", absl::StatusCode::kNotFound},
  };
  for (const Case& c : cases) {
    auto r = files.Read(c.name);
    ASSERT_FALSE(r.ok()) << "'" << c.name << "' was served: " << r->data;
    EXPECT_EQ(r.status().code(), c.code) << c.name << ": " << r.status();
    EXPECT_EQ(r.status().message().find("root:"), std::string::npos);
  }
}

TEST_F(LogFilesTest, AFileRotatedAwayIsNotFound) {
  DaemonLogFiles files(log_fd_, out_fd_);
  ASSERT_TRUE(files.Read("sluice-taskmanager-0-host.log.2").ok());
  fs::remove(dir_ / "sluice-taskmanager-0-host.log.2");
  auto r = files.Read("sluice-taskmanager-0-host.log.2");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Names(files.List()),
              ::testing::Not(::testing::Contains("sluice-taskmanager-0-host.log.2")));
}

TEST_F(LogFilesTest, ACurrentFileRemovedOrRenamedIsNoLongerItsName) {
  DaemonLogFiles files(log_fd_, out_fd_);
  fs::remove(dir_ / "sluice-taskmanager-0-host.out");
  EXPECT_EQ(files.CurrentOutName(), "");
  // Its generations are no longer found either: nothing names the output any more.
  EXPECT_THAT(Names(files.List()),
              ElementsAre("sluice-taskmanager-0-host.log", "sluice-taskmanager-0-host.log.1",
                          "sluice-taskmanager-0-host.log.2", "sluice-taskmanager-0-host.log.10"));
  EXPECT_EQ(files.Read("sluice-taskmanager-0-host.out").status().code(),
            absl::StatusCode::kNotFound);
  // Another file put in its place is not what the descriptor writes to.
  Write(dir_ / "sluice-taskmanager-0-host.out", "impostor\n");
  EXPECT_EQ(files.CurrentOutName(), "");
  EXPECT_EQ(files.Read("sluice-taskmanager-0-host.out").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(LogFilesTest, DescriptorsThatAreNoRegularFilesHaveNoFiles) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  DaemonLogFiles files(pipe_fds[1], -1);
  EXPECT_TRUE(files.List().empty());
  EXPECT_EQ(files.CurrentLogName(), "");
  EXPECT_EQ(files.CurrentOutName(), "");
  EXPECT_EQ(files.Read("sluice-taskmanager-0-host.log").status().code(),
            absl::StatusCode::kNotFound);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST_F(LogFilesTest, BothDescriptorsOnOneFileListItOnce) {
  int fd = ::open((dir_ / "sluice-taskmanager-0-host.log").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  DaemonLogFiles files(log_fd_, fd);
  EXPECT_THAT(Names(files.List()),
              ElementsAre("sluice-taskmanager-0-host.log", "sluice-taskmanager-0-host.log.1",
                          "sluice-taskmanager-0-host.log.2", "sluice-taskmanager-0-host.log.10"));
  EXPECT_EQ(files.CurrentOutName(), "sluice-taskmanager-0-host.log");
  ::close(fd);
}

}  // namespace
}  // namespace sluice
