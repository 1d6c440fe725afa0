// sluice: the command line client.
//
//   sluice run [-m host:port] [-p N] [-d] [-s chk] libjob.so [args]  submit a job (and wait)
//       -sae (--shutdownOnAttachedExit): a signal to the waiting client cancels the job
//       -s chk -n (--allowNonRestoredState): drop state of operators the job no longer has
//       everything after the library goes to the job (a `--` there is dropped), as in Flink
//   sluice list [-r] [-s] [-a] [--table]                             jobs of the cluster
//   sluice cancel JOBID                                              cancel a job
//   sluice savepoint JOBID [DIR] | -d PATH                           take / dispose a savepoint
//   sluice stop [-p DIR] [-d] JOBID                                  stop with a savepoint
//   sluice rescale JOBID -p N | --vertex V=N ... [-d]                rescale a running job
//   sluice info [-p N] libjob.so [job args]                          job graph as JSON
//   sluice local [-p N] libjob.so [job args]                         run in this process
//
// Every command takes --config-dir DIR (default $SLUICE_CONF_DIR) and -D key=value. -m takes the
// JobManager's RPC address or, as Flink's -m does, its REST address (see ResolveJobManager). An
// argument error prints the command's usage and exits 1.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/cancel_on_exit.h"
#include "client/job_client.h"
#include "client/jobmanager_address.h"
#include "client/mini_cluster.h"
#include "client/savepoint_commands.h"
#include "common/config.h"
#include "common/ids.h"
#include "common/internal_tls.h"
#include "common/job_graph.h"
#include "common/job_library.h"
#include "common/job_states.h"
#include "common/process.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

struct CommonOptions {
  std::string config_dir;
  std::vector<std::string> dynamic;
};

struct JobOptions {
  std::string library;
  std::vector<std::string> args;
  int parallelism = -1;                   // -1: parallelism.default
  std::string restore_path;               // -s: a retained checkpoint to start from
  bool allow_non_restored_state = false;  // -n: drop the state of operators the job lacks
  std::vector<std::string> dynamic;       // -D key=value, passed to the job as its configuration
};

int Fail(const std::string& msg) {
  std::fprintf(stderr, "error: %s\n", msg.c_str());
  return 1;
}
int Fail(const absl::Status& s) { return Fail(std::string(s.message())); }

// A job library loaded and its graph built, ready to submit.
struct PreparedJob {
  std::string bytes;
  proto::JobGraph graph;
  std::vector<std::string> args;
  std::unique_ptr<StreamExecutionEnvironment> env;
  std::string restore_path;
  bool allow_non_restored_state = false;
  std::vector<std::string> dynamic;
};

absl::StatusOr<PreparedJob> Prepare(const Configuration& conf, const JobOptions& opts) {
  if (opts.parallelism == 0 || opts.parallelism < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("parallelism (-p) must be at least 1, got ", opts.parallelism));
  }
  if (opts.parallelism == -1 && conf.GetInt("parallelism.default") < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration key 'parallelism.default' must be at least 1, got ",
                     conf.GetInt("parallelism.default")));
  }
  auto lib = JobLibrary::Load(opts.library);
  if (!lib.ok()) return lib.status();
  auto env = (*lib)->BuildEnvironment(opts.args);
  if (!env.ok()) return env.status();
  JobGraphOptions go;
  go.default_parallelism = opts.parallelism > 0
                               ? opts.parallelism
                               : static_cast<int>(conf.GetInt("parallelism.default"));
  go.max_parallelism = static_cast<int>(conf.GetInt("pipeline.max-parallelism"));
  auto graph = BuildJobGraph(**env, go);
  if (!graph.ok()) return graph.status();
  PreparedJob p;
  std::ifstream f(opts.library, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  p.bytes = ss.str();
  p.graph = std::move(*graph);
  p.args = opts.args;
  p.env = std::move(*env);
  p.restore_path = AbsolutePath(opts.restore_path);  // the JobManager reads it
  p.allow_non_restored_state = opts.allow_non_restored_state;
  p.dynamic = opts.dynamic;
  return p;
}

