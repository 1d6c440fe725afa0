// Two-phase commit sinks run in-process: the test plays the runtime, builds the sink's chain with
// env.build_chain, feeds it records and drives checkpoints (snapshot_state,
// notify_checkpoint_complete, initialize_state from a snapshot) as the TaskManager would.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "examples/sequence_count/sequence_count.h"
#include "sluice/connectors/files.h"
#include "sluice/sluice.h"
#include "tests/unit/test_helpers.h"
#include "tests/unit/test_runtime.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing_support::ExpectOperatorError;

// ---------------------------------------------------------------------------------------------
// Test doubles and helpers.

// The shared test runtime, with checkpointing on or off.
class SinkRuntime : public testing_support::TestRuntime {
 public:
  explicit SinkRuntime(bool checkpointing, int subtask = 0, int parallelism = 1)
      : TestRuntime(subtask, parallelism) {
    set_checkpointing(checkpointing);
  }
};

// A fresh directory under the test's temporary directory, removed at the end.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::path(::testing::TempDir()) / "sinks_test.XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
    if (path_.empty()) ADD_FAILURE() << "mkdtemp failed";
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The names in `dir`, sorted.
std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> ReadLines(const std::string& file) {
  std::ifstream in(file);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// Every line of the committed (visible) files of `dir`, in file-name order.
std::vector<std::string> CommittedLines(const std::string& dir) {
  std::vector<std::string> lines;
  for (const std::string& name : ListDir(dir)) {
    if (name.rfind("part-", 0) != 0) continue;
    for (std::string& l : ReadLines(dir + "/" + name)) lines.push_back(std::move(l));
  }
  return lines;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// One serialized buffer of records, as the network delivers it.
template <class T>
std::string Buffer(const std::vector<T>& records) {
  std::string b;
  DataOutput out(b);
  for (const T& r : records) Serializer<T>::write(out, r);
  return b;
}

// A job whose node 1 is a sink made by sink_to; Start() builds and opens that sink's chain the
// way a TaskManager does (initialize_state, then open), from a checkpoint or fresh.
template <class S>
class SinkJob {
 public:
  explicit SinkJob(S sink) { env_.from_elements(std::string("unused")).sink_to(std::move(sink)); }
  std::unique_ptr<internal::ChainTask> Start(
      internal::TaskRuntime& rt,
      const std::vector<internal::OperatorSnapshot>* restored = nullptr) {
    auto task = env_.build_chain({1}, {}, rt);
    task->initialize_state(restored);
    task->open();
    return task;
  }
  const std::string& sink_name() const { return env_.nodes().at(1)->name; }

 private:
  StreamExecutionEnvironment env_;
};

using FileSink = files::ExactlyOnceTextFileSink<std::string>;
const char kFileSinkName[] = "Sink: Exactly-Once Text File";

void Send(internal::ChainTask& task, const std::vector<std::string>& lines) {
  task.process_buffer(0, Buffer(lines));
}

// ---------------------------------------------------------------------------------------------
// The exactly-once text file sink.

TEST(ExactlyOnceTextFileSinkTest, RecordsBecomeVisibleWhenTheirCheckpointCompletes) {
  TempDir dir;
  SinkJob<FileSink> job{FileSink(dir.path())};
  EXPECT_EQ(job.sink_name(), kFileSinkName);
  SinkRuntime rt(/*checkpointing=*/true);
  auto task = job.Start(rt);
  EXPECT_THAT(ListDir(dir.path()), IsEmpty());  // no file before the first record

  Send(*task, {"a", "b"});
  EXPECT_THAT(ListDir(dir.path()), ElementsAre(".part-0-0.inprogress"));
  task->snapshot_state(1);
  Send(*task, {"c"});
  // Checkpoint 1 is taken but not complete: nothing is visible yet.
  EXPECT_THAT(ListDir(dir.path()), ElementsAre(".part-0-0.inprogress", ".part-0-1.inprogress"));
  EXPECT_THAT(CommittedLines(dir.path()), IsEmpty());

  task->notify_checkpoint_complete(1);
  EXPECT_THAT(ListDir(dir.path()), ElementsAre(".part-0-1.inprogress", "part-0-0"));
  EXPECT_THAT(ReadLines(dir.path() + "/part-0-0"), ElementsAre("a", "b"));

  // A checkpoint without records (2), then the end of input and the final checkpoint (3).
  task->snapshot_state(2);
  task->snapshot_state(3);
  task->end_input();
  task->snapshot_state(4);
  // The notification of 2 was lost; that of 4 commits everything up to 4.
  task->notify_checkpoint_complete(4);
  task->close();
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("part-0-0", "part-0-1"));
  EXPECT_THAT(CommittedLines(dir.path()), ElementsAre("a", "b", "c"));
}

TEST(ExactlyOnceTextFileSinkTest, CloseWithCheckpointingCommitsNothing) {
  TempDir dir;
  SinkJob<FileSink> job{FileSink(dir.path())};
  SinkRuntime rt(/*checkpointing=*/true);
  auto task = job.Start(rt);
  Send(*task, {"a"});
  task->snapshot_state(1);  // never completes
  Send(*task, {"b"});
  task->end_input();
  task->close();
  // The pending transaction of checkpoint 1 stays for a restore to commit; the open one (b) is
  // aborted.
  EXPECT_THAT(ListDir(dir.path()), ElementsAre(".part-0-0.inprogress"));
  EXPECT_THAT(ReadLines(dir.path() + "/.part-0-0.inprogress"), ElementsAre("a"));
}

TEST(ExactlyOnceTextFileSinkTest, RestoreCommitsWhatTheLostNotificationWouldHave) {
  TempDir dir;
  SinkJob<FileSink> job{FileSink(dir.path())};
  std::vector<internal::OperatorSnapshot> chk1;
  {
    SinkRuntime rt(true);
    auto task = job.Start(rt);
    Send(*task, {"a", "b"});
    chk1 = task->snapshot_state(1);
    Send(*task, {"c", "d"});  // after checkpoint 1: replayed after a restore
    // The task fails here: no notification, no close.
  }
  EXPECT_THAT(ListDir(dir.path()), ElementsAre(".part-0-0.inprogress", ".part-0-1.inprogress"));

  SinkRuntime rt(true);
  auto task = job.Start(rt, &chk1);
  // Checkpoint 1 completed (we restore from it): its transaction is committed; the one that
  // was open at the failure is aborted and its file deleted.
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("part-0-0"));
  EXPECT_THAT(ReadLines(dir.path() + "/part-0-0"), ElementsAre("a", "b"));

  Send(*task, {"c", "d"});
  task->end_input();
  task->snapshot_state(2);
  task->notify_checkpoint_complete(2);
  task->close();
  // File numbers continue after the restored ones.
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("part-0-0", "part-0-2"));
  EXPECT_THAT(CommittedLines(dir.path()), ElementsAre("a", "b", "c", "d"));
}

