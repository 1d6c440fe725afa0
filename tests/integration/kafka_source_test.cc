// The Kafka source on a real cluster, against sluice-kafka-dev (librdkafka's mock cluster) with
// kcat as the independent client that writes the input: each starting-offsets mode, bounded mode
// ending at the offsets latest at the start, partition discovery through a topic pattern, a
// restore at another parallelism, a broker down and back, and per-partition watermarks (a lagging
// partition holds windows back, an idle one only without idleness).
//
// Most cases run tests/jobs/kafka_count_job.cc: records `key,seq`, a rolling count per key,
// lines `key,count` into the exactly-once file sink (which commits on checkpoint completion, so
// every run is checkpointed). Each batch of records uses keys of its own prefix, so a record
// counted that should not have been shows as a key that should not be there, and a record
// counted twice as a count seen twice.
//
// What the mock cannot do: it answers every offset lookup by timestamp with "no such record"
// (librdkafka 2.0.2's ListOffsets handler), so a timestamp between two batches cannot be resolved
// there; that case checks the cluster first and is skipped on the mock (see
// TimestampBetweenTwoBatchesStartsAtTheSecond). It cannot add partitions to a topic either: a new
// topic matching the pattern is how partitions are added for discovery.
#include <gmock/gmock.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "integration/harness.h"
#include "integration/kafka_dev.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// key -> the number of its records.
using Want = std::map<std::string, int>;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// `keys` keys `<prefix><k>`, `per_key` records each.
Want Keys(const std::string& prefix, int keys, int per_key) {
  Want w;
  for (int k = 0; k < keys; ++k) w[absl::StrCat(prefix, k)] = per_key;
  return w;
}

Want Merge(Want a, const Want& b) {
  for (const auto& [k, n] : b) a[k] += n;
  return a;
}

