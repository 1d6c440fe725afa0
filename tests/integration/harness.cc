#include "integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/checkpoint_storage.h"
#include "common/internal_tls.h"

extern char** environ;

namespace sluice::itest {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string EnvPath(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    ADD_FAILURE() << "environment variable " << name
                  << " is not set; run the integration tests with ctest (see tests/CMakeLists.txt)";
    return "/nonexistent";
  }
  return v;
}

bool KeepTestDirs() {
  const char* v = std::getenv("SLUICE_KEEP_TEST_DIR");
  return v && *v && std::string(v) != "0";
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

bool CurrentTestFailed() {
  return ::testing::Test::HasFailure() ||
         ::testing::UnitTest::GetInstance()->failed_test_count() > 0;
}

// In a sanitizer build (SLUICE_SANITIZE) a child's report goes to its error log, and a daemon's
// exit code is not always checked: the report fails the test instead, and is shown.
void FailOnSanitizerReport(const std::string& log_path) {
  std::string log = ReadFile(log_path);
  if (log.find("Sanitizer") == std::string::npos) return;
  size_t at = std::string::npos;
  for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                             "WARNING: ThreadSanitizer", "runtime error: "}) {
    at = std::min(at, log.find(marker));
  }
  if (at == std::string::npos) return;
  size_t line = log.rfind('\n', at);
  ADD_FAILURE() << "sanitizer report in " << log_path << ":\n"
                << log.substr(line == std::string::npos ? 0 : line + 1, 20000);
}

}  // namespace

// ---- environment and files ----

std::string BinDir() { return EnvPath("SLUICE_BIN_DIR"); }
std::string TestJobLibrary(const std::string& name) {
  return absl::StrCat(EnvPath("SLUICE_TEST_JOBS_DIR"), "/lib", name, ".so");
}
std::string ExampleLibrary(const std::string& name) {
  return absl::StrCat(EnvPath("SLUICE_EXAMPLES_DIR"), "/lib", name, ".so");
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
      port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::string MakeTempDir() {
  std::string name = "sluice-it";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    name = absl::StrCat(name, "-", info->test_suite_name(), "-", info->name());
  } else if (const auto* suite = ::testing::UnitTest::GetInstance()->current_test_suite()) {
    name = absl::StrCat(name, "-", suite->name());
  }
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/", name, ".XXXXXX");
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) {
    ADD_FAILURE() << "mkdtemp(" << templ << "): " << std::strerror(errno);
    return "/nonexistent";
  }
  return buf.data();
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool WriteFile(const std::string& path, const std::string& content) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(content.data(), static_cast<std::streamsize>(content.size()));
  f.close();
  return static_cast<bool>(f);
}

std::string LastLines(const std::string& text, int n) {
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (int i = 0; i < n && pos != std::string::npos && pos > 0; ++i) {
    pos = text.rfind('\n', pos - 1);
  }
  if (pos == std::string::npos || pos == 0) return text;
  return text.substr(pos + 1);
}

std::map<std::string, std::vector<std::string>> ReadPartFiles(const std::string& dir) {
  std::map<std::string, std::vector<std::string>> parts;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("part-", 0) != 0) continue;
    std::ifstream f(entry.path(), std::ios::binary);
    auto& lines = parts[name];
    std::string line;
    while (std::getline(f, line)) lines.push_back(line);
  }
  return parts;
}

::testing::AssertionResult SequenceOutputIsCorrect(const std::string& dir, int64_t count,
                                                   int64_t keys) {
  auto parts = ReadPartFiles(dir);
  if (parts.empty()) return ::testing::AssertionFailure() << "no part files in " << dir;
  std::unordered_map<int64_t, int64_t> max_sum, updates;
  std::unordered_map<int64_t, std::string> file_of;
  int64_t lines = 0;
  for (const auto& [file, content] : parts) {
    for (const std::string& line : content) {
      ++lines;
      size_t comma = line.find(',');
      char* end = nullptr;
      if (comma == std::string::npos) {
        return ::testing::AssertionFailure() << file << ": malformed line '" << line << "'";
      }
      int64_t key = std::strtoll(line.c_str(), &end, 10);
      int64_t sum = std::strtoll(line.c_str() + comma + 1, &end, 10);
      if (key < 0 || key >= keys) {
        return ::testing::AssertionFailure() << file << ": key out of range in '" << line << "'";
      }
      auto [it, inserted] = file_of.emplace(key, file);
      if (!inserted && it->second != file) {
        return ::testing::AssertionFailure()
               << "key " << key << " appears in both " << it->second << " and " << file;
      }
      updates[key]++;
      max_sum[key] = std::max(max_sum[key], sum);
    }
  }
  if (lines != count) {
    return ::testing::AssertionFailure()
           << "expected " << count << " output lines (one per number), got " << lines;
  }
  for (int64_t k = 0; k < std::min(keys, count); ++k) {
    // Numbers k, k+K, ..., below count.
    int64_t n = (count - 1 - k) / keys + 1;
    int64_t expected = n * k + keys * n * (n - 1) / 2;
    if (updates[k] != n || max_sum[k] != expected) {
      return ::testing::AssertionFailure()
             << "key " << k << ": expected " << n << " updates and sum " << expected << ", got "
             << updates[k] << " updates and sum " << max_sum[k];
    }
  }
  return ::testing::AssertionSuccess();
}

