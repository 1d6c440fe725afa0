#include "integration/kafka_dev.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sluice::itest {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr const char* kKcat = "/usr/bin/kcat";

bool KeepDirs() {
  const char* v = std::getenv("SLUICE_KEEP_TEST_DIR");
  return v && *v && std::string(v) != "0";
}

void RemoveDir(const std::string& dir) {
  if (dir.empty() || KeepDirs()) return;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

// The lines of `text` that a newline ends (a line still being written is left out).
std::vector<std::string> CompleteLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    lines.push_back(text.substr(start, nl - start));
  }
  return lines;
}

// Writes all of `data` to the non-blocking FIFO `fd` within `timeout`. SIGPIPE (the reader is
// gone) is blocked for the write and consumed, so it does not end the test process.
absl::Status WriteAll(int fd, const std::string& data, std::chrono::milliseconds timeout) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  absl::Status status;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    if (n < 0 && errno == EPIPE) {
      timespec zero{};
      while (sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
      }
    }
    status = absl::UnavailableError(absl::StrCat("writing to the control FIFO: ",
                                                 n < 0 ? std::strerror(errno) : "no progress"));
    break;
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return status;
}

// Runs kcat with `args` in a temporary folder (removed afterwards); `input`, when given, is
// written to a file there first and its path appended with -l.
absl::StatusOr<CommandResult> RunKcat(std::vector<std::string> args,
                                      const std::optional<std::string>& input,
                                      std::chrono::milliseconds timeout) {
  if (::access(kKcat, X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(kKcat, " is not installed (deploy/install-deps.sh installs kcat)"));
  }
  const std::string dir = MakeTempDir();
  std::vector<std::string> argv{kKcat};
  argv.insert(argv.end(), args.begin(), args.end());
  if (input) {
    const std::string path = dir + "/input";
    if (!WriteFile(path, *input)) {
      RemoveDir(dir);
      return absl::InternalError("cannot write " + path);
    }
    argv.push_back("-l");
    argv.push_back(path);
  }
  CommandResult r = RunCommand(argv, dir, timeout);
  RemoveDir(dir);
  if (r.timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("kcat did not finish within ", timeout.count(), " ms: ", r.Describe()));
  }
  if (r.exit_code != 0) return absl::InternalError("kcat failed: " + r.Describe());
  return r;
}

}  // namespace

// ---- KafkaDev ----

KafkaDev::~KafkaDev() {
  const bool failed = ::testing::Test::HasFailure();
  (void)Stop();
  if (failed && !dir_.empty()) {
    std::cerr << "==== sluice-kafka-dev folder " << dir_ << (KeepDirs() ? " (kept)" : "") << "\n"
              << "==== its output (tail)\n"
              << LastLines(Output(), 20) << "\n==== its log (tail)\n"
              << LastLines(Log(), 30) << "\n";
  }
  RemoveDir(dir_);
}

