// The Kafka connector end to end: a real cluster, sluice-kafka-dev as the Kafka peer in its own
// process, kcat as the independent client that writes the input and reads the output back.
//
// What the mock can prove: librdkafka 2.0.2's mock writes no transaction markers, so a
// read_committed reader also sees the records of aborted transactions; it acknowledges the
// offsets a transaction commits without storing them, so the exactly-once sink runs here with
// sluice.marker.commit-outside-transaction=true; and it fences no producer (see
// ExactlyOnceSinkTakesItsTransactionalIdBackAfterBeingFenced). Exactly-once is proved in full on
// the source side (Kafka in, the exactly-once file sink out); on the sink side the tests check
// the transaction protocol runs (begin, commit on checkpoint completion, the restored batches,
// the reaction to being fenced) and the records a run without aborts writes.
#include <gmock/gmock.h>
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "integration/harness.h"
#include "integration/kafka_dev.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr int kPartitions = 3;

// ---- librdkafka clients of the test's own (kcat has no transactions and reads no group's
// committed offsets) ----

struct RdKafkaDestroy {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
using RdKafka = std::unique_ptr<rd_kafka_t, RdKafkaDestroy>;

absl::StatusOr<RdKafka> NewClient(rd_kafka_type_t type,
                                  const std::map<std::string, std::string>& properties) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  for (const auto& [k, v] : properties) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof(err)) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      return absl::InvalidArgumentError(absl::StrCat(k, "=", v, ": ", err));
    }
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf, err, sizeof(err));
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    return absl::InternalError(absl::StrCat("rd_kafka_new: ", err));
  }
  return RdKafka(rk);
}

// The offsets a consumer group has committed, read with a consumer of that group that consumes
// nothing (no subscription, no assignment).
class GroupOffsets {
 public:
  absl::Status Open(const std::string& bootstrap, const std::string& group) {
    group_ = group;
    auto c = NewClient(
        RD_KAFKA_CONSUMER,
        {{"bootstrap.servers", bootstrap}, {"group.id", group}, {"enable.auto.commit", "false"}});
    if (!c.ok()) return c.status();
    consumer_ = std::move(*c);
    return absl::OkStatus();
  }
  ~GroupOffsets() {
    if (consumer_) rd_kafka_consumer_close(consumer_.get());
  }
  // The group's committed offset of `topic` `partition`; -1 when it has none (or on an error,
  // which `error` then names).
  int64_t Committed(const std::string& topic, int partition, std::string* error = nullptr) {
    rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, topic.c_str(), partition);
    rd_kafka_resp_err_t err = rd_kafka_committed(consumer_.get(), list, 5000);
    int64_t offset = err == RD_KAFKA_RESP_ERR_NO_ERROR ? list->elems[0].offset : -1;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && error) {
      *error = absl::StrCat("group ", group_, ": ", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
    return offset < 0 ? -1 : offset;
  }

 private:
  std::string group_;
  RdKafka consumer_;
};

// Waits (at most `timeout`) until `group` has committed at least `offset` for `topic`
// `partition`; the error names the last offset read.
absl::Status WaitForCommittedOffset(const std::string& bootstrap, const std::string& group,
                                    const std::string& topic, int partition, int64_t offset,
                                    std::chrono::milliseconds timeout) {
  GroupOffsets offsets;
  if (absl::Status s = offsets.Open(bootstrap, group); !s.ok()) return s;
  int64_t last = -1;
  std::string error;
  if (WaitUntil([&] { return (last = offsets.Committed(topic, partition, &error)) >= offset; },
                timeout, 20ms)) {
    return absl::OkStatus();
  }
  return absl::DeadlineExceededError(absl::StrCat("group ", group, " committed ", last, " for ",
                                                  topic, "-", partition, ", not ", offset,
                                                  ", within ", timeout.count(), " ms ", error));
}

