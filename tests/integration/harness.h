// Integration-test harness: real sluice-jobmanager, sluice-taskmanager and sluice (CLI) processes
// on 127.0.0.1, started with fork/exec, their standard output and error in files of a temporary
// folder per cluster.
//
// Paths come from the environment ctest sets (tests/CMakeLists.txt): SLUICE_BIN_DIR,
// SLUICE_TEST_JOBS_DIR, SLUICE_EXAMPLES_DIR. Every wait is bounded. Processes are signalled by
// their pid only, never by name; a child is also killed by the kernel when the test process dies
// (PR_SET_PDEATHSIG), so a crashed test leaves no daemon behind. Set SLUICE_KEEP_TEST_DIR=1 to
// keep the temporary folders; on a test failure the tail of every daemon's log is printed.
//
// Single-threaded use: call everything from the test's main thread.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/job_client.h"
#include "proto/checkpoint.pb.h"

namespace sluice::itest {

// ---- environment and files ----

// The folder of the sluice binaries ($SLUICE_BIN_DIR).
std::string BinDir();
// $SLUICE_TEST_JOBS_DIR/lib<name>.so, e.g. TestJobLibrary("sequence_job").
std::string TestJobLibrary(const std::string& name);
// $SLUICE_EXAMPLES_DIR/lib<name>.so, e.g. ExampleLibrary("wordcount").
std::string ExampleLibrary(const std::string& name);

// A TCP port of 127.0.0.1 that was free a moment ago (bound to port 0, then closed).
int FreePort();

// Creates a new folder under $TMPDIR (or /tmp) whose name carries the running test's name.
std::string MakeTempDir();
// The whole file, or "" when it cannot be read.
std::string ReadFile(const std::string& path);
// Writes `content` to `path`; returns false on error.
bool WriteFile(const std::string& path, const std::string& content);
// The job is RUNNING and every one of its tasks reports RUNNING.
bool AllTasksRunning(const proto::JobStatus& s);
// The last `n` lines of `text`.
std::string LastLines(const std::string& text, int n);

// Every line of every part-* file under `dir`, keyed by file name.
std::map<std::string, std::vector<std::string>> ReadPartFiles(const std::string& dir);

// Checks the output of libsequence_job.so run with --count N --keys K --output DIR: one `key,sum`
// line per number (rolling sums), every key in exactly one part file, and the largest sum of
// each key equal to the sum of its numbers.
::testing::AssertionResult SequenceOutputIsCorrect(const std::string& dir, int64_t count,
                                                   int64_t keys);

// Checks the committed output of the sequence-count job (examples/sequence_count, and
// tests/jobs/chaos_count_job.cc) run with --keys K --per-key N --output DIR: one
// `key,count,violations` line for every key 0..K-1 over all `part-<subtask>-<n>` files, each key
// exactly once. With `exactly_once` every count is N and every violations 0; otherwise (an
// at-least-once run: nothing may be lost) every count is at least N. Also fails on a visible
// file named `part-*` that is not a committed file name, e.g. an in-progress file made visible.
::testing::AssertionResult SequenceCountOutputIsCorrect(const std::string& dir, int64_t keys,
                                                        int64_t per_key, bool exactly_once = true);
// The names of the exactly-once file sink's in-progress files (`.part-*.inprogress`) in `dir`.
std::vector<std::string> InProgressFiles(const std::string& dir);
// The same sink's output when the count per key is not known (a source that runs until told
// to stop): every key once, no gap or repeat of its sequence, and the keys' counts at most
// `max_spread` apart.
::testing::AssertionResult SequenceCountOutputIsExact(const std::string& dir, int64_t keys,
                                                      int64_t max_spread);

// The metadata of the newest checkpoint under `job_dir` (<state.checkpoints.dir>/<job-id>) that
// has one; nullopt when there is none yet.
std::optional<proto::CheckpointMetadata> NewestCheckpoint(const std::string& job_dir);
// The bytes a checkpoint stored, and all the bytes its state takes, summed over the subtasks
// whose state refers to shared files (RocksDB instances with incremental checkpoints).
struct SharedStateSizes {
  int64_t stored = 0;
  int64_t full = 0;
};
SharedStateSizes SharedStateSizesOf(const proto::CheckpointMetadata& meta);

// ---- processes ----

struct ProcStatus {
  int64_t rss_bytes = 0;  // VmRSS
  int threads = 0;        // Threads
};
// Reads /proc/<pid>/status; nullopt when the process is gone.
std::optional<ProcStatus> ReadProcStatus(pid_t pid);

// Calls `done` every `poll` until it returns true (then true) or `timeout` passes (then false).
bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout,
               std::chrono::milliseconds poll = std::chrono::milliseconds(50));