absl::Status KafkaDev::Start(int brokers, const std::vector<std::pair<std::string, int>>& topics) {
  if (child_) return absl::FailedPreconditionError("KafkaDev::Start called twice");
  dir_ = MakeTempDir();
  control_path_ = dir_ + "/control";
  if (::mkfifo(control_path_.c_str(), 0600) != 0) {
    return absl::InternalError(absl::StrCat("mkfifo ", control_path_, ": ", std::strerror(errno)));
  }
  std::vector<std::string> argv{BinDir() + "/sluice-kafka-dev", "--brokers",
                                std::to_string(brokers), "--control", control_path_};
  for (const auto& [name, partitions] : topics) {
    argv.push_back("--topic");
    argv.push_back(absl::StrCat(name, ":", partitions));
  }
  auto child = ChildProcess::Start(argv, dir_ + "/kafka-dev.out", dir_ + "/kafka-dev.log");
  if (!child.ok()) return child.status();
  child_ = std::move(*child);

  std::vector<std::string> lines;
  bool exited = false;
  WaitUntil(
      [&] {
        lines = CompleteLines(Output());
        if (!lines.empty()) return true;
        exited = !child_->Running();
        return exited;
      },
      20s, 10ms);
  if (lines.empty()) {
    std::string why = exited ? absl::StrCat("exited with ", child_->exit_code().value_or(-1))
                             : std::string("printed no bootstrap line within 20 s");
    (void)Stop();
    return absl::InternalError(absl::StrCat("sluice-kafka-dev ", why, ":\n", LastLines(Log(), 20)));
  }
  bootstrap_ = lines[0];
  if (bootstrap_.find("127.0.0.1:") != 0) {
    return absl::InternalError("sluice-kafka-dev's first line is no bootstrap list: " + bootstrap_);
  }
  // The tool holds the FIFO open for reading (and writing) before it prints the bootstrap line,
  // so this open finds a reader and does not block.
  control_fd_ = ::open(control_path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (control_fd_ < 0) {
    return absl::InternalError(absl::StrCat("open ", control_path_, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status KafkaDev::Command(const std::string& line, std::chrono::milliseconds timeout) {
  if (line.find('\n') != std::string::npos) {
    return absl::InvalidArgumentError("a command is one line: " + line);
  }
  const size_t first = line.find_first_not_of(" \t");
  if (first == std::string::npos || line[first] == '#') {
    return absl::InvalidArgumentError("a blank or comment line gets no answer: '" + line + "'");
  }
  if (control_fd_ < 0 || !Running()) {
    return absl::UnavailableError("sluice-kafka-dev is not running");
  }
  if (absl::Status s = WriteAll(control_fd_, line + "\n", timeout); !s.ok()) return s;
  // Answers come in command order: this command's is the first line not yet consumed.
  const size_t wanted = 1 + answered_ + 1;  // bootstrap line, earlier answers, this one
  std::vector<std::string> lines;
  bool exited = false;
  WaitUntil(
      [&] {
        lines = CompleteLines(Output());
        if (lines.size() >= wanted) return true;
        exited = !Running();
        return exited;
      },
      timeout, 5ms);
  if (lines.size() < wanted) {
    // A late answer belongs to this command: the next command waits for the line after it.
    ++answered_;
    return exited ? absl::UnavailableError(
                        absl::StrCat("sluice-kafka-dev exited with ", exit_code().value_or(-1),
                                     " before answering '", line, "':\n", LastLines(Log(), 20)))
                  : absl::DeadlineExceededError(
                        absl::StrCat("no answer to '", line, "' within ", timeout.count(), " ms"));
  }
  ++answered_;
  const std::string& answer = lines[wanted - 1];
  if (answer == "ok") return absl::OkStatus();
  if (answer.rfind("error: ", 0) == 0) return absl::InvalidArgumentError(answer);
  return absl::InternalError(absl::StrCat("unexpected answer to '", line, "': ", answer));
}

absl::Status KafkaDev::Stop() {
  if (!child_ || stopped_) return stop_status_;
  stopped_ = true;
  bool killed = false;
  const int code = child_->Stop(10s, &killed);
  if (control_fd_ >= 0) {
    ::close(control_fd_);
    control_fd_ = -1;
  }
  if (killed) {
    stop_status_ = absl::InternalError("sluice-kafka-dev did not stop within 10 s and was killed");
  } else if (code != 0) {
    stop_status_ = absl::InternalError(absl::StrCat("sluice-kafka-dev exited with ", code));
  }
  return stop_status_;
}

bool KafkaDev::Running() { return child_ && child_->Running(); }
pid_t KafkaDev::pid() const { return child_ ? child_->pid() : -1; }
std::optional<int> KafkaDev::exit_code() const {
  return child_ ? child_->exit_code() : std::nullopt;
}
std::string KafkaDev::Output() const { return child_ ? ReadFile(child_->stdout_path()) : ""; }
std::string KafkaDev::Log() const { return child_ ? ReadFile(child_->stderr_path()) : ""; }

// ---- kcat ----

absl::Status KcatProduce(const std::string& bootstrap, const std::string& topic,
                         const std::vector<std::string>& lines, std::optional<int> partition,
                         std::optional<std::string> key_separator,
                         std::chrono::milliseconds timeout) {
  std::string input;
  for (const std::string& l : lines) absl::StrAppend(&input, l, "\n");
  // Records not acknowledged in time fail kcat (exit 1) before our own timeout kills it.
  std::vector<std::string> args{
      "-P",      "-b",
      bootstrap, "-t",
      topic,     "-q",
      "-X",      absl::StrCat("message.timeout.ms=", std::max<int64_t>(1000, timeout.count() / 2))};
  if (partition) {
    args.push_back("-p");
    args.push_back(std::to_string(*partition));
  }
  if (key_separator) {
    args.push_back("-K");
    args.push_back(*key_separator);
  }
  auto r = RunKcat(args, input, timeout);
  return r.ok() ? absl::OkStatus() : r.status();
}

absl::StatusOr<std::vector<std::string>> KcatConsume(const std::string& bootstrap,
                                                     const std::string& topic,
                                                     std::chrono::milliseconds timeout) {
  auto r = RunKcat({"-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q"},
                   std::nullopt, timeout);
  if (!r.ok()) return r.status();
  return CompleteLines(r->out);
}

absl::StatusOr<std::vector<KcatRecord>> KcatConsumeRecords(const std::string& bootstrap,
                                                           const std::string& topic,
                                                           std::chrono::milliseconds timeout) {
  auto r = RunKcat(
      {"-C", "-b", bootstrap, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p\t%o\t%k\t%s\n"},
      std::nullopt, timeout);
  if (!r.ok()) return r.status();
  std::vector<KcatRecord> records;
  for (const std::string& line : CompleteLines(r->out)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits('\t', 3));
    KcatRecord rec;
    if (f.size() != 4 || !absl::SimpleAtoi(f[0], &rec.partition) ||
        !absl::SimpleAtoi(f[1], &rec.offset)) {
      return absl::InternalError("kcat printed a line that is no record: '" + line + "'");
    }
    rec.key = std::move(f[2]);
    rec.value = std::move(f[3]);
    records.push_back(std::move(rec));
  }
  std::sort(records.begin(), records.end(), [](const KcatRecord& a, const KcatRecord& b) {
    return std::tie(a.partition, a.offset) < std::tie(b.partition, b.offset);
  });
  return records;
}

}  // namespace sluice::itest