std::string FormatTime(int64_t ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// Submits a prepared job; without `detached`, waits for its end. The exit code: 0 when the job
// FINISHED (or was submitted detached), 1 otherwise.
int Submit(JobClient& client, PreparedJob& job, bool detached,
           CancelOnExit* cancel_on_exit = nullptr) {
  auto ov = client.Overview();
  if (!ov.ok()) return Fail(ov.status());
  int needed = SlotsNeeded(job.graph);
  // The adaptive schedulers let a job wait for slots (and run at a lower parallelism).
  const bool adaptive = ov->scheduler() == "adaptive" || ov->scheduler() == "reactive";
  if (!adaptive && needed > ov->total_slots()) {
    return Fail(absl::StrCat("job needs ", needed, " task slots but the cluster has only ",
                             ov->total_slots(), " (", ov->task_managers_size(),
                             " TaskManagers); lower the parallelism with -p or add TaskManagers"));
  }
  auto sha = client.UploadLibrary(job.bytes);
  if (!sha.ok()) return Fail(sha.status());
  proto::SubmitJobRequest req;
  *req.mutable_graph() = job.graph;
  req.set_library_sha256(*sha);
  for (const auto& a : job.args) req.add_args(a);
  for (const auto& kv : job.dynamic) {
    size_t eq = kv.find('=');
    if (eq != std::string::npos) (*req.mutable_config())[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  req.set_restore_path(job.restore_path);
  req.set_allow_non_restored_state(job.allow_non_restored_state);
  auto id = client.Submit(req);
  if (!id.ok()) return Fail(id.status());
  std::printf("Job has been submitted with JobID %s\n", id->c_str());
  std::fflush(stdout);
  if (cancel_on_exit && !detached) cancel_on_exit->Submitted(&client, *id);
  if (detached) return 0;
  auto st = client.WaitForTermination(*id);
  if (!st.ok()) return Fail(st.status());
  int64_t took = st->end_time_ms() - st->start_time_ms();
  if (st->state() == proto::JOB_FINISHED) {
    std::printf("Job %s FINISHED in %lld ms\n", id->c_str(), static_cast<long long>(took));
    return 0;
  }
  std::fprintf(stderr, "Job %s %s after %lld ms%s%s\n", id->c_str(),
               std::string(JobStateName(st->state())).c_str(), static_cast<long long>(took),
               st->failure().empty() ? "" : ": ", st->failure().c_str());
  return 1;
}

// `--vertex V=N`: V is a vertex id (its index, as `sluice info` and the REST API show it), a
// vertex's name, or the name of one of its operators. InvalidArgument naming what is not found.
absl::StatusOr<std::map<int, int>> ParseVertexParallelism(const std::vector<std::string>& specs,
                                                          const proto::JobGraph& graph) {
  std::map<int, int> out;
  for (const std::string& spec : specs) {
    size_t eq = spec.rfind('=');
    int n = 0;
    if (eq == std::string::npos || eq == 0 || !absl::SimpleAtoi(spec.substr(eq + 1), &n)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--vertex '", spec, "': expected <vertex id or name>=<parallelism>"));
    }
    const std::string name = spec.substr(0, eq);
    std::vector<int> matches;
    for (const auto& v : graph.vertices()) {
      bool match = std::to_string(v.id()) == name || v.name() == name;
      for (const auto& op : v.node_names()) match |= op == name;
      if (match) matches.push_back(v.id());
    }
    if (matches.size() != 1) {
      std::string vertices;
      for (const auto& v : graph.vertices()) {
        absl::StrAppend(&vertices, vertices.empty() ? "" : ", ", v.id(), " '", v.name(), "'");
      }
      return absl::InvalidArgumentError(absl::StrCat(
          "--vertex '", spec, "': ",
          matches.empty() ? "no vertex of the job is called '" : "more than one vertex matches '",
          name, "' (its vertices: ", vertices, ")"));
    }
    out[matches[0]] = n;
  }
  return out;
}

// `sluice rescale`: asks for the rescale and, unless `detached`, waits until every task of the
// new parallelism runs.
int Rescale(JobClient& client, const std::string& job_id, int parallelism,
            const std::vector<std::string>& vertex_specs, const std::string& reason, bool detached,
            std::chrono::milliseconds timeout) {
  if (!IsValidJobId(job_id)) {
    return Fail("'" + job_id + "' is not a job id (32 lowercase hex characters; see sluice list)");
  }
  if ((parallelism == 0) == vertex_specs.empty()) {
    return Fail("give either -p N (the whole job) or --vertex <vertex id or name>=N (repeatable)");
  }
  std::map<int, int> vertices;
  proto::JobGraph graph;
  auto job = client.GetJob(job_id);
  if (!job.ok()) return Fail(job.status());
  graph = job->graph();
  if (!vertex_specs.empty()) {
    auto parsed = ParseVertexParallelism(vertex_specs, graph);
    if (!parsed.ok()) return Fail(parsed.status());
    vertices = std::move(*parsed);
  }
  auto trigger = client.Rescale(job_id, vertices, parallelism, reason);
  if (!trigger.ok()) return Fail(trigger.status());
  if (detached) {
    std::printf("Rescale of job %s requested (trigger id %s).\n", job_id.c_str(), trigger->c_str());
    return 0;
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto st = client.RescaleStatus(job_id, *trigger);
    if (!st.ok()) return Fail(st.status());
    if (st->state() == "FAILED") return Fail("the rescale failed: " + st->failure());
    if (st->state() == "COMPLETED") {
      std::string change;
      for (const auto& [v, to] : st->to_parallelism()) {
        auto from = st->from_parallelism().find(v);
        if (from == st->from_parallelism().end() || from->second == to) continue;
        absl::StrAppend(&change, change.empty() ? "" : ", ", "'",
                        v < graph.vertices_size() ? graph.vertices(v).name() : std::to_string(v),
                        "' ", from->second, " -> ", to);
      }
      if (change.empty()) {
        std::printf("Job %s already runs at that parallelism.\n", job_id.c_str());
      } else {
        std::printf("Rescaled job %s: %s (all tasks RUNNING after %lld ms).\n", job_id.c_str(),
                    change.c_str(),
                    static_cast<long long>(st->completed_ms() - st->requested_ms()));
      }
      return 0;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Fail(absl::StrCat("the rescale (trigger id ", *trigger,
                               ") is still in progress after ", timeout.count(),
                               " ms; see sluice list"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Flink's `list`: running (and restarting) jobs, scheduled ones (CREATED: waiting for slots),
// and with -a the ended ones, each as `dd.MM.yyyy HH:mm:ss : <job id> : <name> (<STATE>)`.
void PrintFlinkJobList(const std::vector<proto::JobStatus>& jobs, bool running, bool scheduled,
                       bool terminated) {
  std::vector<const proto::JobStatus*> by_kind[3];  // running, scheduled, terminated
  for (const auto& j : jobs) {
    int kind = j.state() == proto::JOB_CREATED ? 1 : IsTerminalJobState(j.state()) ? 2 : 0;
    by_kind[kind].push_back(&j);
  }
  // One section: its heading, a line per job and a rule; or `none` when it has no job ("": the
  // section is left out).
  auto section = [](const std::vector<const proto::JobStatus*>& list, const char* heading,
                    const char* none) {
    if (list.empty()) {
      if (*none) std::printf("%s\n", none);
      return;
    }
    std::printf("%s\n", heading);
    for (const proto::JobStatus* j : list) {
      std::time_t t = static_cast<std::time_t>(j->start_time_ms() / 1000);
      std::tm tm{};
      localtime_r(&t, &tm);
      char when[32];
      std::strftime(when, sizeof when, "%d.%m.%Y %H:%M:%S", &tm);
      std::printf("%s : %s : %s (%s)\n", when, j->job_id().c_str(), j->name().c_str(),
                  std::string(JobStateName(j->state())).c_str());
    }
    std::printf("--------------------------------------------------------------\n");
  };
  if (running) {
    section(by_kind[0], "------------------ Running/Restarting Jobs -------------------",
            "No running jobs.");
  }
  if (scheduled) {
    section(by_kind[1], "----------------------- Scheduled Jobs -----------------------",
            "No scheduled jobs.");
  }
  if (terminated) {
    section(by_kind[2], "---------------------- Terminated Jobs -----------------------", "");
  }
}

// Sluice's table (`list --table`): one line per job with its parallelism and restarts.
void PrintJobTable(const std::vector<proto::JobStatus>& jobs, bool all) {
  if (jobs.empty()) {
    std::printf(all ? "No jobs.\n" : "No running jobs.\n");
    return;
  }
  std::printf("%-32s  %-10s  %-19s  %4s  %8s  %s\n", "JOB ID", "STATE", "START TIME", "PAR",
              "RESTARTS", "NAME");
  for (const auto& j : jobs) {
    std::printf("%-32s  %-10s  %-19s  %4d  %8d  %s\n", j.job_id().c_str(),
                std::string(JobStateName(j.state())).c_str(), FormatTime(j.start_time_ms()).c_str(),
                j.parallelism(), j.restarts(), j.name().c_str());
  }
}

// Flink passes everything after the jar to the program. For run, info and local the first
// argument that is not one of ours (or an option's value) is the library; what follows it goes to
// the job: it is moved behind a `--` (one given right after the library is dropped), so CLI11
// never reads the job's flags as ours.
std::vector<std::string> SeparateJobArguments(std::vector<std::string> args) {
  if (args.size() < 2 || (args[1] != "run" && args[1] != "info" && args[1] != "local")) {
    return args;
  }
  static const std::set<std::string> kWithValue = {"-p", "--parallelism", "-s", "--fromSavepoint",
                                                   "-m", "--jobmanager",  "-D", "--config-dir"};
  for (size_t i = 2; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") return args;  // the library comes after; CLI11 handles it
    // Flink's -sae: CLI11 takes one letter after a single dash, so it goes by its long name.
    if (a == "-sae") args[i] = "--shutdownOnAttachedExit";
    if (kWithValue.count(a)) {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] == '-') continue;  // a flag, --opt=value or -p4
    // args[i] is the library.
    std::vector<std::string> out(args.begin(), args.begin() + i + 1);
    size_t rest = i + 1;
    if (rest < args.size() && args[rest] == "--") ++rest;
    if (rest < args.size()) {
      out.push_back("--");
      out.insert(out.end(), args.begin() + rest, args.end());
    }
    return out;
  }
  return args;
}

// `sluice graph` runs user code for the JobManager: it dies with the JobManager, leaves no core
// file, and cannot fill the disk (its own files are small; a library writing without end is
// stopped by SIGXFSZ).
void LimitGraphBuilder() {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) std::_Exit(1);  // the JobManager is gone already
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  const rlimit files{rlim_t{256} << 20, rlim_t{256} << 20};
  ::setrlimit(RLIMIT_FSIZE, &files);
}

void AddCommon(CLI::App* cmd, CommonOptions& c) {
  cmd->add_option("--config-dir", c.config_dir,
                  "folder holding config.yaml (default: $SLUICE_CONF_DIR)");
  // One value per -D (repeat -D for more): a greedy vector option would swallow the library path.
  cmd->add_option("-D", c.dynamic, "override a configuration key: -D key=value")
      ->allow_extra_args(false);
}

void AddJob(CLI::App* cmd, JobOptions& j) {
  cmd->add_option("-p,--parallelism", j.parallelism, "default parallelism of the job's operators");
  cmd->add_option("-s,--fromSavepoint", j.restore_path,
                  "start from a savepoint or retained checkpoint (its folder or _metadata file)");
  cmd->add_flag("-n,--allowNonRestoredState", j.allow_non_restored_state,
                "with -s: start even if the checkpoint holds state of operators the job no longer "
                "has (that state is dropped)");
  cmd->add_option("library", j.library, "the job's shared library (lib<job>.so)")->required();
  cmd->add_option("args", j.args, "the job's arguments: everything after the library");
}

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) {
  using namespace sluice;
  // A server that closes a connection (a REST probe's TLS handshake refused, say) must give the
  // CLI an error to report, not end it with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"Sluice: a distributed stream processor. Submit and steer jobs.", "sluice"};
  app.require_subcommand(1);
  CommonOptions common;
  JobOptions job;
  std::string jm_flag;
  bool detached = false, all = false;
  std::string job_id;

  auto* run = app.add_subcommand("run", "submit a job library to the cluster");
  AddCommon(run, common);
  AddJob(run, job);
  run->add_option("-m,--jobmanager", jm_flag,
                  "JobManager host:port (default from the configuration)");
  run->add_flag("-d,--detached", detached, "return once the job is submitted");
  bool shutdown_on_attached_exit = false;
  run->add_flag("--shutdownOnAttachedExit", shutdown_on_attached_exit,
                "-sae: when this attached client is stopped (SIGTERM, Ctrl-C), cancel the job");

  bool list_running = false, list_scheduled = false, list_table = false;
  auto* list = app.add_subcommand(
      "list", "list the cluster's jobs (default: running and scheduled, as -r -s)");
  AddCommon(list, common);
  list->add_option("-m,--jobmanager", jm_flag, "JobManager host:port");
  list->add_flag("-r,--running", list_running, "running and restarting jobs");
  list->add_flag("-s,--scheduled", list_scheduled, "scheduled jobs (waiting for task slots)");
  list->add_flag("-a,--all", all, "every job, finished, failed and cancelled ones included");
  list->add_flag("--table", list_table,
                 "one line per job with its state, start time, parallelism and restarts "
                 "(running ones; all with -a)");

  auto* cancel = app.add_subcommand("cancel", "cancel a job");
  AddCommon(cancel, common);
  cancel->add_option("-m,--jobmanager", jm_flag, "JobManager host:port");
  cancel->add_option("jobid", job_id, "the job's id (32 hex characters)")->required();

  // Flink's forms: savepoint JOBID [DIR], savepoint -d PATH, stop [-p DIR] [-d] JOBID.
  std::string savepoint_dir, dispose_path;
  bool drain = false;
  auto* savepoint = app.add_subcommand("savepoint", "take a savepoint of a job, or dispose of one");
  AddCommon(savepoint, common);
  savepoint->add_option("-m,--jobmanager", jm_flag, "JobManager host:port");
  savepoint->add_option("-d,--dispose", dispose_path, "dispose of the savepoint at this path");
  savepoint->add_option("jobid", job_id, "the job's id");
  savepoint->add_option(
      "targetDirectory", savepoint_dir,
      "where the savepoint goes (default: execution.checkpointing.savepoint-dir)");
  auto* stop = app.add_subcommand("stop", "stop a job with a savepoint (it ends FINISHED)");
  AddCommon(stop, common);
  stop->add_option("-m,--jobmanager", jm_flag, "JobManager host:port");
  stop->add_option("-p,--savepointPath", savepoint_dir,
                   "where the savepoint goes (default: execution.checkpointing.savepoint-dir)");
  stop->add_flag("-d,--drain", drain,
                 "end the sources' input first, so that every event-time window fires");
  stop->add_option("jobid", job_id, "the job's id")->required();
  int rescale_p = 0;
  std::vector<std::string> rescale_vertices;
  std::string rescale_reason = "sluice rescale";
  auto* rescale = app.add_subcommand(
      "rescale", "rescale a running job from its latest checkpoint (Flink's `modify -p`)");
  rescale->alias("modify");
  AddCommon(rescale, common);
  rescale->add_option("-m,--jobmanager", jm_flag, "JobManager host:port");
  rescale->add_option("jobid", job_id, "the job's id (32 hex characters)")->required();
  rescale->add_option("-p,--parallelism", rescale_p,
                      "the new parallelism of every operator (those that cannot run in "
                      "parallel stay at 1)");
  rescale
      ->add_option("--vertex", rescale_vertices,
                   "one vertex's new parallelism: <vertex id or name>=N, the name of the "
                   "vertex or of one of its operators (repeatable)")
      ->allow_extra_args(false);
  rescale->add_option("--reason", rescale_reason, "why, for the JobManager's log");
  rescale->add_flag("-d,--detached", detached,
                    "return once the rescale is requested, without waiting for the tasks");

  auto* info = app.add_subcommand("info", "print a job's graph as JSON, without a cluster");
  AddCommon(info, common);
  AddJob(info, job);

  auto* local = app.add_subcommand("local", "run a job in this process on an embedded cluster");
  AddCommon(local, common);
  AddJob(local, job);

  // Hidden, for deploy/config.sh: `sluice config get [--config-dir DIR] KEY` prints the value
  // KEY (any of its names) is set to in config.yaml and -D, read as the daemons read it (flat or
  // nested), or nothing when it is not set. An unknown key or a bad file is an error.
  std::string config_key;
  auto* config_cmd = app.add_subcommand("config", "read the configuration as the daemons do");
  config_cmd->group("");
  config_cmd->require_subcommand(1);
  auto* config_get = config_cmd->add_subcommand("get", "print the value a key is set to");
  AddCommon(config_get, common);
  config_get->add_option("key", config_key, "the key")->required();

  // Hidden, for the JobManager's REST submission (jobmanager/graph_builder.cc): loads the
  // library and builds its graph exactly as `run` and `info` do, and writes graph.pb (the
  // proto::JobGraph) to --output-dir. The JobManager runs it as a child process so that user
  // code never runs inside the JobManager.
  std::string graph_output_dir;
  auto* graph_cmd =
      app.add_subcommand("graph", "build a job's graph into files, for the JobManager");
  graph_cmd->group("");
  AddCommon(graph_cmd, common);
  AddJob(graph_cmd, job);
  graph_cmd->add_option("--output-dir", graph_output_dir, "where graph.pb goes")->required();

  std::vector<std::string> arguments =
      SeparateJobArguments(std::vector<std::string>(argv, argv + argc));
  // CLI11 takes the arguments in reverse order.
  std::vector<std::string> reversed(arguments.rbegin(), arguments.rend() - 1);
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // As Flink's CLI: the error, the command's usage, exit code 1.
    std::fprintf(stderr, "error: %s\n\n", e.what());
    const CLI::App* failed = &app;
    for (const CLI::App* sub : app.get_subcommands()) failed = sub;
    std::fputs(failed->help().c_str(), stderr);
    return 1;
  }

  InitLogging("sluice");
  // The scripts' reads stay quiet about JVM-only keys; the daemons and commands warn.
  spdlog::set_level(*config_cmd ? spdlog::level::err : spdlog::level::warn);
  auto conf = LoadConfiguration(common.config_dir, common.dynamic);
  if (!conf.ok()) return Fail(conf.status());
  if (*config_cmd) {
    if (conf->IsSet(config_key)) {
      std::printf("%s\n", conf->GetString(config_key).c_str());
    } else if (auto it = conf->ignored().find(config_key); it != conf->ignored().end()) {
      std::printf("%s\n", it->second.c_str());
    } else if (!IsJvmOnlyKey(config_key)) {
      absl::Status known = Configuration().Set(config_key, "");
      if (known.code() == absl::StatusCode::kInvalidArgument &&
          absl::StrContains(known.message(), "unknown configuration key")) {
        return Fail(known);
      }
    }
    return 0;
  }
  auto timeout = std::chrono::milliseconds(conf->GetDurationMs("client.timeout"));
  // Every command below may call the JobManager (or, for `local`, be one).
  if (absl::Status s = ConfigureInternalTls(*conf); !s.ok()) return Fail(s);

  job.dynamic = common.dynamic;
  if (*run) {
    // Before anything starts a thread (the job's code, gRPC), so that the signals reach it.
    CancelOnExit* cancel_on_exit =
        shutdown_on_attached_exit && !detached ? CancelOnExit::Install() : nullptr;
    auto prepared = Prepare(*conf, job);
    if (!prepared.ok()) return Fail(prepared.status());
    auto jm_address = JobManagerAddress(*conf, jm_flag);
    if (!jm_address.ok()) return Fail(jm_address.status());
    JobClient client(*jm_address, timeout);
    return Submit(client, *prepared, detached, cancel_on_exit);
  }
  if (*list) {
    auto jm_address = JobManagerAddress(*conf, jm_flag);
    if (!jm_address.ok()) return Fail(jm_address.status());
    JobClient client(*jm_address, timeout);
    auto jobs = client.ListJobs(all);
    if (!jobs.ok()) return Fail(jobs.status());
    if (list_table) {
      PrintJobTable(*jobs, all);
    } else if (!list_running && !list_scheduled && !all) {
      PrintFlinkJobList(*jobs, true, true, false);
    } else {
      PrintFlinkJobList(*jobs, list_running || all, list_scheduled || all, all);
    }
    return 0;
  }
  if (*cancel) {
    if (!IsValidJobId(job_id)) {
      return Fail("'" + job_id +
                  "' is not a job id (32 lowercase hex characters; see sluice list)");
    }
    auto jm_address = JobManagerAddress(*conf, jm_flag);
    if (!jm_address.ok()) return Fail(jm_address.status());
    JobClient client(*jm_address, timeout);
    absl::Status s = client.Cancel(job_id);
    if (!s.ok()) return Fail(s);
    std::printf("Cancelled job %s.\n", job_id.c_str());
    return 0;
  }
  if (*savepoint) {
    auto jm_address = JobManagerAddress(*conf, jm_flag);
    if (!jm_address.ok()) return Fail(jm_address.status());
    JobClient client(*jm_address, timeout);
    if (!dispose_path.empty()) {
      if (!job_id.empty()) return Fail("give either a job id or -d PATH, not both");
      return RunDisposeSavepoint(client, dispose_path);
    }
    if (job_id.empty()) return Fail("give the id of the job to take a savepoint of, or -d PATH");
    return RunSavepoint(client, job_id, savepoint_dir);
  }
  if (*stop) {
    auto jm_address = JobManagerAddress(*conf, jm_flag);
    if (!jm_address.ok()) return Fail(jm_address.status());
    JobClient client(*jm_address, timeout);
    return RunStop(client, job_id, savepoint_dir, drain);
  }
  if (*rescale) {
    if (rescale->count("-p") > 0 && rescale_p < 1) {
      return Fail(absl::StrCat("parallelism (-p) must be at least 1, got ", rescale_p));
    }
    auto jm_address = JobManagerAddress(*conf, jm_flag);
    if (!jm_address.ok()) return Fail(jm_address.status());
    JobClient client(*jm_address, timeout);
    return Rescale(client, job_id, rescale_p, rescale_vertices, rescale_reason, detached, timeout);
  }
  if (*graph_cmd) {
    LimitGraphBuilder();
    auto prepared = Prepare(*conf, job);
    if (!prepared.ok()) return Fail(prepared.status());
    std::ofstream graph(graph_output_dir + "/graph.pb", std::ios::binary);
    graph << prepared->graph.SerializeAsString();
    graph.close();
    if (!graph) return Fail("cannot write the graph to " + graph_output_dir);
    // User code may have left threads running: do not wait for them or for static destructors.
    std::fflush(nullptr);
    std::_Exit(0);
  }
  if (*info) {
    auto prepared = Prepare(*conf, job);
    if (!prepared.ok()) return Fail(prepared.status());
    std::printf("%s\n", JobGraphToJson(prepared->graph, *prepared->env).c_str());
    return 0;
  }
  if (*local) {
    auto prepared = Prepare(*conf, job);
    if (!prepared.ok()) return Fail(prepared.status());
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    // Ctrl-C or SIGTERM stops the embedded cluster cleanly (tasks cancelled, temporary folders
    // removed) before exiting. Blocked before the cluster's threads start, so they inherit it.
    BlockTerminationSignals();
    auto mc = MiniCluster::Start(*conf, 1, SlotsNeeded(prepared->graph));
    if (!mc.ok()) return Fail(mc.status());
    MiniCluster* cluster = mc->get();
    static std::atomic<bool> stopping{false};
    std::thread([cluster] {
      int sig = WaitForTerminationSignal();
      stopping.store(true);
      std::fprintf(stderr, "signal %d: stopping the local cluster\n", sig);
      cluster->Shutdown();
      std::_Exit(128 + sig);
    }).detach();
    JobClient client((*mc)->jobmanager_address(), timeout);
    int rc = Submit(client, *prepared, /*detached=*/false);
    // Stopping the cluster ends the job: leave the exit to the signal's thread.
    while (stopping.load()) std::this_thread::sleep_for(std::chrono::seconds(1));
    (*mc)->Shutdown();
    return rc;
  }
  return 0;
}