TEST(ExactlyOnceTextFileSinkTest, CommittingAgainAfterARestoreIsHarmless) {
  TempDir dir;
  SinkJob<FileSink> job{FileSink(dir.path())};
  std::vector<internal::OperatorSnapshot> chk1;
  {
    SinkRuntime rt(true);
    auto task = job.Start(rt);
    Send(*task, {"a"});
    chk1 = task->snapshot_state(1);
    task->notify_checkpoint_complete(1);
    task->notify_checkpoint_complete(1);  // a repeated notification commits nothing twice
  }
  ASSERT_THAT(ListDir(dir.path()), ElementsAre("part-0-0"));
  // Checkpoint 1 still lists the transaction as pending: each restore commits it again.
  for (int attempt = 0; attempt < 2; ++attempt) {
    SinkRuntime rt(true);
    auto task = job.Start(rt, &chk1);
    EXPECT_THAT(ListDir(dir.path()), ElementsAre("part-0-0"));
  }
  EXPECT_THAT(CommittedLines(dir.path()), ElementsAre("a"));
}

TEST(ExactlyOnceTextFileSinkTest, CommitOfAVanishedFileIsAnErrorNamingIt) {
  TempDir dir;
  SinkJob<FileSink> job{FileSink(dir.path())};
  SinkRuntime rt(true);
  auto task = job.Start(rt);
  Send(*task, {"a"});
  task->snapshot_state(1);
  fs::remove(dir.path() + "/.part-0-0.inprogress");
  ExpectOperatorError([&] { task->notify_checkpoint_complete(1); }, kFileSinkName,
                      "cannot commit '" + dir.path() + "/.part-0-0.inprogress': neither it nor '" +
                          dir.path() + "/part-0-0' exists");
}