namespace {

// Reads the committed part files of a sequence-count sink: every key of 0..keys-1 must have
// exactly one `key,count,violations` line, which `check` judges (a problem to report, or "").
// `counts` (when given) gets each key's count.
::testing::AssertionResult CheckSequenceCountOutput(
    const std::string& dir, int64_t keys,
    const std::function<std::string(int64_t count, int64_t violations)>& check,
    std::vector<int64_t>* counts) {
  static const std::regex kCommitted(R"(part-\d+-\d+)");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return ::testing::AssertionFailure() << "no folder " << dir;
  std::vector<std::string> problems;
  auto problem = [&](std::string p) {
    if (problems.size() < 10) problems.push_back(std::move(p));
  };
  // Per key, the index in `names` of the file that has its line (-1: none yet). Lines are
  // parsed by hand: the large-state test checks millions of them.
  std::vector<int32_t> file_of(static_cast<size_t>(keys), -1);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("part-", 0) != 0) continue;
    if (!std::regex_match(name, kCommitted)) {
      problem(absl::StrCat("visible file '", name, "' is not a committed part file"));
      continue;
    }
    names.push_back(name);
    std::ifstream f(entry.path(), std::ios::binary);
    std::string line;
    while (std::getline(f, line)) {
      std::vector<absl::string_view> fields = absl::StrSplit(line, ',');
      int64_t key = 0, count = 0, violations = 0;
      if (fields.size() != 3 || !absl::SimpleAtoi(fields[0], &key) ||
          !absl::SimpleAtoi(fields[1], &count) || !absl::SimpleAtoi(fields[2], &violations)) {
        problem(absl::StrCat(name, ": malformed line '", line, "'"));
        continue;
      }
      if (key < 0 || key >= keys) {
        problem(absl::StrCat(name, ": key out of range in '", line, "'"));
        continue;
      }
      int32_t& seen_in = file_of[static_cast<size_t>(key)];
      if (seen_in >= 0) {
        problem(absl::StrCat("key ", key, " appears more than once (", names[seen_in], " and ",
                             name, ")"));
      }
      seen_in = static_cast<int32_t>(names.size() - 1);
      if (counts) (*counts)[static_cast<size_t>(key)] = count;
      std::string wrong = check(count, violations);
      if (!wrong.empty()) problem(absl::StrCat(name, ": key ", key, " ", wrong));
    }
  }
  if (ec) problem(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  int64_t missing = 0;
  std::string some_missing;
  for (int64_t k = 0; k < keys; ++k) {
    if (file_of[static_cast<size_t>(k)] >= 0) continue;
    if (++missing <= 10) absl::StrAppend(&some_missing, some_missing.empty() ? "" : " ", k);
  }
  if (missing > 0) {
    problem(absl::StrCat(missing, " of ", keys, " keys have no line (", some_missing,
                         missing > 10 ? " ..." : "", ")"));
  }
  if (problems.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "output in " << dir << " (" << names.size() << " committed part files) is wrong:\n  "
         << absl::StrJoin(problems, "\n  ");
}

}  // namespace

::testing::AssertionResult SequenceCountOutputIsCorrect(const std::string& dir, int64_t keys,
                                                        int64_t per_key, bool exactly_once) {
  return CheckSequenceCountOutput(
      dir, keys,
      [&](int64_t count, int64_t violations) -> std::string {
        if (exactly_once && (count != per_key || violations != 0)) {
          return absl::StrCat("has count ", count, " and ", violations, " violations, expected ",
                              per_key, " and 0");
        }
        if (!exactly_once && count < per_key) {
          return absl::StrCat("has count ", count, ", expected at least ", per_key,
                              " (records were lost)");
        }
        return "";
      },
      nullptr);
}