// `keys` keys, `per_key` records each (`key,seq`), spread over the partitions of `topic`, each
// key's records in one partition (in order).
absl::Status ProduceCounts(const KafkaDev& kafka, const std::string& topic, int keys, int per_key) {
  std::vector<std::vector<std::string>> by_partition(kPartitions);
  for (int s = 0; s < per_key; ++s) {
    for (int k = 0; k < keys; ++k) {
      by_partition[k % kPartitions].push_back(absl::StrCat("k", k, ",", s));
    }
  }
  for (int p = 0; p < kPartitions; ++p) {
    absl::Status st = KcatProduce(kafka.bootstrap(), topic, by_partition[p], p);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

// Lines `key,count`: with exactly_once, each key's counts are exactly 1..per_key once each;
// otherwise every count 1..per_key is there at least once.
::testing::AssertionResult CountsAreCorrect(const std::vector<std::string>& lines, int keys,
                                            int per_key, bool exactly_once, size_t copies = 1) {
  std::map<std::string, std::multiset<int64_t>> seen;
  for (const std::string& line : lines) {
    std::vector<std::string> f = absl::StrSplit(line, ',');
    int64_t n = 0;
    if (f.size() != 2 || !absl::SimpleAtoi(f[1], &n)) {
      return ::testing::AssertionFailure() << "malformed line '" << line << "'";
    }
    seen[f[0]].insert(n);
  }
  if (static_cast<int>(seen.size()) != keys) {
    return ::testing::AssertionFailure() << seen.size() << " keys, want " << keys;
  }
  for (const auto& [key, counts] : seen) {
    for (int64_t n = 1; n <= per_key; ++n) {
      size_t c = counts.count(n);
      if (c == 0) return ::testing::AssertionFailure() << key << ": count " << n << " missing";
      if (exactly_once && c != copies) {
        return ::testing::AssertionFailure() << key << ": count " << n << " " << c << " times";
      }
    }
    if (*counts.rbegin() != per_key) {
      return ::testing::AssertionFailure()
             << key << ": counted to " << *counts.rbegin() << ", want " << per_key;
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<std::string> AllLines(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& [file, lines] : ReadPartFiles(dir))
    out.insert(out.end(), lines.begin(), lines.end());
  return out;
}

std::vector<std::string> CheckpointedRun(const std::string& dir) {
  return {"-p", "2",
          "-D", "execution.checkpointing.interval=200ms",
          "-D", "state.checkpoints.dir=" + dir + "/checkpoints",
          "-D", "restart-strategy.type=fixed-delay",
          "-D", "restart-strategy.fixed-delay.attempts=3",
          "-D", "restart-strategy.fixed-delay.delay=200ms"};
}

// Runs kafka_count_job over a 3-partition topic, kills the TaskManager of subtask 0 after a
// completed checkpoint, and waits for the job to finish after its restart.
// With `settled`, the kill waits for a checkpoint completed after the first one seen and then (at
// most 30 s) until settled(its id) holds: e.g. until the sink has committed that checkpoint, so
// that the kill does not fall into the sink's commit, whose aborted records the mock would show.
void RunWithKill(TestCluster& cluster, const std::vector<std::string>& run_flags,
                 const std::vector<std::string>& job_args,
                 const std::function<bool(int64_t)>& settled = nullptr) {
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(TestJobLibrary("kafka_count_job"), run_flags, job_args));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitUntilOrEnd(
                                job,
                                [](const proto::JobStatus& s) {
                                  return s.last_checkpoint_id() >= 2 && AllTasksRunning(s);
                                },
                                60s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << "the job ended before the kill: " << st.failure();
  if (settled) {
    const int64_t seen = st.last_checkpoint_id();
    SLUICE_ASSIGN_OR_FAIL(
        st,
        cluster.WaitUntilOrEnd(
            job, [&](const proto::JobStatus& s) { return s.last_checkpoint_id() > seen; }, 60s));
    ASSERT_EQ(st.state(), proto::JOB_RUNNING) << "the job ended before the kill";
    const int64_t id = st.last_checkpoint_id();
    ASSERT_TRUE(WaitUntil([&] { return settled(id); }, 30s, 10ms))
        << "checkpoint " << id << " did not settle within 30 s";
  }
  int victim = cluster.TaskManagerIndex(st.tasks(0).tm_id());
  ASSERT_GE(victim, 0);
  cluster.KillTaskManager(victim);
  SLUICE_ASSERT_OK(cluster.AddTaskManager().status());
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitForJob(
              job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 120s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_GE(st.restarts(), 1);
}

// The count job's setting: `kKeys` keys of `kPerKey` records in a 3-partition topic `in`, an
// output topic `out`, and a cluster of one-slot TaskManagers.
class KafkaCountTest : public ::testing::Test {
 protected:
  static constexpr int kKeys = 12;
  static constexpr int kPerKey = 250;
  void StartAll(int task_managers) {
    SLUICE_ASSERT_OK(kafka_.Start(1, {{"in", kPartitions}, {"out", 2}}));
    SLUICE_ASSERT_OK(ProduceCounts(kafka_, "in", kKeys, kPerKey));
    cluster_ = std::make_unique<TestCluster>(ClusterOptions{task_managers, 1, {}, {}});
    SLUICE_ASSERT_OK(cluster_->Start());
  }
  // The count job's arguments reading `in`, then `more`.
  std::vector<std::string> JobArgs(std::vector<std::string> more) const {
    std::vector<std::string> args = {"--bootstrap-servers", kafka_.bootstrap(), "--topic", "in"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  // The count job exactly once into `out` (prefix "count"), its markers also committed outside
  // the transactions (the mock stores no offsets committed in a transaction), then `more`.
  std::vector<std::string> ExactlyOnceArgs(std::vector<std::string> more = {}) const {
    std::vector<std::string> args =
        JobArgs({"--output-topic", "out", "--delivery-guarantee", "exactly-once",
                 "--transactional-id-prefix", "count", "--throttle-us", "2000",
                 "--producer-properties", "sluice.marker.commit-outside-transaction=true"});
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  // Every count of the output topic is there (once each with `exactly_once`).
  void ExpectOutputTopicCorrect(bool exactly_once) {
    std::vector<std::string> lines;
    SLUICE_ASSIGN_OR_FAIL(lines, KcatConsume(kafka_.bootstrap(), "out"));
    EXPECT_TRUE(CountsAreCorrect(lines, kKeys, kPerKey, exactly_once));
  }
  KafkaDev kafka_;
  std::unique_ptr<TestCluster> cluster_;
};

class KafkaSourceKillTest : public KafkaCountTest,
                            public ::testing::WithParamInterface<std::vector<std::string>> {};

// Kafka in, the exactly-once file sink out: a TaskManager killed mid-run, every record counted
// exactly once (the offsets restored with the state).
TEST_P(KafkaSourceKillTest, ExactlyOnceAcrossATaskManagerKill) {
  StartAll(3);
  std::vector<std::string> flags = CheckpointedRun(cluster_->dir());
  for (const std::string& d : GetParam()) {
    flags.push_back("-D");
    flags.push_back(d);
  }
  const std::string out = cluster_->dir() + "/out";
  RunWithKill(*cluster_, flags, JobArgs({"--output", out, "--throttle-us", "1000"}));
  EXPECT_TRUE(CountsAreCorrect(AllLines(out), kKeys, kPerKey, true));
  EXPECT_TRUE(cluster_->IsHealthy());
}

INSTANTIATE_TEST_SUITE_P(Backends, KafkaSourceKillTest,
                         ::testing::Values(std::vector<std::string>{},
                                           std::vector<std::string>{
                                               "state.backend.type=rocksdb",
                                               "state.backend.incremental=true"}),
                         [](const auto& info) { return info.param.empty() ? "Heap" : "RocksDb"; });

// The at-least-once sink loses nothing across a TaskManager kill: every count is in the output
// topic, read back with kcat.
TEST_F(KafkaCountTest, AtLeastOnceSinkLosesNothingAcrossATaskManagerKill) {
  StartAll(3);
  RunWithKill(*cluster_, CheckpointedRun(cluster_->dir()),
              JobArgs({"--output-topic", "out", "--delivery-guarantee", "at-least-once",
                       "--throttle-us", "1000"}));
  ExpectOutputTopicCorrect(false);
}

// Exactly once into Kafka: one transaction per checkpoint and subtask, committed when the
// checkpoint completes; after a TaskManager kill the restored batches are committed once (their
// markers say which are in Kafka already).
TEST_F(KafkaCountTest, ExactlyOnceSinkAcrossATaskManagerKill) {
  StartAll(3);
  std::vector<std::string> flags = CheckpointedRun(cluster_->dir());
  flags[3] = "execution.checkpointing.interval=1s";
  // The kill comes once both subtasks have committed the checkpoint: their markers (committed
  // after the transaction) have reached it.
  GroupOffsets marker0, marker1;
  SLUICE_ASSERT_OK(marker0.Open(kafka_.bootstrap(), "count-0"));
  SLUICE_ASSERT_OK(marker1.Open(kafka_.bootstrap(), "count-1"));
  RunWithKill(*cluster_, flags, ExactlyOnceArgs(), [&](int64_t id) {
    return marker0.Committed("out", 0) >= id && marker1.Committed("out", 0) >= id;
  });
  ExpectOutputTopicCorrect(true);
}

// A failed commit fails the task; the restore takes the transactional id over and commits the
// batch the restored checkpoint holds, once (its marker said it was not in Kafka yet). The error
// is injected into AddOffsetsToTxn, which the sink sends before any record of the transaction,
// so that the mock (which writes no abort markers) shows no record of the failed transaction.
// Runs the count job exactly once into `out` (prefix "count") and injects a failed commit after
// its first checkpoint; the job must finish after a restart whose restore committed a batch.
void RunWithAFailedCommit(TestCluster& cluster, KafkaDev& kafka,
                          const std::vector<std::string>& job_args) {
  std::vector<std::string> flags = CheckpointedRun(cluster.dir());
  flags[3] = "execution.checkpointing.interval=500ms";
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job,
                        cluster.SubmitDetached(TestJobLibrary("kafka_count_job"), flags, job_args));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitUntilOrEnd(
                                job,
                                [](const proto::JobStatus& s) {
                                  return s.last_checkpoint_id() >= 1 && AllTasksRunning(s);
                                },
                                60s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  // GROUP_AUTHORIZATION_FAILED: an error that aborts the transaction.
  SLUICE_ASSERT_OK(kafka.Command("request-errors AddOffsetsToTxn 30 1"));
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitForJob(
              job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 120s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_GE(st.restarts(), 1) << "the injected error did not fail a commit";
  std::string logs;
  for (int i = 0; i < cluster.num_task_managers(); ++i) logs += cluster.TaskManagerLog(i);
  EXPECT_THAT(logs, ::testing::ContainsRegex("and [1-9][0-9]* were committed now"));
}

// A failed commit fails the task; the restore takes the transactional id over and commits the
// batch the restored checkpoint holds, once (its marker said it was not in Kafka yet). The error
// is injected into AddOffsetsToTxn, which the sink sends before any record of the transaction,
// so that the mock (which writes no abort markers) shows no record of the failed transaction.
TEST_F(KafkaCountTest, ExactlyOnceSinkCommitsTheRestoredBatchAfterAFailedCommit) {
  StartAll(2);
  RunWithAFailedCommit(*cluster_, kafka_, ExactlyOnceArgs());
  ExpectOutputTopicCorrect(true);
}

// A second, fresh run with the same prefix into the same topic: the first run's markers (higher
// checkpoint ids) carry another lineage token, so the second run's restored batch is committed,
// not taken for one already in Kafka. Every count is in the topic twice, once per run.
TEST_F(KafkaCountTest, ExactlyOnceSinkSecondRunWithTheSamePrefixIsNotMistakenForTheFirst) {
  StartAll(2);
  const std::vector<std::string> args = ExactlyOnceArgs();
  std::vector<std::string> run = {"run",
                                  "-p",
                                  "2",
                                  "-D",
                                  "execution.checkpointing.interval=200ms",
                                  TestJobLibrary("kafka_count_job"),
                                  "--"};
  run.insert(run.end(), args.begin(), args.end());
  CommandResult r = cluster_->Cli(run, std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  RunWithAFailedCommit(*cluster_, kafka_, args);
  std::vector<std::string> lines;
  SLUICE_ASSIGN_OR_FAIL(lines, KcatConsume(kafka_.bootstrap(), "out"));
  EXPECT_TRUE(CountsAreCorrect(lines, kKeys, kPerKey, true, 2));
}

// Zombie fencing. While the job runs exactly once at parallelism 1 (one transactional id,
// `count-0`), a second producer of the test's own initialises `count-0`, as a new instance of
// the application would: on a broker that bumps the id's epoch and fences the job's producer,
// whose next transaction fails with PRODUCER_FENCED; the task fails, the restore takes the id
// back (fencing the test's producer in turn) and commits the restored batch its marker does not
// cover. The output stays exactly once.
//
// librdkafka 2.0.2's mock fences nobody: InitProducerId for an id in use hands out a new producer
// id at epoch 0 and leaves the holder's alone, so the holder goes on committing. The test checks
// that (the job commits another checkpoint after the second producer's initialisation, without
// a restart), then injects the answer a broker gives the fenced producer, PRODUCER_FENCED, into
// the job's next AddOffsetsToTxn (the first request of its next transaction: the marker goes
// first, so no record of the fenced transaction reaches the mock, which shows aborted records).
TEST_F(KafkaCountTest, ExactlyOnceSinkTakesItsTransactionalIdBackAfterBeingFenced) {
  StartAll(1);
  std::vector<std::string> flags = CheckpointedRun(cluster_->dir());
  flags[1] = "1";
  flags[3] = "execution.checkpointing.interval=500ms";
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_->SubmitDetached(TestJobLibrary("kafka_count_job"), flags, ExactlyOnceArgs()));
  GroupOffsets marker;
  SLUICE_ASSERT_OK(marker.Open(kafka_.bootstrap(), "count-0"));
  // The job has committed a transaction under `count-0`.
  int64_t committed = -1;
  ASSERT_TRUE(WaitUntil([&] { return (committed = marker.Committed("out", 0)) >= 1; }, 60s))
      << "the sink committed no checkpoint";

  // The second producer takes the id over.
  SLUICE_ASSIGN_OR_FAIL(RdKafka other,
                        NewClient(RD_KAFKA_PRODUCER, {{"bootstrap.servers", kafka_.bootstrap()},
                                                      {"transactional.id", "count-0"}}));
  rd_kafka_error_t* init = rd_kafka_init_transactions(other.get(), 10000);
  const std::string init_error = init ? rd_kafka_error_string(init) : "";
  if (init) rd_kafka_error_destroy(init);
  ASSERT_EQ(init_error, "") << "the second producer's init_transactions failed";

  // What the mock does: the job's producer is not fenced, its next transaction commits.
  ASSERT_TRUE(WaitUntil([&] { return marker.Committed("out", 0) > committed; }, 30s))
      << "the job committed no transaction after the second producer's initialisation";
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, cluster_->client().GetJob(job));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  ASSERT_EQ(st.restarts(), 0) << "the mock fenced the job's producer: the injection below "
                                 "is no longer needed to show it";

  // What a broker answers the fenced producer's next transaction.
  SLUICE_ASSERT_OK(kafka_.Command("request-errors AddOffsetsToTxn PRODUCER_FENCED 1"));
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster_->WaitForJob(
              job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 120s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_GE(st.restarts(), 1) << "the fenced transaction did not fail the task";
  const std::string logs = cluster_->TaskManagerLog(0);
  EXPECT_THAT(logs, HasSubstr("transactional id 'count-0'"));
  EXPECT_THAT(logs, ::testing::ContainsRegex("[Ff]enced"));
  EXPECT_THAT(logs, ::testing::ContainsRegex("origin 0 \\(transactional id 'count-0'\\) taken "
                                             "over; of its [1-9][0-9]* restored batches"));
  ExpectOutputTopicCorrect(true);
}

// kafka_alerting with --rules-topic: per-metric thresholds from a second topic, as broadcast
// state. cpu averages 70 in each window: above the rule's 60, below the default threshold 90;
// disk (no rule) averages 80, below 90. The readings go to one partition of two: the other is
// idle (--idleness-ms), or it would hold event time back.
TEST(KafkaAlertingTest, RulesFromASecondTopicSetTheThresholds) {
  KafkaDev kafka;
  SLUICE_ASSERT_OK(kafka.Start(1, {{"readings", 2}, {"rules", 1}}));
  SLUICE_ASSERT_OK(KcatProduce(kafka.bootstrap(), "rules", {"cpu,60", "malformed"}));
  TestCluster cluster(ClusterOptions{1, 4, {}, {}});
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string out = cluster.dir() + "/out";
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(
               ExampleLibrary("kafka_alerting"),
               {"-p", "2", "-D", "execution.checkpointing.interval=200ms"},
               {"--bootstrap-servers", kafka.bootstrap(), "--topic", "readings", "--rules-topic",
                "rules", "--threshold", "90", "--window-ms", "1000", "--out-of-orderness-ms", "0",
                "--idleness-ms", "500", "--output", out}));
  SLUICE_ASSERT_OK(cluster.WaitForAllTasksRunning(job, 30s).status());
  // The readings come once the rules are in a completed checkpoint: the rules source commits
  // their offset (2, past both records) when it completes, and the broadcast step has applied
  // them before its barrier.
  SLUICE_ASSERT_OK(
      WaitForCommittedOffset(kafka.bootstrap(), "sluice-kafka-alerting-rules", "rules", 0, 2, 30s));
  std::vector<std::string> readings;
  for (int s = 0; s < 3; ++s) {
    for (int i = 0; i < 4; ++i) {
      int64_t ts = 1000 * s + 100 * i;
      readings.push_back(absl::StrCat(ts, ",h1,cpu,", i % 2 == 0 ? 60 : 80));
      readings.push_back(absl::StrCat(ts, ",h1,disk,", 80));
    }
  }
  readings.push_back("5000,h1,cpu,0");  // moves event time past the three windows
  SLUICE_ASSERT_OK(KcatProduce(kafka.bootstrap(), "readings", readings, 0));
  auto alerts = [&] {
    std::vector<std::string> a;
    for (const std::string& line : AllLines(out)) {
      if (line.rfind("ALERT,", 0) == 0) a.push_back(line);
    }
    std::sort(a.begin(), a.end());
    return a;
  };
  EXPECT_TRUE(WaitUntil([&] { return alerts().size() >= 3; }, 30s))
      << ::testing::PrintToString(alerts());
  EXPECT_THAT(alerts(),
              ::testing::ElementsAre("ALERT,1000,h1,cpu,70.000", "ALERT,2000,h1,cpu,70.000",
                                     "ALERT,3000,h1,cpu,70.000"));
  SLUICE_EXPECT_OK(cluster.client().Cancel(job));
}

// examples/kafka_wordcount end to end: lines in a 2-partition topic (words separated by spaces
// and tabs, some lines blank), the example run bounded at parallelism 2, exactly once into a
// 2-partition topic. Each record is keyed by its word; a word's records (all in one partition,
// by key) are its rolling counts 1..n in order, once each, n being how often the lines hold it.
TEST(KafkaWordCountTest, CountsEveryWordOfTheTopicExactlyOnce) {
  KafkaDev kafka;
  SLUICE_ASSERT_OK(kafka.Start(1, {{"lines", 2}, {"counts", 2}}));
  const std::vector<std::string> vocabulary = {"the",  "quick", "brown", "fox",  "jumps",
                                               "over", "lazy",  "dog",   "a",    "stream",
                                               "of",   "words", "Kafka", "kafka"};
  const std::vector<std::string> separators = {" ", "\t", "  ", " \t "};
  std::vector<std::string> by_partition[2];
  std::map<std::string, int64_t> want;
  for (int i = 0; i < 300; ++i) {
    std::string line = i % 7 == 0 ? " " : "";             // a leading separator now and then
    const int words = i % 11 == 5 ? 0 : 1 + (i * 7) % 6;  // some lines hold none
    for (int w = 0; w < words; ++w) {
      const std::string& word = vocabulary[(i * 31 + w * 17) % vocabulary.size()];
      if (w > 0) line += separators[(i + w) % separators.size()];
      line += word;
      ++want[word];
    }
    if (i % 5 == 0) line += "\t";   // and a trailing one
    if (line.empty()) line = "  ";  // a blank line: separators only
    by_partition[i % 2].push_back(line);
  }
  for (int p = 0; p < 2; ++p) {
    SLUICE_ASSERT_OK(KcatProduce(kafka.bootstrap(), "lines", by_partition[p], p));
  }
  TestCluster cluster(ClusterOptions{1, 2, {}, {}});
  SLUICE_ASSERT_OK(cluster.Start());
  CommandResult r = cluster.Cli(
      {"run", "-p", "2", "-D", "execution.checkpointing.interval=200ms",
       ExampleLibrary("kafka_wordcount"), "--", "--bootstrap-servers", kafka.bootstrap(),
       "--input-topic", "lines", "--output-topic", "counts", "--delivery-guarantee", "exactly-once",
       "--producer-properties", "sluice.marker.commit-outside-transaction=true", "--bounded"},
      std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.Describe();

  std::vector<KcatRecord> records;
  SLUICE_ASSIGN_OR_FAIL(records, KcatConsumeRecords(kafka.bootstrap(), "counts"));
  std::map<std::string, std::vector<int64_t>> counts;  // per word, in offset order
  std::map<std::string, std::set<int>> partitions;
  for (const KcatRecord& rec : records) {
    std::vector<std::string> f = absl::StrSplit(rec.value, ',');
    int64_t n = 0;
    ASSERT_TRUE(f.size() == 2 && absl::SimpleAtoi(f[1], &n)) << "malformed value " << rec.value;
    EXPECT_EQ(rec.key, f[0]) << "the record at " << rec.partition << "/" << rec.offset;
    counts[f[0]].push_back(n);
    partitions[f[0]].insert(rec.partition);
  }
  std::map<std::string, int64_t> got;
  for (const auto& [word, seq] : counts) {
    got[word] = seq.empty() ? 0 : seq.back();
    std::vector<int64_t> expected(seq.size());
    for (size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<int64_t>(i) + 1;
    EXPECT_EQ(seq, expected) << "the counts of '" << word << "'";
    EXPECT_EQ(partitions[word].size(), 1u) << "'" << word << "' in more than one partition";
  }
  EXPECT_EQ(got, want);
}

// Bad input: each a clear error naming it, and the cluster keeps serving.
TEST(KafkaBadInputTest, ErrorsNameTheProblemAndTheClusterKeepsServing) {
  KafkaDev kafka;
  SLUICE_ASSERT_OK(kafka.Start(1, {{"in", 1}}));
  SLUICE_ASSERT_OK(KcatProduce(kafka.bootstrap(), "in", {"k0,0", "poison", "k0,1"}));
  TestCluster cluster(ClusterOptions{1, 2, {}, {}});
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string out = cluster.dir() + "/out";
  auto fails_with = [&](const std::vector<std::string>& job_args, const std::string& what) {
    SCOPED_TRACE(what);
    std::string job;
    SLUICE_ASSIGN_OR_FAIL(job,
                          cluster.SubmitDetached(TestJobLibrary("kafka_count_job"), {}, job_args));
    proto::JobStatus st;
    SLUICE_ASSIGN_OR_FAIL(
        st, cluster.WaitForJob(
                job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 60s));
    EXPECT_EQ(st.state(), proto::JOB_FAILED);
    EXPECT_THAT(st.failure(), HasSubstr(what));
  };
  fails_with({"--bootstrap-servers", kafka.bootstrap(), "--topic", "nope", "--output", out},
             "Kafka topic 'nope' does not exist");
  fails_with({"--bootstrap-servers", "127.0.0.1:1", "--topic", "in", "--output", out},
             "127.0.0.1:1");
  fails_with({"--bootstrap-servers", kafka.bootstrap(), "--topic", "in", "--output", out,
              "--fail-on", "poison"},
             "the value 'poison' is rejected");
  // Refused when the job is built, before it runs.
  CommandResult r = cluster.Cli({"run", "-d", TestJobLibrary("kafka_count_job"), "--",
                                 "--bootstrap-servers", kafka.bootstrap(), "--topic", "in",
                                 "--output-topic", "out", "--delivery-guarantee", "exactly-once"});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_THAT(r.out + r.err, HasSubstr("transactional id prefix")) << r.Describe();
  r = cluster.Cli({"run", "-d", TestJobLibrary("kafka_count_job"), "--", "--bootstrap-servers",
                   kafka.bootstrap(), "--topic", "in", "--output-topic", "out",
                   "--delivery-guarantee", "exactly-once", "--transactional-id-prefix", "count",
                   "--producer-properties", "sluice.marker.commit-outside-transaction=yes"});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_THAT(r.out + r.err,
              HasSubstr("'sluice.marker.commit-outside-transaction' must be true or false"))
      << r.Describe();
  EXPECT_TRUE(cluster.IsHealthy());
  EXPECT_TRUE(cluster.RunsASmallJob());
}

}  // namespace
}  // namespace sluice::itest