// Records `<prefix><k>,<seq>` for seq in [first, first + n), key k into partition k % partitions
// (each key's records in order in one partition), one kcat call per partition.
absl::Status Produce(const KafkaDev& kafka, const std::string& topic, int partitions,
                     const std::string& prefix, int keys, int n, int first = 0) {
  std::vector<std::vector<std::string>> by_partition(partitions);
  for (int s = first; s < first + n; ++s) {
    for (int k = 0; k < keys; ++k) {
      by_partition[k % partitions].push_back(absl::StrCat(prefix, k, ",", s));
    }
  }
  for (int p = 0; p < partitions; ++p) {
    if (by_partition[p].empty()) continue;
    if (absl::Status st = KcatProduce(kafka.bootstrap(), topic, by_partition[p], p); !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> AllLines(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& [file, lines] : ReadPartFiles(dir)) {
    out.insert(out.end(), lines.begin(), lines.end());
  }
  return out;
}

// key -> every count of the lines `key,count`; false on a malformed line.
bool CountsByKey(const std::vector<std::string>& lines,
                 std::map<std::string, std::multiset<int64_t>>* out, std::string* bad) {
  for (const std::string& line : lines) {
    std::vector<std::string> f = absl::StrSplit(line, ',');
    int64_t n = 0;
    if (f.size() != 2 || !absl::SimpleAtoi(f[1], &n)) {
      *bad = line;
      return false;
    }
    (*out)[f[0]].insert(n);
  }
  return true;
}

// Exactly the keys of `want`, each key's counts exactly 1..want[key] once each: every record of
// `want` counted once, and nothing else counted.
::testing::AssertionResult ExactlyCounted(const std::vector<std::string>& lines, const Want& want) {
  std::map<std::string, std::multiset<int64_t>> seen;
  std::string bad;
  if (!CountsByKey(lines, &seen, &bad)) {
    return ::testing::AssertionFailure() << "malformed line '" << bad << "'";
  }
  for (const auto& [key, counts] : seen) {
    if (!want.count(key)) {
      return ::testing::AssertionFailure()
             << "key " << key << " was counted (" << counts.size()
             << " lines) but none of its records should have been read";
    }
  }
  for (const auto& [key, n] : want) {
    auto it = seen.find(key);
    if (it == seen.end()) return ::testing::AssertionFailure() << "key " << key << " missing";
    for (int64_t c = 1; c <= n; ++c) {
      size_t times = it->second.count(c);
      if (times != 1) {
        return ::testing::AssertionFailure()
               << key << ": count " << c << " seen " << times << " times, want once";
      }
    }
    if (static_cast<int64_t>(it->second.size()) != n) {
      return ::testing::AssertionFailure() << key << ": " << it->second.size() << " lines, want "
                                           << n << " (counted to " << *it->second.rbegin() << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

// The keys of `want` not yet counted to their number in the committed output of `dir`, as
// `key: counted/wanted`; empty when every one is.
std::vector<std::string> NotReached(const std::string& dir, const Want& want) {
  std::map<std::string, std::multiset<int64_t>> seen;
  std::string bad;
  if (!CountsByKey(AllLines(dir), &seen, &bad)) return {};  // ExactlyCounted names the line
  std::vector<std::string> out;
  for (const auto& [key, n] : want) {
    auto it = seen.find(key);
    int64_t counted = it == seen.end() ? 0 : *it->second.rbegin();
    if (counted < n) out.push_back(absl::StrCat(key, ": ", counted, "/", n));
  }
  return out;
}
bool Reached(const std::string& dir, const Want& want) { return NotReached(dir, want).empty(); }

// -p N, checkpoints every 200 ms (the file sink commits on them, the source commits its offsets
// on them) into <dir>/checkpoints.
std::vector<std::string> RunFlags(const std::string& dir, int parallelism = 2) {
  return {"-p", absl::StrCat(parallelism),
          "-D", "execution.checkpointing.interval=200ms",
          "-D", "state.checkpoints.dir=" + dir + "/checkpoints"};
}

std::vector<std::string> CountArgs(const KafkaDev& kafka, const std::string& out,
                                   std::vector<std::string> more) {
  std::vector<std::string> args{"--bootstrap-servers", kafka.bootstrap(), "--output", out};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

bool Terminal(const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }

// Until every task runs and a checkpoint has completed: a checkpoint is taken only once every
// source has opened, so the source has resolved its starting (and stopping) offsets by then.
// (A task reports RUNNING before it opens its operators.)
absl::StatusOr<proto::JobStatus> WaitUntilReading(TestCluster& cluster, const std::string& job) {
  return cluster.WaitUntilOrEnd(
      job,
      [](const proto::JobStatus& s) { return AllTasksRunning(s) && s.last_checkpoint_id() >= 1; },
      60s);
}

class KafkaSourceTest : public ::testing::Test {
 protected:
  // A Kafka cluster with `topics` and a Sluice cluster of 2 TaskManagers with 2 slots each.
  void StartBoth(int brokers, const std::vector<std::pair<std::string, int>>& topics) {
    SLUICE_ASSERT_OK(kafka_.Start(brokers, topics));
    SLUICE_ASSERT_OK(cluster_.Start());
    out_ = cluster_.dir() + "/out";
  }

  // Runs kafka_count_job to its end; the end state must be FINISHED.
  void RunToEnd(const std::vector<std::string>& flags, const std::vector<std::string>& args) {
    std::string job;
    SLUICE_ASSIGN_OR_FAIL(job,
                          cluster_.SubmitDetached(TestJobLibrary("kafka_count_job"), flags, args));
    proto::JobStatus st;
    SLUICE_ASSIGN_OR_FAIL(st, cluster_.WaitForJob(job, Terminal, 60s));
    ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
    EXPECT_EQ(st.restarts(), 0);
  }

  // Waits until the committed output of `dir` has every key of `want` counted to its number,
  // then cancels the job (an unbounded job ends no other way).
  void WaitForCountsThenCancel(const std::string& job, const std::string& dir, const Want& want) {
    bool ended = false;
    bool reached = WaitUntil(
        [&] {
          auto s = cluster_.client().GetJob(job);
          if (s.ok() && Terminal(*s)) {
            ended = true;
            return true;
          }
          return Reached(dir, want);
        },
        60s, 100ms);
    ASSERT_FALSE(ended) << "the unbounded job ended: "
                        << cluster_.client().GetJob(job).value_or(proto::JobStatus()).failure();
    ASSERT_TRUE(reached) << "the records were not all counted within 60 s: "
                         << absl::StrJoin(NotReached(dir, want), ", ");
    Cancel(job);
  }

  proto::JobStatus Cancel(const std::string& job) {
    SLUICE_EXPECT_OK(cluster_.client().Cancel(job));
    auto st = cluster_.WaitForState(job, proto::JOB_CANCELED, 30s);
    EXPECT_TRUE(st.ok()) << st.status();
    return st.ok() ? *st : proto::JobStatus();
  }

  KafkaDev kafka_;
  TestCluster cluster_{2, 2};
  std::string out_;
};

// ---- starting offsets ----

TEST_F(KafkaSourceTest, EarliestReadsEveryRecord) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(1, {{"in", 3}}));
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "a", 6, 20));
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "b", 6, 10));
  ASSERT_NO_FATAL_FAILURE(
      RunToEnd(RunFlags(cluster_.dir()), CountArgs(kafka_, out_, {"--topic", "in"})));
  EXPECT_TRUE(ExactlyCounted(AllLines(out_), Merge(Keys("a", 6, 20), Keys("b", 6, 10))));
}

