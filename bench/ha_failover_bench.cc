// sluice-ha-bench: how long the loss of the leading JobManager costs a running job, with high
// availability on ZooKeeper (the figure). Real processes on 127.0.0.1 (a ZooKeeper
// server, two JobManagers, two TaskManagers of two slots; tests/integration/harness_ha.h), the
// keyed-state job (bench/jobs/keyed_state.cc: a paced source, a keyed count and sum in
// ValueStates, a progress sink) at parallelism 2 with 1 s checkpoints on the heap backend.
//
// Per round, once the job's output is on time: kill -9 of the leader, then
//   - leader: until the standby logs that it leads (its ZooKeeper session outlived the old one's;
//     the line comes once it has recovered the jobs too);
//   - RUNNING: until the new leader reports the recovered job RUNNING with every task RUNNING;
//   - caught up: until every sink subtask of the new attempt has received records due within
//     --lag-ms of now from every source subtask (the output is where it would have been).
// The killed JobManager comes back as a standby, and the next round kills the new leader. Each
// session timeout given runs its own cluster. Figures only: no pass or fail.
//
//   sluice-ha-bench [--session-ms 2000,6000] [--rounds 3] [--rate 20000] [--keys 10000]
//                   [--lag-ms 1000] [--quick]
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/job_client.h"
#include "integration/harness_ha.h"
#include "progress_files.h"

namespace sluice::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using itest::HaCluster;

struct Options {
  std::vector<int> session_ms{2000, 6000};
  int rounds = 3;
  double rate = 20'000;
  int64_t keys = 10'000;
  int64_t lag_ms = 1000;
};

int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// The output's lag in ms: now minus the oldest newest-due-time over every (sink, source) pair
// of sink subtasks at `attempt` or later; -1 while a sink subtask of that attempt has not
// received a record from every source subtask.
double Lag(const ProgressFiles& progress, int64_t attempt, int sources) {
  int64_t oldest = INT64_MAX;
  for (const ProgressRecord& r : progress.Read()) {
    if (r.attempt < attempt) return -1;
    for (int s = 0; s < sources; ++s) {
      if (r.max_due_us[s] == 0) return -1;
      oldest = std::min(oldest, r.max_due_us[s]);
    }
  }
  return static_cast<double>(WallMicros() - oldest) / 1e3;
}

struct Round {
  double leader_ms = -1, running_ms = -1, caught_up_ms = -1;
};

absl::Status RunSessionTimeout(const Options& o, int session_ms, std::vector<Round>& rounds) {
  HaCluster ha(session_ms);
  if (absl::Status s = ha.StartZooKeeper(); !s.ok()) return s;
  std::string names[2] = {"jm-a", "jm-b"};
  if (!ha.Start("sluice-jobmanager", names[0])) return absl::InternalError("jm-a did not start");
  std::string leader = ha.WaitForLeadership(names[0], 0, 30s);
  if (leader.empty()) return absl::InternalError("jm-a did not lead: " + ha.Log("jm-a"));
  ha.Start("sluice-jobmanager", names[1]);
  for (const char* tm : {"tm-1", "tm-2"}) {
    ha.Start("sluice-taskmanager", tm, {"taskmanager.numberOfTaskSlots=2"});
  }
  const int parallelism = 2;
  const std::string progress_dir = ha.dir() + "/progress";
  auto progress = ProgressFiles::Create(progress_dir, parallelism);
  if (!progress.ok()) return progress.status();
  {
    JobClient client(leader, 5s);
    itest::WaitUntil(
        [&] {
          auto ov = client.Overview();
          return ov.ok() && ov->task_managers_size() == 2;
        },
        30s);
  }
  std::vector<std::string> args{"run", "-d", "-p", absl::StrCat(parallelism)};
  for (const std::string& f : ha.CliFlags()) args.push_back(f);
  for (const std::string& kv : {std::string("execution.checkpointing.interval=1s"),
                                "state.checkpoints.dir=" + ha.dir() + "/checkpoints",
                                std::string("restart-strategy.type=fixed-delay"),
                                std::string("restart-strategy.fixed-delay.attempts=100"),
                                std::string("restart-strategy.fixed-delay.delay=100ms")}) {
    args.push_back("-D");
    args.push_back(kv);
  }
  const std::string bench_dir =
      (std::filesystem::path(itest::BinDir()).parent_path() / "bench").string();
  args.push_back(bench_dir + "/libbench_keyed_state.so");
  for (const std::string& a :
       {std::string("--keys"), absl::StrCat(o.keys), std::string("--rate"), absl::StrCat(o.rate),
        std::string("--parallelism"), absl::StrCat(parallelism), std::string("--progress-dir"),
        progress_dir}) {
    args.push_back(a);
  }
  itest::CommandResult r = itest::RunCli(args, ha.dir(), 60s);
  std::smatch m;
  if (r.exit_code != 0 ||
      !std::regex_search(r.out, m, std::regex("submitted with JobID ([0-9a-f]{32})"))) {
    return absl::InternalError("the job was not submitted: " + r.Describe());
  }
  const std::string job = m[1].str();
  int current = 0;  // index into names of the leader
  // Where each JobManager's log stood when it last became leader: its checkpoints are after it.
  size_t term_start[2] = {0, 0};
  for (int round = 0; round < o.rounds; ++round) {
    // On time, with a checkpoint of this term to recover from.
    int64_t attempt = 0;
    {
      JobClient client(leader, 5s);
      bool ready = itest::WaitUntil(
          [&] {
            auto st = client.GetJob(job);
            if (!st.ok() || st->state() != proto::JOB_RUNNING || st->tasks_size() == 0) {
              return false;
            }
            attempt = st->tasks(0).attempt();
            double lag = Lag(**progress, attempt, parallelism);
            return lag >= 0 && lag <= static_cast<double>(o.lag_ms) &&
                   ha.Log(names[current])
                           .find(absl::StrCat("job ", job, ": checkpoint"), term_start[current]) !=
                       std::string::npos;
          },
          120s, 50ms);
      if (!ready) return absl::DeadlineExceededError("the job did not get on time before a kill");
    }
    std::this_thread::sleep_for(2s);  // a checkpoint or two more
    const int next = 1 - current;
    const int grants_before = ha.Grants(names[next]);
    const size_t next_log = ha.Log(names[next]).size();
    Round rd;
    auto killed = Clock::now();
    ha.Kill(names[current]);
    leader = ha.WaitForLeadership(names[next], grants_before, 60s);
    if (leader.empty()) return absl::DeadlineExceededError(names[next] + " did not lead");
    rd.leader_ms = MsSince(killed);
    term_start[next] = next_log;
    JobClient client(leader, 5s);
    int64_t new_attempt = -1;
    itest::WaitUntil(
        [&] {
          auto st = client.GetJob(job);
          if (!st.ok() || st->state() != proto::JOB_RUNNING || st->tasks_size() == 0) return false;
          for (const auto& t : st->tasks()) {
            if (t.state() != proto::TASK_RUNNING) return false;
          }
          new_attempt = st->tasks(0).attempt();
          return new_attempt > attempt;
        },
        120s, 5ms);
    if (new_attempt <= attempt) return absl::DeadlineExceededError("the job did not run again");
    rd.running_ms = MsSince(killed);
    bool caught_up = itest::WaitUntil(
        [&] {
          double lag = Lag(**progress, new_attempt, parallelism);
          return lag >= 0 && lag <= static_cast<double>(o.lag_ms);
        },
        120s, 5ms);
    if (!caught_up) return absl::DeadlineExceededError("the output did not catch up in 120 s");
    rd.caught_up_ms = MsSince(killed);
    std::printf(
        "  session %5d ms  round %d  %s killed: leader %7.0f ms  RUNNING %7.0f ms  caught "
        "up %7.0f ms\n",
        session_ms, round + 1, names[current].c_str(), rd.leader_ms, rd.running_ms,
        rd.caught_up_ms);
    std::fflush(stdout);
    rounds.push_back(rd);
    ha.Start("sluice-jobmanager", names[current]);  // back as a standby
    current = next;
  }
  return absl::OkStatus();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? -1 : v[v.size() / 2];
}