TEST(ExactlyOnceTextFileSinkTest, RestoreFromACheckpointBeforeAnUncompletedOneDoesNotDuplicate) {
  TempDir dir;
  SinkJob<FileSink> job{FileSink(dir.path())};
  std::vector<internal::OperatorSnapshot> chk1;
  {
    SinkRuntime rt(true);
    auto task = job.Start(rt);
    Send(*task, {"a"});
    chk1 = task->snapshot_state(1);
    task->notify_checkpoint_complete(1);
    Send(*task, {"b"});
    task->snapshot_state(2);  // pre-commits b; checkpoint 2 never completes
    Send(*task, {"c"});
  }
  EXPECT_THAT(ListDir(dir.path()),
              ElementsAre(".part-0-1.inprogress", ".part-0-2.inprogress", "part-0-0"));

  // The job restores from checkpoint 1, the last complete one; the source replays b and c.
  SinkRuntime rt(true);
  auto task = job.Start(rt, &chk1);
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("part-0-0"));
  Send(*task, {"b", "c"});
  task->snapshot_state(3);
  task->notify_checkpoint_complete(3);
  task->close();
  EXPECT_THAT(CommittedLines(dir.path()), ElementsAre("a", "b", "c"));
}

TEST(ExactlyOnceTextFileSinkTest, RestoreFromACheckpointWhoseNotificationWasLostDoesNotDuplicate) {
  TempDir dir;
  SinkJob<FileSink> job{FileSink(dir.path())};
  std::vector<internal::OperatorSnapshot> chk2;
  {
    SinkRuntime rt(true);
    auto task = job.Start(rt);
    Send(*task, {"a"});
    task->snapshot_state(1);
    task->notify_checkpoint_complete(1);
    Send(*task, {"b"});
    chk2 = task->snapshot_state(2);  // completes, but the notification is lost
    Send(*task, {"c"});
  }
  SinkRuntime rt(true);
  auto task = job.Start(rt, &chk2);
  Send(*task, {"c"});  // replayed from checkpoint 2's position
  task->end_input();
  task->snapshot_state(3);
  task->notify_checkpoint_complete(3);
  task->close();
  EXPECT_THAT(CommittedLines(dir.path()), ElementsAre("a", "b", "c"));
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("part-0-0", "part-0-1", "part-0-3"));
}

TEST(ExactlyOnceTextFileSinkTest, WithoutCheckpointingTheOutputIsCommittedAtTheEndOfInput) {
  TempDir dir;
  SinkJob<FileSink> job{FileSink(dir.path())};
  SinkRuntime rt(/*checkpointing=*/false);
  auto task = job.Start(rt);
  Send(*task, {"x", "y"});
  Send(*task, {"z"});
  EXPECT_THAT(ListDir(dir.path()), ElementsAre(".part-0-0.inprogress"));
  task->end_input();
  EXPECT_THAT(ListDir(dir.path()), ElementsAre("part-0-0"));
  task->close();
  EXPECT_THAT(ReadLines(dir.path() + "/part-0-0"), ElementsAre("x", "y", "z"));
}

TEST(ExactlyOnceTextFileSinkTest, WithoutCheckpointingACancelledTaskPublishesNothing) {
  TempDir dir;
  SinkJob<FileSink> job{FileSink(dir.path())};
  SinkRuntime rt(false);
  auto task = job.Start(rt);
  Send(*task, {"x"});
  task->close();  // no end of input
  EXPECT_THAT(ListDir(dir.path()), IsEmpty());
}