// Latest: the records there before the job started are skipped, those produced while it runs are
// read (an unbounded job, cancelled once they are all counted).
TEST_F(KafkaSourceTest, LatestReadsOnlyRecordsProducedAfterTheStart) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(1, {{"in", 3}}));
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "old", 6, 20));
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_.SubmitDetached(
               TestJobLibrary("kafka_count_job"), RunFlags(cluster_.dir()),
               CountArgs(kafka_, out_,
                         {"--topic", "in", "--starting-offsets", "latest", "--unbounded"})));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitUntilReading(cluster_, job));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "new", 6, 20));
  ASSERT_NO_FATAL_FAILURE(WaitForCountsThenCancel(job, out_, Keys("new", 6, 20)));
  EXPECT_TRUE(ExactlyCounted(AllLines(out_), Keys("new", 6, 20)));
}

// Committed: a first run commits its offsets to the group when its checkpoints complete (the
// last one after it read everything); a second run of the same group starts there and reads only
// what was produced since. A group without commits starts at the earliest offsets (the default
// reset strategy).
TEST_F(KafkaSourceTest, CommittedStartsWhereTheGroupStopped) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(1, {{"in", 3}}));
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "a", 6, 20));
  const std::string out1 = cluster_.dir() + "/out1", out2 = cluster_.dir() + "/out2",
                    out3 = cluster_.dir() + "/out3";
  {
    SCOPED_TRACE("first run, earliest");
    ASSERT_NO_FATAL_FAILURE(RunToEnd(
        RunFlags(cluster_.dir()), CountArgs(kafka_, out1, {"--topic", "in", "--group-id", "g1"})));
    EXPECT_TRUE(ExactlyCounted(AllLines(out1), Keys("a", 6, 20)));
  }
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "b", 6, 15));
  {
    SCOPED_TRACE("second run, committed offsets of g1");
    ASSERT_NO_FATAL_FAILURE(RunToEnd(
        RunFlags(cluster_.dir()),
        CountArgs(kafka_, out2,
                  {"--topic", "in", "--group-id", "g1", "--starting-offsets", "committed"})));
    EXPECT_TRUE(ExactlyCounted(AllLines(out2), Keys("b", 6, 15)));
  }
  {
    SCOPED_TRACE("a group without commits");
    ASSERT_NO_FATAL_FAILURE(RunToEnd(
        RunFlags(cluster_.dir()),
        CountArgs(kafka_, out3,
                  {"--topic", "in", "--group-id", "g-new", "--starting-offsets", "committed"})));
    EXPECT_TRUE(ExactlyCounted(AllLines(out3), Merge(Keys("a", 6, 20), Keys("b", 6, 15))));
  }
}