int Main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    bool ok = true;
    if (a == "--quick") {
      o.session_ms = {2000};
      o.rounds = 2;
      o.rate = 5'000;
    } else if (a == "--session-ms") {
      o.session_ms.clear();
      for (absl::string_view s : absl::StrSplit(value(), ',')) {
        int ms = 0;
        ok &= absl::SimpleAtoi(s, &ms) && ms > 0;
        o.session_ms.push_back(ms);
      }
    } else if (a == "--rounds") {
      ok = absl::SimpleAtoi(value(), &o.rounds) && o.rounds > 0;
    } else if (a == "--rate") {
      ok = absl::SimpleAtod(value(), &o.rate) && o.rate > 0;
    } else if (a == "--keys") {
      ok = absl::SimpleAtoi(value(), &o.keys) && o.keys > 0;
    } else if (a == "--lag-ms") {
      ok = absl::SimpleAtoi(value(), &o.lag_ms) && o.lag_ms > 0;
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr,
                   "usage: sluice-ha-bench [--session-ms 2000,6000] [--rounds N] [--rate R] "
                   "[--keys K] [--lag-ms MS] [--quick]\n(bad argument '%s')\n",
                   a.c_str());
      return 2;
    }
  }
  if (!std::getenv("SLUICE_BIN_DIR")) {
    // The daemons and the CLI beside this program.
    std::string self = std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
    ::setenv("SLUICE_BIN_DIR", self.c_str(), 1);
  }
  std::printf(
      "High availability: kill -9 of the leading JobManager under a running job (keyed state, "
      "%.0f records/s, %lld keys, 1 s checkpoints, parallelism 2); times from the kill\n",
      o.rate, static_cast<long long>(o.keys));
  for (int session_ms : o.session_ms) {
    std::vector<Round> rounds;
    absl::Status s = RunSessionTimeout(o, session_ms, rounds);
    if (!s.ok()) {
      std::fprintf(stderr, "session timeout %d ms: %s\n", session_ms,
                   std::string(s.message()).c_str());
      return 1;
    }
    std::vector<double> leader, running, caught_up;
    for (const Round& r : rounds) {
      leader.push_back(r.leader_ms);
      running.push_back(r.running_ms);
      caught_up.push_back(r.caught_up_ms);
    }
    std::printf(
        "session timeout %d ms, median of %zu: new leader %.0f ms, job RUNNING %.0f ms, "
        "output caught up (lag <= %lld ms) %.0f ms\n",
        session_ms, rounds.size(), Median(leader), Median(running),
        static_cast<long long>(o.lag_ms), Median(caught_up));
  }
  return 0;
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) { return sluice::bench::Main(argc, argv); }