::testing::AssertionResult SequenceCountOutputIsExact(const std::string& dir, int64_t keys,
                                                      int64_t max_spread) {
  std::vector<int64_t> counts(static_cast<size_t>(keys), 0);
  ::testing::AssertionResult read = CheckSequenceCountOutput(
      dir, keys,
      [](int64_t count, int64_t violations) -> std::string {
        if (violations != 0) return absl::StrCat("has ", violations, " gaps or repeats");
        if (count < 1) return absl::StrCat("has count ", count);
        return "";
      },
      &counts);
  if (!read) return read;
  const auto [low, high] = std::minmax_element(counts.begin(), counts.end());
  if (*high - *low > max_spread) {
    return ::testing::AssertionFailure()
           << "output in " << dir << ": counts range from " << *low << " to " << *high
           << ", more than " << max_spread << " apart";
  }
  return ::testing::AssertionSuccess() << *low << " to " << *high << " records a key";
}

std::vector<std::string> InProgressFiles(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(".part-", 0) == 0 && name.size() > 11 &&
        name.compare(name.size() - 11, 11, ".inprogress") == 0) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<proto::CheckpointMetadata> NewestCheckpoint(const std::string& job_dir) {
  std::optional<proto::CheckpointMetadata> newest;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(job_dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("chk-", 0) != 0) continue;
    auto meta = ReadMetadata(e.path().string());
    if (meta.ok() && (!newest || meta->checkpoint_id() > newest->checkpoint_id())) newest = *meta;
  }
  return newest;
}

SharedStateSizes SharedStateSizesOf(const proto::CheckpointMetadata& meta) {
  SharedStateSizes sizes;
  for (const auto& h : meta.handles()) {
    if (h.shared_files_size() == 0) continue;
    sizes.stored += h.checkpointed_size();
    sizes.full += h.full_size();
  }
  return sizes;
}

// ---- processes ----

std::optional<ProcStatus> ReadProcStatus(pid_t pid) {
  std::ifstream f(absl::StrCat("/proc/", pid, "/status"));
  if (!f) return std::nullopt;
  ProcStatus st;
  bool rss = false, threads = false;
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      st.rss_bytes = std::strtoll(line.c_str() + 6, nullptr, 10) * 1024;
      rss = true;
    } else if (line.rfind("Threads:", 0) == 0) {
      st.threads = static_cast<int>(std::strtol(line.c_str() + 8, nullptr, 10));
      threads = true;
    }
  }
  // A zombie has no VmRSS line.
  if (!rss || !threads) return std::nullopt;
  return st;
}

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds poll) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv, const std::string& stdout_path,
    const std::string& stderr_path) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) {
    if (std::strncmp(*e, "SLUICE_CONF_DIR=", 16) != 0) env.push_back(*e);
  }
  env.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || err < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
      for (int fd = 3; fd < 4096; ++fd) ::close(fd);
    }
    ::execve(args[0], args.data(), env.data());
    static const char kMsg[] = "exec failed: ";
    ssize_t ignored = ::write(2, kMsg, sizeof kMsg - 1);
    ignored = ::write(2, args[0], std::strlen(args[0]));
    ignored = ::write(2, "\n", 1);
    (void)ignored;
    ::_exit(127);
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, stdout_path, stderr_path));
}

ChildProcess::~ChildProcess() { Stop(); }

void ChildProcess::Reap(bool block) {
  if (exit_code_) return;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    exit_code_ = DecodeWaitStatus(status);
    FailOnSanitizerReport(stderr_path_);
  } else if (r < 0) {
    exit_code_ = -1;  // not our child any more: treat as gone
  }
}

bool ChildProcess::Running() {
  Reap(false);
  return !exit_code_.has_value();
}

bool ChildProcess::WaitForExit(std::chrono::milliseconds timeout) {
  return WaitUntil([this] { return !Running(); }, timeout, 10ms);
}

void ChildProcess::Signal(int sig) {
  if (Running()) ::kill(pid_, sig);
}

int ChildProcess::Stop(std::chrono::milliseconds grace, bool* killed) {
  if (killed) *killed = false;
  if (Running()) {
    ::kill(pid_, SIGTERM);
    if (!WaitForExit(grace)) {
      ::kill(pid_, SIGKILL);
      Reap(true);
      if (killed) *killed = true;
    }
  }
  return *exit_code_;
}