// A timestamp after every record there: no record is at or after it, so reading starts at the
// end; the records produced later are read (and not those before).
TEST_F(KafkaSourceTest, TimestampAfterEveryRecordStartsAtTheEnd) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(1, {{"in", 3}}));
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "old", 6, 20));
  std::this_thread::sleep_for(50ms);
  const int64_t after = NowMs();
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_.SubmitDetached(TestJobLibrary("kafka_count_job"), RunFlags(cluster_.dir()),
                                   CountArgs(kafka_, out_,
                                             {"--topic", "in", "--starting-offsets",
                                              absl::StrCat("timestamp:", after), "--unbounded"})));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitUntilReading(cluster_, job));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "new", 6, 20));
  ASSERT_NO_FATAL_FAILURE(WaitForCountsThenCancel(job, out_, Keys("new", 6, 20)));
  EXPECT_TRUE(ExactlyCounted(AllLines(out_), Keys("new", 6, 20)));
}

// Whether the cluster looks offsets up by timestamp: `kcat -Q` for a timestamp before the first
// record of partition 0 must answer offset 0 (the mock answers -1 for every timestamp).
absl::StatusOr<bool> LooksUpTimestamps(const KafkaDev& kafka, const std::string& topic) {
  const std::string dir = MakeTempDir();
  CommandResult r = RunCommand(
      {"/usr/bin/kcat", "-Q", "-b", kafka.bootstrap(), "-t", absl::StrCat(topic, ":0:1")}, dir,
      30s);
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (r.exit_code != 0) return absl::InternalError("kcat -Q failed: " + r.Describe());
  if (r.out.find("offset 0") != std::string::npos) return true;
  if (r.out.find("offset -1") != std::string::npos) return false;
  return absl::InternalError("kcat -Q printed no offset: " + r.Describe());
}

// Two batches produced a while apart (kcat cannot set a record's timestamp, so the producer's
// clock gives them theirs), the job starting at a time between them: only the second is read.
TEST_F(KafkaSourceTest, TimestampBetweenTwoBatchesStartsAtTheSecond) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(1, {{"in", 3}}));
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "a", 6, 20));
  bool supported = false;
  SLUICE_ASSIGN_OR_FAIL(supported, LooksUpTimestamps(kafka_, "in"));
  if (!supported) {
    GTEST_SKIP() << "the Kafka cluster answers no offset lookup by timestamp (librdkafka's mock "
                    "cluster answers -1 to every one)";
  }
  std::this_thread::sleep_for(300ms);
  const int64_t between = NowMs();
  std::this_thread::sleep_for(300ms);
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "b", 6, 20));
  ASSERT_NO_FATAL_FAILURE(RunToEnd(
      RunFlags(cluster_.dir()),
      CountArgs(kafka_, out_,
                {"--topic", "in", "--starting-offsets", absl::StrCat("timestamp:", between)})));
  EXPECT_TRUE(ExactlyCounted(AllLines(out_), Keys("b", 6, 20)));
}

// ---- bounded mode ----

