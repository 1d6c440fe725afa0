// Test job: the sequence-count pipeline (examples/sequence_count) with faults injected into it,
// for the chaos tests. Correct output, however the faults fall: every key once across the
// committed part files, with count --per-key and 0 violations.
//
//   --keys K --per-key N --rate R --output DIR   as sequence_count
//   --marker-dir DIR   where the faults' marker files go (required with a --fail-* flag)
//   --fail-map         a pass-through "Failing Map" after the source throws at a random record
//                      between 40% and 70% of its subtask's share; with checkpointing on, only
//                      once it has seen a completed checkpoint, so that the restart restores
//   --fail-snapshot    a pass-through "Failing Snapshot" throws from its snapshot_state hook on
//                      the second checkpoint it sees
//   --fail-restore     a pass-through "Failing Restore" throws from open() when it starts from a
//                      checkpoint (RuntimeContext::is_restored)
//   --slow-snapshot-ms MS  a pass-through "Slow Snapshot" sleeps MS in its snapshot_state hook
//                      on the first checkpoint it sees (to make that checkpoint time out)
//
// Each fault happens at most once per run, over all subtasks, processes and attempts: the
// function that is about to fail first creates `<marker-dir>/<fault>` with O_CREAT|O_EXCL, and
// only the one that created it throws. A test gives every run a fresh marker folder.
#include <fcntl.h>
#include <sluice/connectors/files.h>
#include <sluice/sluice.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>

#include "sequence_count.h"

namespace {

using sequence_count::KeySeq;

// True for the single caller that creates `<dir>/<fault>`; false for every later one.
bool ClaimFault(const std::string& dir, const std::string& fault) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::string path = dir + "/" + fault;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ::close(fd);
    return true;
  }
  if (errno == EEXIST) return false;
  throw std::runtime_error("cannot create the fault marker '" + path +
                           "': " + std::strerror(errno));
}

std::string Where(sluice::RuntimeContext& ctx) {
  return "subtask " + std::to_string(ctx.index_of_this_subtask() + 1) + "/" +
         std::to_string(ctx.number_of_parallel_subtasks()) + ", attempt " +
         std::to_string(ctx.task_info().attempt);
}

class FailingMap final : public sluice::ProcessFunction<KeySeq, KeySeq> {
 public:
  FailingMap(int64_t keys, int64_t per_key, std::string marker_dir)
      : keys_(keys), per_key_(per_key), marker_dir_(std::move(marker_dir)) {}

  void open(sluice::RuntimeContext& ctx) override {
    int p = ctx.number_of_parallel_subtasks();
    int i = ctx.index_of_this_subtask();
    int64_t owned_keys = i < keys_ ? (keys_ - i + p - 1) / p : 0;
    int64_t share = owned_keys * per_key_;
    std::mt19937_64 rng(std::random_device{}());
    std::uniform_real_distribution<double> fraction(0.4, 0.7);
    fail_at_ =
        std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(share) * fraction(rng)));
    need_checkpoint_ = ctx.task_info().checkpointing;
    where_ = Where(ctx);
    seen_ = 0;
    done_ = false;
  }

  void process_element(const KeySeq& v, Context&, sluice::Collector<KeySeq>& out) override {
    if (!done_ && ++seen_ >= fail_at_ && !need_checkpoint_) {
      done_ = true;
      if (ClaimFault(marker_dir_, "map")) {
        throw std::runtime_error("injected failure at record " + std::to_string(seen_) + " of " +
                                 where_);
      }
    }
    out.collect(v);
  }

  void notify_checkpoint_complete(int64_t) override { need_checkpoint_ = false; }

 private:
  int64_t keys_;
  int64_t per_key_;
  std::string marker_dir_;
  int64_t fail_at_ = 0;
  int64_t seen_ = 0;
  bool need_checkpoint_ = false;
  bool done_ = false;
  std::string where_;
};

class FailingSnapshot final : public sluice::ProcessFunction<KeySeq, KeySeq> {
 public:
  explicit FailingSnapshot(std::string marker_dir) : marker_dir_(std::move(marker_dir)) {}