// A child process: argv[0] is a path. Standard input is /dev/null, output and error are appended
// to the given files; the environment is the test's without SLUICE_CONF_DIR.
class ChildProcess {
 public:
  // Error when fork fails. A failing exec shows as exit code 127 with a message in `stderr_path`.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv,
                                                             const std::string& stdout_path,
                                                             const std::string& stderr_path);
  // Stop() with the default grace.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& stdout_path() const { return stdout_path_; }
  const std::string& stderr_path() const { return stderr_path_; }
  // True while the process has not exited (reaps it when it has).
  bool Running();
  // Waits up to `timeout` for the exit; true when it exited.
  bool WaitForExit(std::chrono::milliseconds timeout);
  // The exit code (128+N after signal N) once the process has been reaped.
  std::optional<int> exit_code() const { return exit_code_; }
  // Sends `sig` if the process still runs.
  void Signal(int sig);
  // SIGTERM, up to `grace` for the exit, then SIGKILL; returns the exit code. `killed` (if given)
  // tells whether SIGKILL was needed.
  int Stop(std::chrono::milliseconds grace = std::chrono::seconds(10), bool* killed = nullptr);

 private:
  ChildProcess(pid_t pid, std::string out, std::string err)
      : pid_(pid), stdout_path_(std::move(out)), stderr_path_(std::move(err)) {}
  void Reap(bool block);

  pid_t pid_;
  std::string stdout_path_, stderr_path_;
  std::optional<int> exit_code_;
};

struct CommandResult {
  int exit_code = -1;      // 128+N when killed by signal N
  bool timed_out = false;  // killed after the timeout
  std::string out, err;
  // Exit code and both outputs, for assertion messages.
  std::string Describe() const;
};

// Runs argv (argv[0] a path) to its end or for at most `timeout` (then SIGKILL); output files go
// to `dir`.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& dir,
                         std::chrono::milliseconds timeout);
// Runs the `sluice` CLI with `args`.
// An HTTP answer read off the socket: the status code (0: no answer), the header lines
// (lower-cased) and the body.
struct RawHttpResponse {
  int status = 0;
  std::string headers;
  std::string body;
};
// How this test process reaches the REST API of the cluster started last: empty fields for plain
// HTTP without a token; with ClusterOptions::rest_tls_and_token, the CA its certificate is
// signed by and the token.
struct RestTestAccess {
  std::string ca_file;
  std::string token;
};
const RestTestAccess& CurrentRestAccess();

// Sends `method target` to 127.0.0.1:port byte for byte over a fresh connection (no client
// library in between to normalize or encode the target), with `body` as JSON (and a
// Content-Length for every method but GET), and reads the answer until the server closes (at most
// `timeout` per read or write). Over TLS and with the token when CurrentRestAccess() says so.
RawHttpResponse RawHttpRequest(int port, const std::string& method, const std::string& target,
                               const std::string& body = "",
                               std::chrono::seconds timeout = std::chrono::seconds(10));