TEST(ExactlyOnceTextFileSinkTest, AFreshStartReplacesTheSinksEarlierOutput) {
  TempDir dir;
  const std::string& d = dir.path();
  WriteFile(d + "/part-0-7", "old\n");
  WriteFile(d + "/.part-0-8.inprogress", "old\n");
  WriteFile(d + "/part-2-0", "old, of a subtask the job no longer has\n");
  WriteFile(d + "/part-1-0", "old, of the other subtask\n");  // that subtask replaces it
  WriteFile(d + "/part-0", "not this sink's\n");
  WriteFile(d + "/notes.txt", "not this sink's\n");
  SinkJob<FileSink> job{FileSink(d)};
  SinkRuntime rt(false, /*subtask=*/0, /*parallelism=*/2);
  auto task = job.Start(rt);
  Send(*task, {"new"});
  task->end_input();
  task->close();
  EXPECT_THAT(ListDir(d), ElementsAre("notes.txt", "part-0", "part-0-0", "part-1-0"));
  EXPECT_THAT(ReadLines(d + "/part-0-0"), ElementsAre("new"));
}

TEST(ExactlyOnceTextFileSinkTest, ARestoredSubtaskWithoutStateNumbersAfterExistingFiles) {
  // After a change of parallelism a subtask may start from a checkpoint with no state of its
  // own: it keeps the files there and numbers its own after them.
  TempDir dir;
  const std::string& d = dir.path();
  WriteFile(d + "/part-1-4", "committed\n");
  WriteFile(d + "/.part-1-6.inprogress", "pending for another subtask\n");
  SinkJob<FileSink> job{FileSink(d)};
  SinkRuntime rt(true, /*subtask=*/1, /*parallelism=*/2);
  std::vector<internal::OperatorSnapshot> none;
  auto task = job.Start(rt, &none);
  Send(*task, {"new"});
  task->snapshot_state(5);
  task->notify_checkpoint_complete(5);
  EXPECT_THAT(ListDir(d), ElementsAre(".part-1-6.inprogress", "part-1-4", "part-1-7"));
}

TEST(ExactlyOnceTextFileSinkTest, AnUnwritableDirectoryIsAnErrorNamingIt) {
  TempDir dir;
  WriteFile(dir.path() + "/file", "a file, not a directory\n");
  std::string target = dir.path() + "/file/out";
  SinkJob<FileSink> job{FileSink(target)};
  SinkRuntime rt(false);
  ExpectOperatorError([&] { job.Start(rt); }, kFileSinkName,
                      "cannot create directory '" + target + "'");
}