// A bounded job ends at the offsets that were the latest when it started: records produced while
// it runs (the same keys, so counting them would count past the number) are not read, and it
// finishes.
TEST_F(KafkaSourceTest, BoundedEndsAtTheOffsetsLatestAtTheStart) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(1, {{"in", 3}}));
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "k", 12, 200));
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job,
      cluster_.SubmitDetached(TestJobLibrary("kafka_count_job"), RunFlags(cluster_.dir()),
                              CountArgs(kafka_, out_, {"--topic", "in", "--throttle-us", "2000"})));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitUntilReading(cluster_, job));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 3, "k", 12, 50, 200));
  SLUICE_ASSIGN_OR_FAIL(st, cluster_.client().GetJob(job));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING)
      << "the job ended before the later records were produced: make it slower";
  SLUICE_ASSIGN_OR_FAIL(st, cluster_.WaitForJob(job, Terminal, 60s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_TRUE(ExactlyCounted(AllLines(out_), Keys("k", 12, 200)));
}

// ---- partition discovery ----

// A topic pattern with discovery every 200 ms: a topic created while the job runs is found, read
// from its earliest offset (the records produced before discovery found it are counted too), and
// a topic the pattern does not match is not read.
TEST_F(KafkaSourceTest, PatternDiscoversATopicCreatedWhileRunning) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(1, {{"in-1", 3}, {"other", 2}}));
  SLUICE_ASSERT_OK(Produce(kafka_, "in-1", 3, "a", 6, 20));
  SLUICE_ASSERT_OK(Produce(kafka_, "other", 2, "x", 4, 10));
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_.SubmitDetached(TestJobLibrary("kafka_count_job"), RunFlags(cluster_.dir()),
                                   CountArgs(kafka_, out_,
                                             {"--topic-pattern", "in-.*", "--discovery-interval-ms",
                                              "200", "--unbounded"})));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitUntilReading(cluster_, job));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  ASSERT_TRUE(WaitUntil([&] { return Reached(out_, Keys("a", 6, 20)); }, 60s, 100ms))
      << absl::StrJoin(NotReached(out_, Keys("a", 6, 20)), ", ");
  // Two partitions more: the mock cannot add partitions to a topic, so they come as a new topic.
  SLUICE_ASSERT_OK(kafka_.Command("create-topic in-2 2"));
  SLUICE_ASSERT_OK(Produce(kafka_, "in-2", 2, "b", 4, 15));
  SLUICE_ASSERT_OK(Produce(kafka_, "in-1", 3, "a", 6, 5, 20));
  const Want want = Merge(Keys("a", 6, 25), Keys("b", 4, 15));
  ASSERT_NO_FATAL_FAILURE(WaitForCountsThenCancel(job, out_, want));
  EXPECT_TRUE(ExactlyCounted(AllLines(out_), want));
}

// ---- restore at another parallelism ----

class KafkaSourceRescaleTest : public KafkaSourceTest, public ::testing::WithParamInterface<int> {};