std::string CommandResult::Describe() const {
  return absl::StrCat("exit code ", exit_code, timed_out ? " (timed out, killed)" : "",
                      "\n--- stdout ---\n", LastLines(out, 40), "\n--- stderr ---\n",
                      LastLines(err, 40));
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& dir,
                         std::chrono::milliseconds timeout) {
  static int counter = 0;
  ++counter;
  std::string base =
      absl::StrCat(dir, "/cmd-", counter, "-", fs::path(argv.at(0)).filename().string());
  CommandResult r;
  auto child = ChildProcess::Start(argv, base + ".out", base + ".err");
  if (!child.ok()) {
    r.err = child.status().ToString();
    return r;
  }
  if (!(*child)->WaitForExit(timeout)) {
    r.timed_out = true;
    (*child)->Signal(SIGKILL);
  }
  r.exit_code = (*child)->Stop();
  r.out = ReadFile(base + ".out");
  r.err = ReadFile(base + ".err");
  return r;
}

namespace {

// Sends `request` over TLS on the connected socket `fd`, verifying the server against `ca_file`,
// and reads the answer until the server closes; "" when the handshake fails.
std::string TlsExchange(int fd, const std::string& ca_file, const std::string& request) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  std::string all;
  if (ctx == nullptr) return all;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL* ssl = nullptr;
  if (SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) == 1 &&
      (ssl = SSL_new(ctx)) != nullptr && SSL_set_fd(ssl, fd) == 1 && SSL_connect(ssl) == 1) {
    size_t sent = 0;
    while (sent < request.size()) {
      int n = SSL_write(ssl, request.data() + sent, static_cast<int>(request.size() - sent));
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    char buf[65536];
    for (;;) {
      int n = SSL_read(ssl, buf, sizeof(buf));
      if (n <= 0) break;
      all.append(buf, static_cast<size_t>(n));
    }
  }
  if (ssl != nullptr) SSL_free(ssl);
  SSL_CTX_free(ctx);
  return all;
}

}  // namespace

RawHttpResponse RawHttpExchange(int port, const std::string& request, std::chrono::seconds timeout,
                                const std::string& ca_file) {
  RawHttpResponse r;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return r;
  timeval tv{static_cast<time_t>(timeout.count()), 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return r;
  }
  std::string all;
  if (ca_file.empty()) {
    size_t sent = 0;
    while (sent < request.size()) {
      ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      all.append(buf, static_cast<size_t>(n));
    }
  } else {
    all = TlsExchange(fd, ca_file, request);
  }
  ::close(fd);
  std::smatch m;
  if (std::regex_search(all, m, std::regex(R"(^HTTP/1\.[01] (\d{3}))"))) r.status = std::stoi(m[1]);
  size_t end = all.find("\r\n\r\n");
  if (end != std::string::npos) {
    r.headers = all.substr(0, end);
    for (char& c : r.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.body = all.substr(end + 4);
  }
  return r;
}

RawHttpResponse RawHttpRequest(int port, const std::string& method, const std::string& target,
                               const std::string& body, std::chrono::seconds timeout) {
  const RestTestAccess& access = CurrentRestAccess();
  std::string req =
      absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
  if (!access.token.empty()) absl::StrAppend(&req, "Authorization: Bearer ", access.token, "\r\n");
  if (!body.empty() || method != "GET") {  // (httplib waits for a body it is not told the size of)
    absl::StrAppend(&req, "Content-Type: application/json\r\nContent-Length: ", body.size(),
                    "\r\n");
  }
  absl::StrAppend(&req, "\r\n", body);
  return RawHttpExchange(port, req, timeout, access.ca_file);
}

CommandResult RunCli(const std::vector<std::string>& args, const std::string& dir,
                     std::chrono::milliseconds timeout) {
  std::vector<std::string> argv{BinDir() + "/sluice"};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, dir, timeout);
}

// ---- TestCluster ----

namespace {
// True when something accepts TCP connections on 127.0.0.1:port.
bool Accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}
}  // namespace

namespace {
bool EnvIsOne(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::string(v) == "1";
}
RestTestAccess& MutableRestAccess() {
  static RestTestAccess access;
  return access;
}
}  // namespace

const RestTestAccess& CurrentRestAccess() { return MutableRestAccess(); }

TestCluster::TestCluster(ClusterOptions options) : options_(std::move(options)) {
  if (EnvIsOne("SLUICE_TEST_INTERNAL_TLS")) options_.internal_tls = true;
  if (EnvIsOne("SLUICE_TEST_REST_TLS")) options_.rest_tls_and_token = true;
}