// Sends `request` (a whole HTTP request, byte for byte) to 127.0.0.1:port over a fresh
// connection, over TLS verifying the server against `ca_file` when it is given, and reads the
// answer until the server closes; status 0 when there was none.
RawHttpResponse RawHttpExchange(int port, const std::string& request,
                                std::chrono::seconds timeout = std::chrono::seconds(10),
                                const std::string& ca_file = "");

CommandResult RunCli(const std::vector<std::string>& args, const std::string& dir,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));

// ---- a cluster ----

struct ClusterOptions {
  // Default: 2.
  int task_managers = 2;
  // taskmanager.numberOfTaskSlots. Default: 2.
  int slots_per_task_manager = 2;
  // More "key=value" settings given to every daemon with -D. Default: none.
  std::vector<std::string> extra_config;
  // A folder with a config.yaml every daemon reads (--config-dir) under the -D settings. Default:
  // none.
  std::string config_dir;
  // Mutual TLS between the daemons, the CLI and this test process (security.ssl.internal.*),
  // with certificates deploy/gen-certs.sh makes in the cluster's folder. Default: off, unless
  // the environment has SLUICE_TEST_INTERNAL_TLS=1 (ctest runs the bad-input tests again so).
  bool internal_tls = false;
  // The REST API over HTTPS with a token (security.ssl.rest.*, security.rest.auth.token-file),
  // which RawHttpRequest and the REST helpers of rest_jar_helpers.h then use (RestTestAccess).
  // Default: off, unless the environment has SLUICE_TEST_REST_TLS=1.
  bool rest_tls_and_token = false;
};

// A JobManager and N TaskManagers on 127.0.0.1, the JobManager on a free port found at run time,
// heartbeats every 200 ms with a 2 s timeout. Start() must succeed before anything else is used.
class TestCluster {
 public:
  explicit TestCluster(ClusterOptions options = {});
  TestCluster(int task_managers, int slots_per_task_manager)
      : TestCluster(ClusterOptions{task_managers, slots_per_task_manager, {}, {}}) {}
  // Stop(); prints the daemons' log tails when the test failed; removes the folder.
  ~TestCluster();
  TestCluster(const TestCluster&) = delete;
  TestCluster& operator=(const TestCluster&) = delete;

  // Starts the daemons and waits (at most 30 s) until every TaskManager has registered. Error
  // with the daemon's log when one exits or the wait runs out.
  absl::Status Start();
  // SIGTERM to every daemon still running, TaskManagers first; SIGKILL after 10 s. Error naming
  // each daemon that had to be killed or exited with a code other than 0. Afterwards only dir()
  // and the logs may be used.
  absl::Status Stop();

  // The security.ssl.internal.* settings of the cluster ("key=value"), empty without TLS.
  const std::vector<std::string>& tls_settings() const { return tls_settings_; }
  // The cluster's temporary folder (logs, blobs, test data).
  const std::string& dir() const { return dir_; }
  std::string jm_address() const;
  int jm_port() const { return jm_port_; }
  // A client of the JobManager with a 10 s deadline per call.
  JobClient& client() { return *client_; }

  int num_task_managers() const { return static_cast<int>(tms_.size()); }
  pid_t jm_pid() const;
  pid_t tm_pid(int i) const;
  // The TaskManager's id (tm-...) and address, from its start-up log line.
  const std::string& tm_id(int i) const { return tm_ids_.at(i); }
  const std::string& tm_address(int i) const { return tm_addresses_.at(i); }
  std::string JobManagerLog() const;
  std::string TaskManagerLog(int i) const;
  bool JobManagerRunning();
  bool TaskManagerRunning(int i);
  // SIGKILL to TaskManager i, and reaps it.
  void KillTaskManager(int i);
  // Starts one more TaskManager with the settings of the others and waits (at most 30 s) until
  // the JobManager lists it. Returns its index (the old num_task_managers()); an error with its
  // log when it exits or does not register in time (it is then stopped).
  absl::StatusOr<int> AddTaskManager();
  // The index of the TaskManager whose id is `tm_id`, or -1.
  int TaskManagerIndex(const std::string& tm_id) const;
  // The REST port the JobManager logged at start-up, or -1 (REST is on, on a free port).
  int RestPort() const;

