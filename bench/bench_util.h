// Helpers shared by sluice-bench's figures: clocks, medians and number formats; Daemon, a
// sluice-jobmanager or sluice-taskmanager process the benchmark starts and stops by its pid;
// RunToEnd, a helper program run to its end; TempDir, a figure's temporary folder.
// Single-threaded use: everything is called from the benchmark's main thread.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

extern char** environ;

namespace sluice::bench {

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Milliseconds since the epoch (the clock of the daemons' log lines).
inline int64_t WallMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// CPU seconds (user + system) the calling thread has consumed so far.
inline double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Accumulates the wall and CPU time of the parts it times.
class Stopwatch {
 public:
  void Start() {
    t0_ = Clock::now();
    c0_ = ThreadCpuSeconds();
  }
  void Stop() {
    cpu_s += ThreadCpuSeconds() - c0_;
    wall_s += SecondsSince(t0_);
  }
  double wall_s = 0, cpu_s = 0;

 private:
  Clock::time_point t0_;
  double c0_ = 0;
};

// A well-mixed 64-bit function of `x`: pseudo-random keys and bytes that a run can recompute.
inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

inline std::string Rate(double per_second) {
  if (per_second >= 1e9) return absl::StrFormat("%.2f G/s", per_second / 1e9);
  if (per_second >= 1e6) return absl::StrFormat("%.2f M/s", per_second / 1e6);
  if (per_second >= 1e3) return absl::StrFormat("%.1f k/s", per_second / 1e3);
  return absl::StrFormat("%.0f /s", per_second);
}

inline std::string Count(int64_t n) {
  const std::string digits = std::to_string(n);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

inline std::string Bytes(double b) {
  if (b >= 1024.0 * 1024 * 1024) return absl::StrFormat("%.2f GiB", b / (1024.0 * 1024 * 1024));
  if (b >= 1024.0 * 1024) return absl::StrFormat("%.2f MiB", b / (1024.0 * 1024));
  if (b >= 1024.0) return absl::StrFormat("%.1f KiB", b / 1024.0);
  return absl::StrFormat("%.0f B", b);
}

// A TCP port of 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
inline absl::StatusOr<int> FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("socket: ", std::strerror(errno)));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int err = errno;
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot find a free port: ", std::strerror(err)));
  }
  ::close(fd);
  return static_cast<int>(ntohs(a.sin_port));
}

// A daemon started by the benchmark; SIGTERMed (then SIGKILLed) on destruction. The kernel kills
// it too when the benchmark's main thread dies (PR_SET_PDEATHSIG), so a crashed or interrupted
// benchmark leaves no daemon behind.
class Daemon {
 public:
  // Starts `binary` with `args`, its output to `log`, without $SLUICE_CONF_DIR (defaults only).
  // NotFound when `binary` is not executable; Internal when fork fails. Call from the main thread.
  static absl::StatusOr<std::unique_ptr<Daemon>> Spawn(const std::string& binary,
                                                       const std::vector<std::string>& args,
                                                       const std::string& log) {
    if (::access(binary.c_str(), X_OK) != 0) {
      return absl::NotFoundError(
          absl::StrCat("no executable ", binary, " (build it, or pass --bin-dir)"));
    }
    std::vector<std::string> argv_s = {binary};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; *e; ++e) {
      if (std::strncmp(*e, "SLUICE_CONF_DIR=", 16) != 0) envp.push_back(*e);
    }
    envp.push_back(nullptr);
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      return absl::InternalError(absl::StrCat("cannot start ", binary, ": ", std::strerror(errno)));
    }
    if (pid == 0) {
      // The child: only async-signal-safe calls until exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int null_fd = ::open("/dev/null", O_RDONLY);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      if (null_fd >= 0) ::dup2(null_fd, 0);
      ::execve(binary.c_str(), argv.data(), envp.data());
      ::_exit(127);
    }
    return std::unique_ptr<Daemon>(new Daemon(pid, log));
  }

  ~Daemon() { Stop(); }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log() const { return log_; }
  // False once the process has exited (and it is reaped).
  bool Alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return false;
    }
    return true;
  }
  // The exit code of a process that ended by itself, as seen by Alive(); -1 before, or when a
  // signal ended it.
  int exit_code() const { return exit_code_; }
  // SIGTERM, then SIGKILL after 5 s; returns the seconds the process took to exit.
  double Stop() {
    if (pid_ <= 0) return 0;
    auto t0 = Clock::now();
    ::kill(pid_, SIGTERM);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (SecondsSince(t0) > 5) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = 0;
    return SecondsSince(t0);
  }
  // SIGKILL now; returns the wall-clock milliseconds at which the signal was sent. The process is
  // reaped later, by Reap() or Stop().
  int64_t Kill() {
    int64_t t = WallMillis();
    if (pid_ > 0) ::kill(pid_, SIGKILL);
    return t;
  }
  // Waits for a killed process's exit.
  void Reap() {
    if (pid_ <= 0) return;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }
  std::string LogText() const {
    std::ifstream f(log_);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  }
  std::string LogTail() const {
    std::string s = LogText();
    return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
  }

 private:
  Daemon(pid_t pid, std::string log) : pid_(pid), log_(std::move(log)) {}
  pid_t pid_;
  std::string log_;
  int exit_code_ = -1;
};