TEST(ExactlyOnceTextFileSinkTest, FormatsRecordsAsTextLines) {
  using P = std::pair<std::string, int64_t>;
  TempDir dir;
  StreamExecutionEnvironment env;
  env.from_elements(P{"a", 1}, P{"b", 22})
      .sink_to(files::ExactlyOnceTextFileSink<P>(dir.path()), "Out");
  SinkRuntime rt(false);
  auto task = env.build_chain({0, 1}, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->run_source();
  task->end_input();
  task->close();
  EXPECT_EQ(env.nodes().at(1)->name, "Out");
  EXPECT_THAT(ReadLines(dir.path() + "/part-0-0"), ElementsAre("a,1", "b,22"));
}

// ---------------------------------------------------------------------------------------------
// The two-phase commit operator with a sink that records what it is asked to do.

struct Txn {
  int64_t id = 0;
  std::vector<std::string> values;
  SLUICE_FIELDS(id, values)
};

struct RecordingSink final : TwoPhaseCommitSinkFunction<std::string, Txn> {
  struct Log {
    std::vector<std::string> calls;
    std::vector<std::string> committed;  // values, in commit order
    int failing_commits = 0;             // the next commits that throw
    bool restored = false;
    std::vector<int64_t> handled;
  };
  std::shared_ptr<Log> log = std::make_shared<Log>();
  int64_t next = 0;

  void finish_recovery(bool is_restored, const std::vector<Txn>& handled) override {
    log->restored = is_restored;
    for (const Txn& t : handled) log->handled.push_back(t.id);
  }
  Txn begin_transaction() override {
    log->calls.push_back("begin " + std::to_string(next));
    return Txn{next++, {}};
  }
  void invoke(Txn& t, const std::string& v) override { t.values.push_back(v); }
  void pre_commit(Txn& t) override { log->calls.push_back("pre_commit " + std::to_string(t.id)); }
  void commit(const Txn& t) override {
    log->calls.push_back("commit " + std::to_string(t.id));
    if (log->failing_commits > 0) {
      --log->failing_commits;
      throw std::runtime_error("store unavailable");
    }
    for (const std::string& v : t.values) log->committed.push_back(v);
  }
  void abort(const Txn& t) override { log->calls.push_back("abort " + std::to_string(t.id)); }
};

TEST(TwoPhaseCommitSinkTest, CommitsPendingTransactionsInCheckpointOrder) {
  RecordingSink sink;
  auto log = sink.log;
  SinkJob<RecordingSink> job(sink);
  EXPECT_EQ(job.sink_name(), "Sink: Two-Phase Commit");
  SinkRuntime rt(true);
  auto task = job.Start(rt);
  Send(*task, {"a"});
  task->snapshot_state(1);
  Send(*task, {"b"});
  task->snapshot_state(2);
  Send(*task, {"c"});
  task->snapshot_state(3);
  task->notify_checkpoint_complete(2);  // covers 1 and 2
  EXPECT_THAT(log->committed, ElementsAre("a", "b"));
  task->notify_checkpoint_complete(1);  // late: nothing left to do
  task->notify_checkpoint_complete(3);
  task->close();
  EXPECT_THAT(log->committed, ElementsAre("a", "b", "c"));
  EXPECT_THAT(log->calls, ElementsAre("begin 0", "pre_commit 0", "begin 1", "pre_commit 1",
                                      "begin 2", "pre_commit 2", "begin 3", "commit 0", "commit 1",
                                      "commit 2", "abort 3"));
}

TEST(TwoPhaseCommitSinkTest, RestoreCommitsPendingAndAbortsTheOpenTransaction) {
  RecordingSink sink;
  SinkJob<RecordingSink> job(sink);
  std::vector<internal::OperatorSnapshot> chk2;
  {
    SinkRuntime rt(true);
    auto task = job.Start(rt);
    Send(*task, {"a"});
    task->snapshot_state(1);
    Send(*task, {"b"});
    chk2 = task->snapshot_state(2);
    Send(*task, {"c"});
  }
  auto log = sink.log;  // the copies share the log
  log->calls.clear();
  SinkRuntime rt(true);
  auto task = job.Start(rt, &chk2);
  EXPECT_TRUE(log->restored);
  EXPECT_THAT(log->handled, ElementsAre(0, 1, 2));
  EXPECT_THAT(log->committed, ElementsAre("a", "b"));
  EXPECT_THAT(log->calls, ElementsAre("commit 0", "commit 1", "abort 2", "begin 0"));
}

TEST(TwoPhaseCommitSinkTest, AFailedCommitIsRetried) {
  RecordingSink sink;
  auto log = sink.log;
  SinkJob<RecordingSink> job(sink);
  SinkRuntime rt(true);
  auto task = job.Start(rt);
  Send(*task, {"a"});
  task->snapshot_state(1);
  log->failing_commits = 2;
  task->notify_checkpoint_complete(1);
  EXPECT_THAT(log->committed, ElementsAre("a"));
}

TEST(TwoPhaseCommitSinkTest, ACommitThatKeepsFailingFailsTheTaskNamingTheSink) {
  RecordingSink sink;
  auto log = sink.log;
  SinkJob<RecordingSink> job(sink);
  SinkRuntime rt(true);
  auto task = job.Start(rt);
  Send(*task, {"a"});
  task->snapshot_state(1);
  log->failing_commits = 100;
  ExpectOperatorError([&] { task->notify_checkpoint_complete(1); }, "Sink: Two-Phase Commit",
                      "commit of the transaction of checkpoint 1 failed 3 times; last error: "
                      "store unavailable");
  EXPECT_EQ(std::count(log->calls.begin(), log->calls.end(), "commit 0"), 3);
}

TEST(TwoPhaseCommitSinkTest, AFreshStartIsNotARestore) {
  RecordingSink sink;
  auto log = sink.log;
  log->restored = true;
  SinkJob<RecordingSink> job(sink);
  SinkRuntime rt(false);
  auto task = job.Start(rt);
  EXPECT_FALSE(log->restored);
  EXPECT_THAT(log->handled, IsEmpty());
  Send(*task, {"a"});
  EXPECT_THAT(log->committed, IsEmpty());
  task->end_input();
  EXPECT_THAT(log->committed, ElementsAre("a"));
  task->close();
  EXPECT_THAT(log->calls, ElementsAre("begin 0", "pre_commit 0", "commit 0"));
}

// ---------------------------------------------------------------------------------------------
// The sequence-count example's functions.

using sequence_count::CountSequence;
using sequence_count::KeySeq;
using sequence_count::SequenceCountSource;

// A record writer of one channel that keeps every record as a buffer of its own and can call
// back after each one.
class KeepingWriter final : public internal::RecordWriter {
 public:
  int num_channels() const override { return 1; }
  std::string& buffer(int) override { return open_; }
  void commit(int) override {
    sent_.push_back(std::move(open_));
    open_.clear();
    if (on_record_) on_record_(sent_.size());
  }
  void emit_watermark(int64_t) override {}
  void emit_watermark_status(bool) override {}
  const std::vector<std::string>& sent() const { return sent_; }
  // Called with the number of records sent so far, after each one.
  void OnRecord(std::function<void(size_t)> f) { on_record_ = std::move(f); }

 private:
  std::string open_;
  std::vector<std::string> sent_;
  std::function<void(size_t)> on_record_;
};

std::vector<KeySeq> Decode(const std::vector<std::string>& buffers, size_t from = 0) {
  std::vector<KeySeq> out;
  for (size_t i = from; i < buffers.size(); ++i) {
    DataInput in(buffers[i]);
    while (!in.at_end()) {
      KeySeq r;
      Serializer<KeySeq>::read(in, r);
      out.push_back(r);
    }
  }
  return out;
}

// The seqs of each key, in the order they were emitted.
std::map<int64_t, std::vector<int64_t>> ByKey(const std::vector<KeySeq>& records) {
  std::map<int64_t, std::vector<int64_t>> m;
  for (const KeySeq& r : records) m[r.key].push_back(r.seq);
  return m;
}

std::vector<int64_t> OneTo(int64_t n) {
  std::vector<int64_t> v;
  for (int64_t i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

// A job of the example's sequence source alone (node 0), emitting over a hash edge.
struct SourceJob {
  explicit SourceJob(int64_t keys, int64_t per_key) {
    env.add_source(SequenceCountSource(keys, per_key, 0))
        .key_by([](const KeySeq& r) { return r.key; })
        .process(CountSequence());
  }
  // Runs subtask `subtask` of `parallelism` to its end from `restored`; if `checkpoint_after`
  // is given, a checkpoint is taken at the next collect() after that many records and its
  // snapshot stored in `*snapshot`, and `*before` is the number of records emitted before it.
  std::vector<std::string> Run(int subtask, int parallelism,
                               const std::vector<internal::OperatorSnapshot>* restored,
                               size_t checkpoint_after = 0,
                               std::vector<internal::OperatorSnapshot>* snapshot = nullptr,
                               size_t* before = nullptr) {
    KeepingWriter w;
    SinkRuntime rt(true, subtask, parallelism);
    auto task = env.build_chain({0}, {{0, 1, 0, internal::Partitioner::kHash, &w}}, rt);
    if (snapshot) {
      w.OnRecord([&](size_t n) {
        if (n != checkpoint_after) return;
        rt.PostMail([&] {
          *snapshot = task->snapshot_state(1);
          *before = w.sent().size();
        });
      });
    }
    task->initialize_state(restored);
    task->open();
    task->run_source();
    task->end_input();
    task->close();
    return w.sent();
  }
  StreamExecutionEnvironment env;
};

TEST(SequenceCountTest, SourceEmitsEverySeqOfItsKeysRoundRobin) {
  SourceJob job(5, 3);
  // Subtask 1 of 2 owns keys 1 and 3.
  std::vector<KeySeq> r = Decode(job.Run(1, 2, nullptr));
  std::vector<std::pair<int64_t, int64_t>> got;
  for (const KeySeq& k : r) got.push_back({k.key, k.seq});
  EXPECT_THAT(got,
              ElementsAre(std::pair<int64_t, int64_t>{1, 1}, std::pair<int64_t, int64_t>{3, 1},
                          std::pair<int64_t, int64_t>{1, 2}, std::pair<int64_t, int64_t>{3, 2},
                          std::pair<int64_t, int64_t>{1, 3}, std::pair<int64_t, int64_t>{3, 3}));
}

TEST(SequenceCountTest, SourceRestoresToTheRecordItWasCollectingAtTheCheckpoint) {
  SourceJob job(3, 5);
  for (size_t after : {size_t{1}, size_t{7}, size_t{14}}) {
    std::vector<internal::OperatorSnapshot> snap;
    size_t before = 0;
    std::vector<std::string> first = job.Run(0, 1, nullptr, after, &snap, &before);
    ASSERT_EQ(first.size(), 15u);
    ASSERT_EQ(before, after);
    // What reached the checkpoint, then everything the restored source emits: each seq once.
    std::vector<KeySeq> records = Decode(first);
    records.resize(before);
    for (const KeySeq& r : Decode(job.Run(0, 1, &snap))) records.push_back(r);
    auto by_key = ByKey(records);
    ASSERT_EQ(by_key.size(), 3u) << "checkpoint after " << after;
    for (const auto& [key, seqs] : by_key) {
      EXPECT_EQ(seqs, OneTo(5)) << "key " << key << ", checkpoint after " << after;
    }
  }
}

TEST(SequenceCountTest, SourceRestoresAtAnotherParallelism) {
  // Two subtasks checkpoint; their key positions are spread over three subtasks, as the
  // runtime does (all elements in old-subtask order, split into contiguous parts).
  SourceJob job(7, 4);
  std::vector<KeySeq> records;
  std::vector<std::string> elements;
  for (int s = 0; s < 2; ++s) {
    std::vector<internal::OperatorSnapshot> snap;
    size_t before = 0;
    std::vector<KeySeq> r = Decode(job.Run(s, 2, nullptr, 5, &snap, &before));
    r.resize(before);
    records.insert(records.end(), r.begin(), r.end());
    ASSERT_EQ(snap.size(), 1u);
    for (const auto& [name, list] : snap[0].lists) {
      elements.insert(elements.end(), list.begin(), list.end());
    }
  }
  for (int s = 0; s < 3; ++s) {
    internal::OperatorSnapshot mine;
    mine.node_id = 0;
    auto n = static_cast<ptrdiff_t>(elements.size());
    mine.lists["key-progress"].assign(elements.begin() + n * s / 3,
                                      elements.begin() + n * (s + 1) / 3);
    std::vector<internal::OperatorSnapshot> restored{mine};
    for (const KeySeq& r : Decode(job.Run(s, 3, &restored))) records.push_back(r);
  }
  auto by_key = ByKey(records);
  ASSERT_EQ(by_key.size(), 7u);
  for (const auto& [key, seqs] : by_key) EXPECT_EQ(seqs, OneTo(4)) << "key " << key;
}

TEST(SequenceCountTest, CountSequenceCountsRecordsAndViolationsPerKey) {
  TempDir dir;
  StreamExecutionEnvironment env;
  env.from_elements(KeySeq{0, 0})
      .key_by([](const KeySeq& r) { return r.key; })
      .process(CountSequence())
      .sink_to(FileSink(dir.path()));
  SinkRuntime rt(false);
  auto task = env.build_chain({1, 2}, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  // Key 7: a repeat of 2 and a gap before 5; key 8 in order.
  task->process_buffer(0, Buffer<KeySeq>({{7, 1}, {8, 1}, {7, 2}, {7, 2}, {8, 2}, {7, 5}}));
  task->end_input();
  task->close();
  std::vector<std::string> lines = CommittedLines(dir.path());
  std::sort(lines.begin(), lines.end());
  EXPECT_THAT(lines, ElementsAre("7,4,2", "8,2,0"));
}

TEST(SequenceCountTest, ThePipelineIsExactlyOnceAcrossAFailureAndRestore) {
  // The example's graph, run as two chains joined by a (test) network edge: the source, and the
  // keyed count with the exactly-once sink. Checkpoint 1 is taken at the source in the middle of
  // the input and at the consumer after the records sent before it (barrier alignment); the
  // consumer also processes records after the checkpoint before both fail. The restored job
  // must still count every key's seqs exactly once.
  constexpr int64_t kKeys = 6, kPerKey = 20;
  TempDir dir;
  StreamExecutionEnvironment env;
  env.add_source(SequenceCountSource(kKeys, kPerKey, 0))
      .key_by([](const KeySeq& r) { return r.key; })
      .process(CountSequence())
      .sink_to(FileSink(dir.path()));

  std::vector<internal::OperatorSnapshot> source_chk1, consumer_chk1;
  {
    KeepingWriter w;
    SinkRuntime src_rt(true);
    auto source = env.build_chain({0}, {{0, 1, 0, internal::Partitioner::kHash, &w}}, src_rt);
    size_t barrier = 0;
    w.OnRecord([&](size_t n) {
      if (n != 50) return;
      src_rt.PostMail([&] {
        source_chk1 = source->snapshot_state(1);
        barrier = w.sent().size();
      });
    });
    source->initialize_state(nullptr);
    source->open();
    source->run_source();
    ASSERT_EQ(barrier, 50u);

    SinkRuntime rt(true);
    auto consumer = env.build_chain({1, 2}, {}, rt);
    consumer->initialize_state(nullptr);
    consumer->open();
    for (size_t i = 0; i < barrier; ++i) consumer->process_buffer(0, w.sent()[i]);
    consumer_chk1 = consumer->snapshot_state(1);
    for (size_t i = barrier; i < barrier + 30; ++i) consumer->process_buffer(0, w.sent()[i]);
    // Both fail here; checkpoint 1 completes, its notification is lost.
  }

  KeepingWriter w;
  SinkRuntime src_rt(true);
  auto source = env.build_chain({0}, {{0, 1, 0, internal::Partitioner::kHash, &w}}, src_rt);
  source->initialize_state(&source_chk1);
  source->open();
  source->run_source();
  source->end_input();
  EXPECT_EQ(w.sent().size(), static_cast<size_t>(kKeys * kPerKey - 50));

  SinkRuntime rt(true);
  auto consumer = env.build_chain({1, 2}, {}, rt);
  consumer->initialize_state(&consumer_chk1);
  consumer->open();
  for (const std::string& b : w.sent()) consumer->process_buffer(0, b);
  consumer->end_input();
  EXPECT_THAT(CommittedLines(dir.path()), IsEmpty());  // until the final checkpoint completes
  source->snapshot_state(2);
  consumer->snapshot_state(2);
  source->notify_checkpoint_complete(2);
  consumer->notify_checkpoint_complete(2);
  source->close();
  consumer->close();

  std::vector<std::string> lines = CommittedLines(dir.path());
  std::sort(lines.begin(), lines.end());
  std::vector<std::string> expected;
  for (int64_t k = 0; k < kKeys; ++k) expected.push_back(std::to_string(k) + ",20,0");
  EXPECT_EQ(lines, expected);
  for (const std::string& name : ListDir(dir.path())) EXPECT_EQ(name[0], 'p') << name;
}

}  // namespace
}  // namespace sluice