  // Runs the CLI; `-m <jm_address>` is added after the subcommand for run, list, cancel and
  // rescale.
  CommandResult Cli(std::vector<std::string> args,
                    std::chrono::milliseconds timeout = std::chrono::seconds(120));
  // `sluice run -d [run_flags] library -- job_args`; the job id it prints, or an error with the
  // CLI's output.
  absl::StatusOr<std::string> SubmitDetached(const std::string& library,
                                             const std::vector<std::string>& run_flags,
                                             const std::vector<std::string>& job_args);
  // Polls the job until `done` holds (returns its status) or `timeout` passes
  // (DeadlineExceeded naming the last state).
  absl::StatusOr<proto::JobStatus> WaitForJob(
      const std::string& job_id, const std::function<bool(const proto::JobStatus&)>& done,
      std::chrono::milliseconds timeout);
  // WaitForJob until `reached` holds or the job has ended, whichever comes first.
  absl::StatusOr<proto::JobStatus> WaitUntilOrEnd(
      const std::string& job_id, const std::function<bool(const proto::JobStatus&)>& reached,
      std::chrono::milliseconds timeout);
  absl::StatusOr<proto::JobStatus> WaitForState(const std::string& job_id, proto::JobState state,
                                                std::chrono::milliseconds timeout);
  // Until the job is RUNNING and every one of its tasks reports RUNNING.
  absl::StatusOr<proto::JobStatus> WaitForAllTasksRunning(const std::string& job_id,
                                                          std::chrono::milliseconds timeout);

  // Every daemon not killed on purpose still runs, and the JobManager answers and lists every
  // live TaskManager.
  ::testing::AssertionResult IsHealthy();
  // Runs a small sequence job (at `parallelism`) to FINISHED and checks its output.
  ::testing::AssertionResult RunsASmallJob(int parallelism = 1);

 private:
  std::vector<std::string> DaemonArgs(const std::string& binary) const;
  absl::Status StartJobManager();

  ClusterOptions options_;
  std::string dir_;
  std::vector<std::string> tls_settings_;
  int jm_port_ = 0;
  std::unique_ptr<ChildProcess> jm_;
  std::vector<std::unique_ptr<ChildProcess>> tms_;
  std::vector<bool> tm_killed_;
  std::vector<std::string> tm_ids_, tm_addresses_;
  std::unique_ptr<JobClient> client_;
  int small_jobs_ = 0;
};

}  // namespace sluice::itest

// Fails the test with the status when it is not OK.
#define SLUICE_ASSERT_OK(expr)                                \
  do {                                                        \
    const ::absl::Status _st = (expr);                        \
    ASSERT_TRUE(_st.ok()) << #expr << ": " << _st.ToString(); \
  } while (0)
#define SLUICE_EXPECT_OK(expr)                                \
  do {                                                        \
    const ::absl::Status _st = (expr);                        \
    EXPECT_TRUE(_st.ok()) << #expr << ": " << _st.ToString(); \
  } while (0)
// `lhs = *rexpr`, or fails the test with the status.
#define SLUICE_ASSIGN_OR_FAIL(lhs, rexpr)                                         \
  auto SLUICE_IT_CONCAT(_sor_, __LINE__) = (rexpr);                               \
  ASSERT_TRUE(SLUICE_IT_CONCAT(_sor_, __LINE__).ok())                             \
      << #rexpr << ": " << SLUICE_IT_CONCAT(_sor_, __LINE__).status().ToString(); \
  lhs = std::move(*SLUICE_IT_CONCAT(_sor_, __LINE__))
#define SLUICE_IT_CONCAT_INNER(a, b) a##b
#define SLUICE_IT_CONCAT(a, b) SLUICE_IT_CONCAT_INNER(a, b)