TestCluster::~TestCluster() {
  bool failed = CurrentTestFailed();
  (void)Stop();
  if (failed && !dir_.empty()) {
    std::cerr << "==== cluster folder " << dir_ << (KeepTestDirs() ? " (kept)" : "") << "\n";
    std::cerr << "==== JobManager log (tail)\n" << LastLines(JobManagerLog(), 30) << "\n";
    for (int i = 0; i < num_task_managers(); ++i) {
      std::cerr << "==== TaskManager " << i << " log (tail)\n"
                << LastLines(TaskManagerLog(i), 30) << "\n";
    }
  }
  if (!dir_.empty() && !KeepTestDirs()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

std::vector<std::string> TestCluster::DaemonArgs(const std::string& binary) const {
  std::vector<std::string> settings = {
      absl::StrCat("jobmanager.rpc.port=", jm_port_),
      "jobmanager.bind-host=127.0.0.1",
      "jobmanager.rpc.address=127.0.0.1",
      "taskmanager.host=127.0.0.1",
      "taskmanager.bind-host=127.0.0.1",
      absl::StrCat("taskmanager.numberOfTaskSlots=", options_.slots_per_task_manager),
      "heartbeat.interval=200ms",
      "heartbeat.timeout=2s",
      "rest.port=0",
      absl::StrCat("blob.storage.directory=", dir_, "/blobs"),
      // Libraries uploaded over REST stay in the cluster's folder (a restart keeps them).
      absl::StrCat("web.upload.dir=", dir_, "/web-upload"),
      // RocksDB working directories in the cluster's folder, removed with it.
      absl::StrCat("state.backend.rocksdb.localdir=", dir_, "/rocksdb"),
  };
  settings.insert(settings.end(), tls_settings_.begin(), tls_settings_.end());
  settings.insert(settings.end(), options_.extra_config.begin(), options_.extra_config.end());
  std::vector<std::string> argv{BinDir() + "/" + binary};
  if (!options_.config_dir.empty()) argv.insert(argv.end(), {"--config-dir", options_.config_dir});
  for (const auto& s : settings) {
    argv.push_back("-D");
    argv.push_back(s);
  }
  return argv;
}

absl::Status TestCluster::StartJobManager() {
  // The port may be taken between FreePort() and the bind: try a few.
  std::string last_error;
  for (int attempt = 0; attempt < 3; ++attempt) {
    jm_port_ = FreePort();
    if (jm_port_ == 0) return absl::InternalError("cannot find a free port");
    std::string log = absl::StrCat(dir_, "/jobmanager-", attempt);
    auto jm = ChildProcess::Start(DaemonArgs("sluice-jobmanager"), log + ".out", log + ".log");
    if (!jm.ok()) return jm.status();
    jm_ = std::move(*jm);
    // Wait with plain TCP connects: a gRPC channel that failed to connect backs off for seconds.
    bool up = WaitUntil([&] { return !jm_->Running() || Accepts(jm_port_); }, 20s, 10ms);
    if (jm_->Running() && up) {
      client_ = std::make_unique<JobClient>(jm_address(), 10s);
      auto ov = client_->Overview();
      if (ov.ok()) return absl::OkStatus();
      last_error = absl::StrCat("JobManager on port ", jm_port_,
                                " does not answer: ", ov.status().ToString());
      jm_->Stop();
      continue;
    }
    jm_->Stop();
    last_error =
        absl::StrCat("JobManager on port ", jm_port_, " exited with ",
                     jm_->exit_code().value_or(-1), up ? "" : " or did not answer within 20 s",
                     ":\n", LastLines(ReadFile(jm_->stderr_path()), 20));
  }
  return absl::UnavailableError(last_error);
}

absl::Status TestCluster::Start() {
  dir_ = MakeTempDir();
  fs::create_directories(dir_ + "/blobs");
  const std::string certs = dir_ + "/certs";
  if (options_.internal_tls || options_.rest_tls_and_token) {
    const char* src = std::getenv("SLUICE_SOURCE_DIR");
    if (src == nullptr) return absl::FailedPreconditionError("SLUICE_SOURCE_DIR is not set");
    CommandResult made = RunCommand({std::string(src) + "/deploy/gen-certs.sh", certs}, dir_, 60s);
    if (made.exit_code != 0) {
      return absl::InternalError("deploy/gen-certs.sh failed: " + made.Describe());
    }
  }
  if (options_.internal_tls) {
    tls_settings_ = {"security.ssl.internal.enabled=true",
                     absl::StrCat("security.ssl.internal.key=", certs, "/internal.key"),
                     absl::StrCat("security.ssl.internal.cert=", certs, "/internal.pem"),
                     absl::StrCat("security.ssl.internal.trust-cert=", certs, "/ca.pem")};
  }
  RestTestAccess& rest = MutableRestAccess();
  rest = RestTestAccess();
  if (options_.rest_tls_and_token) {
    rest.ca_file = certs + "/ca.pem";
    rest.token = "test-rest-token-0123456789abcdef";
    const std::string token_file = dir_ + "/rest-token";
    if (!WriteFile(token_file, rest.token + "\n")) {
      return absl::InternalError("cannot write " + token_file);
    }
    // The CLI gets them too (Cli()): its -m may name the REST address.
    for (std::string kv : std::vector<std::string>{
             "security.ssl.rest.enabled=true", "security.ssl.rest.key=" + certs + "/internal.key",
             "security.ssl.rest.cert=" + certs + "/internal.pem",
             "security.ssl.rest.trust-cert=" + rest.ca_file,
             "security.rest.auth.token-file=" + token_file}) {
      tls_settings_.push_back(std::move(kv));
    }
  }
  // This process's own calls (client(), the tests' channels) use the cluster's setting.
  Configuration tls;
  for (const std::string& kv : tls_settings_) {
    size_t eq = kv.find('=');
    if (absl::Status s = tls.Set(kv.substr(0, eq), kv.substr(eq + 1)); !s.ok()) return s;
  }
  if (absl::Status s = ConfigureInternalTls(tls); !s.ok()) return s;
  if (absl::Status s = StartJobManager(); !s.ok()) return s;
  for (int i = 0; i < options_.task_managers; ++i) {
    std::string log = absl::StrCat(dir_, "/taskmanager-", i);
    auto tm = ChildProcess::Start(DaemonArgs("sluice-taskmanager"), log + ".out", log + ".log");
    if (!tm.ok()) return tm.status();
    tms_.push_back(std::move(*tm));
    tm_killed_.push_back(false);
  }
  std::string problem;
  bool registered = WaitUntil(
      [&] {
        for (int i = 0; i < num_task_managers(); ++i) {
          if (!tms_[i]->Running()) {
            problem =
                absl::StrCat("TaskManager ", i, " exited with ", tms_[i]->exit_code().value_or(-1),
                             ":\n", LastLines(TaskManagerLog(i), 20));
            return true;
          }
        }
        if (!jm_->Running()) {
          problem = absl::StrCat("the JobManager exited:\n", LastLines(JobManagerLog(), 20));
          return true;
        }
        auto ov = client_->Overview();
        return ov.ok() && ov->task_managers_size() == options_.task_managers;
      },
      30s, 20ms);
  if (!problem.empty()) return absl::InternalError(problem);
  if (!registered) {
    return absl::DeadlineExceededError(absl::StrCat(
        "the TaskManagers did not register within 30 s\n", LastLines(JobManagerLog(), 20)));
  }
  static const std::regex kListening(R"(TaskManager (tm-\S+) listening on (\S+) )");
  for (int i = 0; i < num_task_managers(); ++i) {
    std::smatch m;
    std::string log;
    // The line may still be on its way to the file when the JobManager already lists the
    // TaskManager.
    WaitUntil([&] { return std::regex_search(log = TaskManagerLog(i), m, kListening); }, 5s, 10ms);
    if (m.empty()) {
      return absl::InternalError(
          absl::StrCat("TaskManager ", i, " did not log its id:\n", LastLines(log, 20)));
    }
    tm_ids_.push_back(m[1]);
    tm_addresses_.push_back(m[2]);
  }
  return absl::OkStatus();
}

absl::Status TestCluster::Stop() {
  std::vector<std::string> problems;
  auto stop_all = [&](std::vector<std::pair<std::string, ChildProcess*>> procs) {
    for (auto& [name, p] : procs) p->Signal(SIGTERM);
    for (auto& [name, p] : procs) {
      bool killed = false;
      int code = p->Stop(10s, &killed);
      if (killed) {
        problems.push_back(name + " did not stop within 10 s of SIGTERM and was killed");
      } else if (code != 0) {
        problems.push_back(absl::StrCat(name, " exited with ", code));
      }
    }
  };
  std::vector<std::pair<std::string, ChildProcess*>> tms;
  for (int i = 0; i < num_task_managers(); ++i) {
    if (!tm_killed_[i] && tms_[i]->Running())
      tms.emplace_back(absl::StrCat("TaskManager ", i), tms_[i].get());
  }
  stop_all(tms);
  // An idle client connection holds the JobManager's gRPC shutdown to its 2 s deadline.
  client_.reset();
  if (jm_ && jm_->Running()) stop_all({{"JobManager", jm_.get()}});
  if (problems.empty()) return absl::OkStatus();
  return absl::InternalError(absl::StrJoin(problems, "; "));
}

std::string TestCluster::jm_address() const { return absl::StrCat("127.0.0.1:", jm_port_); }
pid_t TestCluster::jm_pid() const { return jm_ ? jm_->pid() : -1; }
pid_t TestCluster::tm_pid(int i) const { return tms_.at(i)->pid(); }
std::string TestCluster::JobManagerLog() const { return jm_ ? ReadFile(jm_->stderr_path()) : ""; }
std::string TestCluster::TaskManagerLog(int i) const { return ReadFile(tms_.at(i)->stderr_path()); }
bool TestCluster::JobManagerRunning() { return jm_ && jm_->Running(); }
bool TestCluster::TaskManagerRunning(int i) { return tms_.at(i)->Running(); }

void TestCluster::KillTaskManager(int i) {
  tm_killed_.at(i) = true;
  tms_.at(i)->Signal(SIGKILL);
  tms_.at(i)->WaitForExit(10s);
}

absl::StatusOr<int> TestCluster::AddTaskManager() {
  const int i = num_task_managers();
  std::string log = absl::StrCat(dir_, "/taskmanager-", i);
  auto tm = ChildProcess::Start(DaemonArgs("sluice-taskmanager"), log + ".out", log + ".log");
  if (!tm.ok()) return tm.status();
  tms_.push_back(std::move(*tm));
  tm_killed_.push_back(false);
  tm_ids_.emplace_back();
  tm_addresses_.emplace_back();
  static const std::regex kListening(R"(TaskManager (tm-\S+) listening on (\S+) )");
  std::string problem;
  bool registered = WaitUntil(
      [&] {
        if (!tms_[i]->Running()) {
          problem =
              absl::StrCat("TaskManager ", i, " exited with ", tms_[i]->exit_code().value_or(-1),
                           ":\n", LastLines(TaskManagerLog(i), 20));
          return true;
        }
        if (tm_ids_[i].empty()) {
          std::smatch m;
          std::string text = TaskManagerLog(i);
          if (!std::regex_search(text, m, kListening)) return false;
          tm_ids_[i] = m[1];
          tm_addresses_[i] = m[2];
        }
        auto ov = client_->Overview();
        if (!ov.ok()) return false;
        for (const auto& t : ov->task_managers()) {
          if (t.tm_id() == tm_ids_[i]) return true;
        }
        return false;
      },
      30s, 20ms);
  if (problem.empty() && !registered) {
    problem = absl::StrCat("TaskManager ", i, " did not register within 30 s:\n",
                           LastLines(TaskManagerLog(i), 20));
  }
  if (!problem.empty()) {
    tms_[i]->Stop();
    tm_killed_[i] = true;  // stopped here: neither IsHealthy() nor Stop() expects it to run
    return absl::InternalError(problem);
  }
  return i;
}

int TestCluster::TaskManagerIndex(const std::string& tm_id) const {
  for (int i = 0; i < static_cast<int>(tm_ids_.size()); ++i) {
    if (tm_ids_[i] == tm_id) return i;
  }
  return -1;
}

int TestCluster::RestPort() const {
  static const std::regex kRest(R"(REST API and dashboard at https?://[^:/]+:(\d+)/)");
  std::smatch m;
  std::string log = JobManagerLog();
  if (!std::regex_search(log, m, kRest)) return -1;
  return std::stoi(m[1]);
}

CommandResult TestCluster::Cli(std::vector<std::string> args, std::chrono::milliseconds timeout) {
  static const std::set<std::string> kTalkToJobManager{"run",       "list", "cancel",
                                                       "savepoint", "stop", "rescale"};
  if (!args.empty() && kTalkToJobManager.count(args[0])) {
    args.insert(args.begin() + 1, {"-m", jm_address()});
    for (const std::string& kv : tls_settings_) args.insert(args.begin() + 1, {"-D", kv});
  }
  return RunCli(args, dir_, timeout);
}

absl::StatusOr<std::string> TestCluster::SubmitDetached(const std::string& library,
                                                        const std::vector<std::string>& run_flags,
                                                        const std::vector<std::string>& job_args) {
  std::vector<std::string> args{"run", "-d"};
  args.insert(args.end(), run_flags.begin(), run_flags.end());
  args.push_back(library);
  if (!job_args.empty()) {
    args.push_back("--");
    args.insert(args.end(), job_args.begin(), job_args.end());
  }
  CommandResult r = Cli(args, 60s);
  static const std::regex kSubmitted(R"(Job has been submitted with JobID ([0-9a-f]{32}))");
  std::smatch m;
  if (r.exit_code != 0 || !std::regex_search(r.out, m, kSubmitted)) {
    return absl::InternalError("sluice run -d did not submit the job: " + r.Describe());
  }
  return m[1].str();
}

absl::StatusOr<proto::JobStatus> TestCluster::WaitForJob(
    const std::string& job_id, const std::function<bool(const proto::JobStatus&)>& done,
    std::chrono::milliseconds timeout) {
  absl::StatusOr<proto::JobStatus> last = absl::NotFoundError("never polled");
  bool ok = WaitUntil(
      [&] {
        last = client_->GetJob(job_id);
        return last.ok() && done(*last);
      },
      timeout, 50ms);
  if (ok) return last;
  if (!last.ok()) return last.status();
  return absl::DeadlineExceededError(
      absl::StrCat("job ", job_id, " still ", std::string(JobStateName(last->state())), " after ",
                   timeout.count(), " ms", last->failure().empty() ? "" : ": ", last->failure()));
}

absl::StatusOr<proto::JobStatus> TestCluster::WaitUntilOrEnd(
    const std::string& job_id, const std::function<bool(const proto::JobStatus&)>& reached,
    std::chrono::milliseconds timeout) {
  return WaitForJob(
      job_id,
      [&](const proto::JobStatus& s) { return IsTerminalJobState(s.state()) || reached(s); },
      timeout);
}

absl::StatusOr<proto::JobStatus> TestCluster::WaitForState(const std::string& job_id,
                                                           proto::JobState state,
                                                           std::chrono::milliseconds timeout) {
  auto st = WaitForJob(
      job_id,
      [&](const proto::JobStatus& s) {
        return s.state() == state || IsTerminalJobState(s.state());
      },
      timeout);
  if (st.ok() && st->state() != state) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " is ", std::string(JobStateName(st->state())), ", expected ",
        std::string(JobStateName(state)), st->failure().empty() ? "" : ": ", st->failure()));
  }
  return st;
}