// Run at -p 2, cancelled after a checkpoint with part of the input counted, resumed from that
// checkpoint at another parallelism into the same output folder: the partitions' positions (union
// state) go to their new owners, and every record is counted exactly once over both runs.
TEST_P(KafkaSourceRescaleTest, RestoreAtAnotherParallelismCountsEveryRecordOnce) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(1, {{"in", 4}}));
  const Want want = Keys("k", 12, 150);
  SLUICE_ASSERT_OK(Produce(kafka_, "in", 4, "k", 12, 150));
  const std::vector<std::string> args =
      CountArgs(kafka_, out_, {"--topic", "in", "--throttle-us", "3000"});
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, cluster_.SubmitDetached(TestJobLibrary("kafka_count_job"),
                                                     RunFlags(cluster_.dir(), 2), args));
  bool ended = false;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto s = cluster_.client().GetJob(job);
        if (!s.ok()) return false;
        if (Terminal(*s)) return ended = true;
        return s->last_checkpoint_id() >= 2 && !AllLines(out_).empty();
      },
      60s, 50ms))
      << "no checkpoint with output within 60 s";
  ASSERT_FALSE(ended) << "the job ended before it was cancelled: make it slower";
  proto::JobStatus st = Cancel(job);
  ASSERT_EQ(st.state(), proto::JOB_CANCELED);
  const std::string chk = st.last_checkpoint_path();
  ASSERT_TRUE(fs::exists(chk + "/_metadata")) << "checkpoint not retained: " << st.DebugString();
  const size_t first_lines = AllLines(out_).size();
  ASSERT_LT(first_lines, 12u * 150u) << "the first run counted everything before the cancel";

  std::vector<std::string> flags{"-s", chk};
  for (const std::string& f : RunFlags(cluster_.dir(), GetParam())) flags.push_back(f);
  std::string resumed;
  SLUICE_ASSIGN_OR_FAIL(resumed,
                        cluster_.SubmitDetached(TestJobLibrary("kafka_count_job"), flags, args));
  SLUICE_ASSIGN_OR_FAIL(st, cluster_.WaitForJob(resumed, Terminal, 90s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_EQ(st.parallelism(), GetParam());
  EXPECT_EQ(st.restarts(), 0);
  EXPECT_TRUE(ExactlyCounted(AllLines(out_), want))
      << first_lines << " lines committed by the first run";
}

INSTANTIATE_TEST_SUITE_P(Parallelism, KafkaSourceRescaleTest, ::testing::Values(3, 1),
                         [](const auto& info) { return absl::StrCat("P2To", info.param); });

// ---- a broker down and back ----

// Three brokers, broker 2 leading partition 1, which is written in small batches and read with
// small fetches (so that the consumer has not fetched it all ahead when the broker goes away).
// Broker 2 goes down for a second while the job runs: the job waits for it, does not fail, and
// finishes with every record counted once.
TEST_F(KafkaSourceTest, BrokerDownAndBackLosesAndRepeatsNothing) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(3, {{"in", 3}}));
  SLUICE_ASSERT_OK(kafka_.Command("leader in 1 2"));
  const int keys = 12, per_key = 150, chunk = 15;
  // Keys 1, 4, 7, 10 go to partition 1: in chunks of `chunk` records per key, one kcat call each.
  for (int first = 0; first < per_key; first += chunk) {
    std::vector<std::string> p1;
    for (int s = first; s < first + chunk; ++s) {
      for (int k = 1; k < keys; k += 3) p1.push_back(absl::StrCat("k", k, ",", s));
    }
    SLUICE_ASSERT_OK(KcatProduce(kafka_.bootstrap(), "in", p1, 1));
  }
  for (int p : {0, 2}) {
    std::vector<std::string> lines;
    for (int s = 0; s < per_key; ++s) {
      for (int k = p; k < keys; k += 3) lines.push_back(absl::StrCat("k", k, ",", s));
    }
    SLUICE_ASSERT_OK(KcatProduce(kafka_.bootstrap(), "in", lines, p));
  }
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_.SubmitDetached(
               TestJobLibrary("kafka_count_job"), RunFlags(cluster_.dir()),
               CountArgs(kafka_, out_,
                         {"--topic", "in", "--throttle-us", "1500", "--consumer-properties",
                          "queued.min.messages=1,fetch.message.max.bytes=512"})));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitUntilReading(cluster_, job));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  SLUICE_ASSERT_OK(kafka_.Command("broker-down 2"));
  std::this_thread::sleep_for(1s);
  SLUICE_ASSIGN_OR_FAIL(st, cluster_.client().GetJob(job));
  const bool running_while_down = st.state() == proto::JOB_RUNNING;
  SLUICE_ASSERT_OK(kafka_.Command("broker-up 2"));
  EXPECT_TRUE(running_while_down) << "the job ended while broker 2 was down: "
                                  << proto::JobState_Name(st.state()) << " " << st.failure();
  SLUICE_ASSIGN_OR_FAIL(st, cluster_.WaitForJob(job, Terminal, 90s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_EQ(st.restarts(), 0);
  EXPECT_TRUE(ExactlyCounted(AllLines(out_), Keys("k", keys, per_key)));
}

// ---- per-partition watermarks (examples/kafka_alerting) ----

// Event time starts here, on a window boundary.
constexpr int64_t kT0 = 1'700'000'000'000;

// A reading of `host` at kT0 + `at` ms.
std::string Reading(const std::string& host, int64_t at) {
  return absl::StrCat(kT0 + at, ",", host, ",cpu,50");
}

// The windows in the committed output of kafka_alerting, as `end-kT0,host,count`.
std::set<std::string> Windows(const std::string& dir) {
  std::set<std::string> out;
  for (const std::string& line : AllLines(dir)) {
    std::vector<std::string> f = absl::StrSplit(line, ',');
    int64_t end = 0;
    if (f.size() == 6 && absl::SimpleAtoi(f[0], &end)) {
      out.insert(absl::StrCat(end - kT0, ",", f[1], ",", f[5]));
    } else {
      out.insert("unexpected line: " + line);
    }
  }
  return out;
}

class KafkaSourceWatermarkTest : public KafkaSourceTest {
 protected:
  // kafka_alerting at -p 1 (one source subtask reads all three partitions, one watermark
  // generator each) over topic `topic`: 1 s windows, no out-of-orderness, `idleness_ms`.
  std::string StartAlerting(const std::string& topic, int idleness_ms, const std::string& out) {
    auto job = cluster_.SubmitDetached(
        ExampleLibrary("kafka_alerting"), RunFlags(cluster_.dir(), 1),
        {"--bootstrap-servers", kafka_.bootstrap(), "--topic", topic, "--threshold", "1000",
         "--window-ms", "1000", "--out-of-orderness-ms", "0", "--idleness-ms",
         absl::StrCat(idleness_ms), "--output", out, "--group-id", "alerting-" + topic});
    EXPECT_TRUE(job.ok()) << job.status();
    if (!job.ok()) return "";
    auto st = WaitUntilReading(cluster_, *job);
    EXPECT_TRUE(st.ok() && st->state() == proto::JOB_RUNNING)
        << (st.ok() ? st->failure() : st.status().ToString());
    return *job;
  }

  // Lets `n` more checkpoints complete (each commits what the windows emitted before it).
  void LetCheckpointsComplete(const std::string& job, int n) {
    auto st = cluster_.client().GetJob(job);
    ASSERT_TRUE(st.ok()) << st.status();
    const int64_t until = st->last_checkpoint_id() + n;
    auto after = cluster_.WaitUntilOrEnd(
        job, [&](const proto::JobStatus& s) { return s.last_checkpoint_id() >= until; }, 30s);
    ASSERT_TRUE(after.ok()) << after.status();
    ASSERT_EQ(after->state(), proto::JOB_RUNNING) << after->failure();
  }

  // Waits for `want` in the output, lets more checkpoints complete, and checks that nothing else
  // came (the windows after the watermark stay open).
  void ExpectExactlyTheseWindows(const std::string& job, const std::string& out,
                                 const std::set<std::string>& want) {
    WaitUntil(
        [&] {
          std::set<std::string> w = Windows(out);
          return std::includes(w.begin(), w.end(), want.begin(), want.end());
        },
        30s, 100ms);
    ASSERT_NO_FATAL_FAILURE(LetCheckpointsComplete(job, 3));
    EXPECT_THAT(Windows(out), ::testing::ContainerEq(want));
  }
};

// Partitions 0 and 1 run 5 s ahead in event time, partition 2 lags at +0.6 s: no window fires
// while it lags (one watermark for the whole source would fire the windows up to +5 s at once).
// When partition 2 reaches +2.6 s, exactly the windows ending by +2 s fire.
TEST_F(KafkaSourceWatermarkTest, LaggingPartitionHoldsWindowsBack) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(1, {{"readings", 3}}));
  for (int p = 0; p < 2; ++p) {
    std::vector<std::string> lines;
    for (int64_t at = 100; at <= 5100; at += 1000)
      lines.push_back(Reading(absl::StrCat("h", p), at));
    SLUICE_ASSERT_OK(KcatProduce(kafka_.bootstrap(), "readings", lines, p));
  }
  SLUICE_ASSERT_OK(
      KcatProduce(kafka_.bootstrap(), "readings", {Reading("h2", 100), Reading("h2", 600)}, 2));
  const std::string job = StartAlerting("readings", 0, out_);
  ASSERT_FALSE(job.empty());
  ASSERT_NO_FATAL_FAILURE(LetCheckpointsComplete(job, 5));
  EXPECT_THAT(Windows(out_), ::testing::IsEmpty()) << "windows fired past the lagging partition";

  SLUICE_ASSERT_OK(KcatProduce(kafka_.bootstrap(), "readings", {Reading("h2", 2600)}, 2));
  ExpectExactlyTheseWindows(job, out_,
                            {"1000,h0,1", "2000,h0,1", "1000,h1,1", "2000,h1,1", "1000,h2,2"});
  Cancel(job);
}

