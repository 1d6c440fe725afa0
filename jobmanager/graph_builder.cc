#include "jobmanager/graph_builder.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/ids.h"

extern char** environ;

namespace sluice {
namespace {

namespace fs = std::filesystem;

// At most the last `max` bytes of a file (a library may write without end to its error output).
std::string ReadTail(const std::string& path, size_t max) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return "";
  const std::streamoff size = f.tellg();
  const std::streamoff from = size > static_cast<std::streamoff>(max) ? size - max : 0;
  f.seekg(from);
  std::string out(static_cast<size_t>(size - from), '\0');
  f.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(f.gcount()));
  return out;
}

// The builder's own error (`error: ...` lines) or else the last lines it wrote, for a message.
std::string ErrorText(const std::string& err) {
  std::vector<std::string> lines = absl::StrSplit(err, '\n', absl::SkipWhitespace());
  for (const auto& line : lines) {
    absl::string_view l = line;
    if (absl::ConsumePrefix(&l, "error: ")) return std::string(l);
  }
  std::string tail;
  for (size_t i = lines.size() > 5 ? lines.size() - 5 : 0; i < lines.size(); ++i) {
    absl::StrAppend(&tail, tail.empty() ? "" : " | ", lines[i]);
  }
  if (tail.size() > 2000) tail = tail.substr(tail.size() - 2000);
  return tail;
}

// The folder of a call, removed when it goes out of scope.
struct TempDir {
  std::string path;
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) fs::remove_all(path, ec);
  }
};

}  // namespace

std::string GraphBuilderPath() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return (self.parent_path() / "sluice").string();
}

absl::StatusOr<proto::JobGraph> BuildGraphInChild(const GraphBuildRequest& request) {
  std::error_code ec;
  fs::path base =
      request.work_dir.empty() ? fs::temp_directory_path(ec) : fs::path(request.work_dir);
  if (!request.work_dir.empty()) {
    fs::create_directories(base, ec);
    fs::permissions(base, fs::perms::owner_all, ec);
  }
  // A fresh folder only this user can enter (mkdtemp: never one that was there).
  std::string templ = (base / "sluice-graph-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a folder for the graph builder in ",
                                            base.string(), ": ", std::strerror(errno)));
  }
  TempDir tmp{templ};
  // An empty configuration file: the builder reads only what it is given here, not the
  // SLUICE_CONF_DIR the JobManager may have inherited.
  std::ofstream(tmp.path + "/config.yaml").close();

  std::vector<std::string> argv{
      GraphBuilderPath(), "graph",  "--output-dir", tmp.path,
      "--config-dir",     tmp.path, "-p",           std::to_string(request.parallelism)};
  for (const auto& [key, value] : request.config) {
    argv.push_back("-D");
    argv.push_back(absl::StrCat(key, "=", value));
  }
  argv.push_back("--");
  argv.push_back(request.library);
  argv.insert(argv.end(), request.args.begin(), request.args.end());
  std::vector<char*> cargv;
  for (std::string& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  const std::string err_path = tmp.path + "/builder.err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  // Only standard input, output and error go to the child: not the JobManager's sockets.
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // A process group of its own, so that a timeout kills what the library started too; the
  // JobManager blocks SIGTERM and SIGINT for its signal thread, the child must not inherit that.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("cannot start the graph builder ", argv[0], ": ", std::strerror(rc)));
  }

  const auto deadline = std::chrono::steady_clock::now() + request.timeout;
  bool timed_out = false;
  while (true) {
    // Ended, but not reaped yet: its process id (the group's) cannot be reused meanwhile.
    siginfo_t info{};
    int r = waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if ((r == 0 && info.si_pid == pid) || (r < 0 && errno != EINTR)) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The builder (when it hangs) and whatever the library left running in its group.
  kill(-pid, SIGKILL);
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }

  if (timed_out) {
    return absl::InvalidArgumentError(
        absl::StrCat("the job library did not build its job graph within ", request.timeout.count(),
                     " ms (web.submit.timeout); the graph builder was killed"));
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return absl::InvalidArgumentError(
        absl::StrCat("the job library crashed while building its job graph (signal ", sig, ", ",
                     strsignal(sig), ")", [&] {
                       std::string e = ErrorText(ReadTail(err_path, kBuilderErrorTailBytes));
                       return e.empty() ? std::string() : ": " + e;
                     }()));
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  const std::string graph_path = tmp.path + "/graph.pb";
  const bool has_graph = fs::exists(graph_path, ec);
  if (code != 0 || !has_graph) {
    std::string e = ErrorText(ReadTail(err_path, kBuilderErrorTailBytes));
    if (code == 1 && !e.empty()) return absl::InvalidArgumentError(e);
    return absl::InvalidArgumentError(
        absl::StrCat("the job library ended the graph builder (exit code ", code,
                     ") before its job graph was built", e.empty() ? "" : ": ", e));
  }
  const uintmax_t size = fs::file_size(graph_path, ec);
  if (ec || size > kMaxBuiltGraphBytes) {
    return absl::InternalError(absl::StrCat("the graph builder wrote a job graph of ", size,
                                            " bytes (at most ", kMaxBuiltGraphBytes, ")"));
  }
  proto::JobGraph graph;
  if (!graph.ParseFromString(ReadTail(graph_path, kMaxBuiltGraphBytes))) {
    return absl::InternalError("the graph builder wrote a job graph that cannot be read");
  }
  return graph;
}

}  // namespace sluice