bool AllTasksRunning(const proto::JobStatus& s) {
  if (s.state() != proto::JOB_RUNNING || s.tasks_size() == 0) return false;
  for (const auto& t : s.tasks()) {
    if (t.state() != proto::TASK_RUNNING) return false;
  }
  return true;
}

absl::StatusOr<proto::JobStatus> TestCluster::WaitForAllTasksRunning(
    const std::string& job_id, std::chrono::milliseconds timeout) {
  auto st = WaitForJob(
      job_id,
      [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()) || AllTasksRunning(s); },
      timeout);
  if (st.ok() && st->state() != proto::JOB_RUNNING) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job_id, " ended ", std::string(JobStateName(st->state())), ": ", st->failure()));
  }
  return st;
}

::testing::AssertionResult TestCluster::IsHealthy() {
  if (!JobManagerRunning()) {
    return ::testing::AssertionFailure()
           << "the JobManager exited with " << jm_->exit_code().value_or(-1) << ":\n"
           << LastLines(JobManagerLog(), 20);
  }
  for (int i = 0; i < num_task_managers(); ++i) {
    if (!tm_killed_[i] && !TaskManagerRunning(i)) {
      return ::testing::AssertionFailure()
             << "TaskManager " << i << " exited with " << tms_[i]->exit_code().value_or(-1) << ":\n"
             << LastLines(TaskManagerLog(i), 20);
    }
  }
  auto ov = client_->Overview();
  if (!ov.ok())
    return ::testing::AssertionFailure() << "the JobManager does not answer: " << ov.status();
  for (int i = 0; i < num_task_managers(); ++i) {
    if (tm_killed_[i]) continue;
    bool listed = false;
    for (const auto& tm : ov->task_managers()) listed |= tm.tm_id() == tm_ids_[i];
    if (!listed) {
      return ::testing::AssertionFailure() << "the JobManager does not list TaskManager "
                                           << tm_ids_[i] << ": " << ov->DebugString();
    }
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult TestCluster::RunsASmallJob(int parallelism) {
  constexpr int64_t kCount = 20000, kKeys = 10;
  std::string out = absl::StrCat(dir_, "/small-job-", ++small_jobs_);
  CommandResult r =
      Cli({"run", "-p", std::to_string(parallelism), TestJobLibrary("sequence_job"), "--",
           "--count", std::to_string(kCount), "--keys", std::to_string(kKeys), "--output", out},
          60s);
  if (r.exit_code != 0 || r.out.find("FINISHED") == std::string::npos) {
    return ::testing::AssertionFailure() << "a small job did not finish: " << r.Describe();
  }
  return SequenceOutputIsCorrect(out, kCount, kKeys);
}

}  // namespace sluice::itest