// Runs `program` with `args` to its end (at most `timeout_s`, then it is killed), its output to
// `log`. Internal, with the log's tail, when it cannot start, fails or times out.
inline absl::Status RunToEnd(const std::string& program, const std::vector<std::string>& args,
                             const std::string& log, double timeout_s) {
  if (::access(program.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("no executable ", program));
  }
  absl::StatusOr<std::unique_ptr<Daemon>> p = Daemon::Spawn(program, args, log);
  if (!p.ok()) return p.status();
  auto t0 = Clock::now();
  while ((*p)->Alive() && SecondsSince(t0) < timeout_s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if ((*p)->exit_code() == 0) return absl::OkStatus();
  std::string why = (*p)->Alive() ? absl::StrFormat("did not end within %.0f s", timeout_s)
                                  : absl::StrCat("exited with ", (*p)->exit_code());
  return absl::InternalError(absl::StrCat(program, " ", why, ":\n", (*p)->LogTail()));
}

// A folder /tmp/<prefix>XXXXXX (mkdtemp) for one figure's daemons, removed with everything in it
// on destruction, unless `kept` names what it holds: then it is kept and "<kept> kept in <path>"
// printed.
class TempDir {
 public:
  static absl::StatusOr<std::unique_ptr<TempDir>> Make(const std::string& prefix,
                                                       const std::string& kept = "") {
    std::string tmpl = "/tmp/" + prefix + "XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      return absl::InternalError(absl::StrCat("mkdtemp ", tmpl, ": ", std::strerror(errno)));
    }
    return std::unique_ptr<TempDir>(new TempDir(tmpl, kept));
  }
  ~TempDir() {
    if (!kept_.empty()) {
      std::printf("%s kept in %s\n", kept_.c_str(), path_.c_str());
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  TempDir(std::string path, std::string kept) : path_(std::move(path)), kept_(std::move(kept)) {}
  std::string path_, kept_;
};

// Fields of /proc/<pid>/status, in kB for the Vm* ones.
inline std::map<std::string, int64_t> ProcStatus(pid_t pid) {
  std::map<std::string, int64_t> out;
  std::ifstream f(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(f, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    if (key != "VmRSS" && key != "VmHWM" && key != "RssAnon" && key != "RssFile" &&
        key != "Threads") {
      continue;
    }
    out[key] = std::atoll(line.c_str() + colon + 1);
  }
  return out;
}

// The CPU seconds (user + system) of a /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat line;
// `name` (if given) gets the command name. 0 for a line that does not parse.
inline double StatCpuSeconds(const std::string& stat, std::string* name = nullptr) {
  auto open_paren = stat.find('('), close_paren = stat.rfind(')');  // the name may hold spaces
  if (open_paren == std::string::npos || close_paren == std::string::npos ||
      close_paren + 2 > stat.size()) {
    return 0;
  }
  if (name) *name = stat.substr(open_paren + 1, close_paren - open_paren - 1);
  std::istringstream in(stat.substr(close_paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // Fields after the name start at 3 (state); utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && in >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// CPU seconds (user + system) a process has consumed, from /proc/<pid>/stat; 0 if unreadable.
inline double ProcessCpuSeconds(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/stat"));
  return StatCpuSeconds(
      std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>()));
}

// True when something accepts TCP connections on 127.0.0.1:`port`.
inline bool PortAccepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// CPU seconds all processes of the machine have consumed so far (user, nice, system, irq,
// softirq and steal time of /proc/stat's "cpu" line); 0 if unreadable.
inline double MachineBusySeconds() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                     steal = 0;
  if (!(f >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal) ||
      cpu != "cpu") {
    return 0;
  }
  return static_cast<double>(user + nice + system + irq + softirq + steal) /
         static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace sluice::bench