// Partition 2 gets no record. With --idleness-ms 500 it stops holding event time back: the
// windows of the others fire. Without idleness they do not, until partition 2 gets a record.
TEST_F(KafkaSourceWatermarkTest, IdlePartitionHoldsWindowsBackOnlyWithoutIdleness) {
  ASSERT_NO_FATAL_FAILURE(StartBoth(1, {{"idle", 3}, {"strict", 3}}));
  // What both runs must show: the windows ending by +2 s (the watermark reaches +2.6 s).
  const std::set<std::string> want{"1000,h0,1", "2000,h0,1", "1000,h1,1"};
  const std::vector<std::string> p0{Reading("h0", 100), Reading("h0", 1100), Reading("h0", 2100),
                                    Reading("h0", 2600)};
  {
    SCOPED_TRACE("idleness 500 ms");
    const std::string out = cluster_.dir() + "/idle-out";
    const std::string job = StartAlerting("idle", 500, out);
    ASSERT_FALSE(job.empty());
    // Every partition is idle by now (no record for over 500 ms). Partition 1 gets one reading
    // at +0.1 s and is idle again a second later, when partition 0 gets its readings: partition
    // 0, the only one not idle, then moves the watermark to +2.6 s while it is active. (Had both
    // got their readings at about the same time, both could go idle between two periodic
    // emissions, and no emission would see partition 1 idle and partition 0 active: idleness
    // is measured in processing time.)
    std::this_thread::sleep_for(1s);
    SLUICE_ASSERT_OK(KcatProduce(kafka_.bootstrap(), "idle", {Reading("h1", 100)}, 1));
    std::this_thread::sleep_for(1s);
    SLUICE_ASSERT_OK(KcatProduce(kafka_.bootstrap(), "idle", p0, 0));
    ExpectExactlyTheseWindows(job, out, want);
    Cancel(job);
  }
  {
    SCOPED_TRACE("no idleness");
    const std::string out = cluster_.dir() + "/strict-out";
    const std::string job = StartAlerting("strict", 0, out);
    ASSERT_FALSE(job.empty());
    SLUICE_ASSERT_OK(
        KcatProduce(kafka_.bootstrap(), "strict", {Reading("h1", 100), Reading("h1", 2600)}, 1));
    SLUICE_ASSERT_OK(KcatProduce(kafka_.bootstrap(), "strict", p0, 0));
    std::this_thread::sleep_for(1s);
    ASSERT_NO_FATAL_FAILURE(LetCheckpointsComplete(job, 5));
    EXPECT_THAT(Windows(out), ::testing::IsEmpty()) << "windows fired past the idle partition";
    SLUICE_ASSERT_OK(KcatProduce(kafka_.bootstrap(), "strict", {Reading("h2", 2600)}, 2));
    ExpectExactlyTheseWindows(job, out, want);
    Cancel(job);
  }
}

}  // namespace
}  // namespace sluice::itest