  void open(sluice::RuntimeContext& ctx) override {
    where_ = Where(ctx);
    checkpoints_ = 0;
  }
  void process_element(const KeySeq& v, Context&, sluice::Collector<KeySeq>& out) override {
    out.collect(v);
  }
  void snapshot_state(int64_t checkpoint_id) override {
    if (++checkpoints_ == 2 && ClaimFault(marker_dir_, "snapshot")) {
      throw std::runtime_error("injected failure in the snapshot of checkpoint " +
                               std::to_string(checkpoint_id) + " in " + where_);
    }
  }

 private:
  std::string marker_dir_;
  int checkpoints_ = 0;
  std::string where_;
};

class FailingRestore final : public sluice::ProcessFunction<KeySeq, KeySeq> {
 public:
  explicit FailingRestore(std::string marker_dir) : marker_dir_(std::move(marker_dir)) {}

  void open(sluice::RuntimeContext& ctx) override {
    if (ctx.is_restored() && ClaimFault(marker_dir_, "restore")) {
      throw std::runtime_error("injected failure while restoring " + Where(ctx));
    }
  }
  void process_element(const KeySeq& v, Context&, sluice::Collector<KeySeq>& out) override {
    out.collect(v);
  }

 private:
  std::string marker_dir_;
};

class SlowSnapshot final : public sluice::ProcessFunction<KeySeq, KeySeq> {
 public:
  SlowSnapshot(int64_t ms, std::string marker_dir) : ms_(ms), marker_dir_(std::move(marker_dir)) {}

  void process_element(const KeySeq& v, Context&, sluice::Collector<KeySeq>& out) override {
    out.collect(v);
  }
  void snapshot_state(int64_t) override {
    if (!slowed_ && ClaimFault(marker_dir_, "slow-snapshot")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(ms_));
    }
    slowed_ = true;
  }

 private:
  int64_t ms_;
  std::string marker_dir_;
  bool slowed_ = false;
};

}  // namespace

SLUICE_JOB(env, args) {
  int64_t keys = args.get_int("keys", 100);
  int64_t per_key = args.get_int("per-key", 1000);
  double rate = args.get_double("rate", 0);
  bool fail_map = args.get_bool("fail-map", false);
  bool fail_snapshot = args.get_bool("fail-snapshot", false);
  bool fail_restore = args.get_bool("fail-restore", false);
  int64_t slow_snapshot_ms = args.get_int("slow-snapshot-ms", 0);
  std::string marker_dir = args.get("marker-dir", "");
  if (keys < 1) throw std::invalid_argument("--keys must be at least 1");
  if (per_key < 1) throw std::invalid_argument("--per-key must be at least 1");
  if (rate < 0) throw std::invalid_argument("--rate must not be negative");
  if ((fail_map || fail_snapshot || fail_restore || slow_snapshot_ms > 0) && marker_dir.empty()) {
    throw std::invalid_argument(
        "--fail-map, --fail-snapshot, --fail-restore and --slow-snapshot-ms need --marker-dir");
  }

  env.set_job_name("Chaos Count");
  auto stream =
      env.add_source(sequence_count::SequenceCountSource(keys, per_key, rate), "Key Sequences");
  if (fail_map) stream = stream.process(FailingMap(keys, per_key, marker_dir)).name("Failing Map");
  if (fail_snapshot) {
    stream = stream.process(FailingSnapshot(marker_dir)).name("Failing Snapshot");
  }
  if (fail_restore) stream = stream.process(FailingRestore(marker_dir)).name("Failing Restore");
  if (slow_snapshot_ms > 0) {
    stream = stream.process(SlowSnapshot(slow_snapshot_ms, marker_dir)).name("Slow Snapshot");
  }
  stream.key_by([](const KeySeq& r) { return r.key; })
      .process(sequence_count::CountSequence(), "Count Sequence")
      .sink_to(sluice::files::ExactlyOnceTextFileSink<std::string>(
          args.get("output", "/tmp/sequence_count")));
}
