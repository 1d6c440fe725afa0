// Benchmark job: a keyed count and sum with real state, for the checkpoint and recovery figures.
//
//   paced source (p) -> key_by -> count and sum per key in ValueStates (p) -> progress sink (p)
//
// or, with --stateless, the shape of the stateless Nexmark queries: no keyed state and no
// shuffle, every operator chained into one task per subtask (the source's position is the only
// state):
//
//   paced source -> map (a copy of the record) -> progress sink   (p, chained)
//
//   --keys K          distinct keys (default 100000); number n has key n % K
//   --stateless       the chained pipeline without keyed state above (default false)
//   --rate R          records per second over all source subtasks, each record due at a fixed
//                       time from the source's start (0: as fast as possible; default 0)
//   --parallelism P   of every operator (default 2)
//   --progress-dir D  where each sink subtask keeps its progress file (required)
//
// Source subtask s of P emits numbers n = i * P + s for i = 0, 1, ...; with --rate, number i is due
// at start + i * P / R, the start being the subtask's first start, kept in its operator state with
// i. After a restore it replays from the checkpointed i as fast as it can until it is on time
// again. The job never ends: the benchmark cancels it.
//
// Progress file <D>/sink-<subtask>: a ProgressRecord (progress_file.h), written at every record
// through a shared mapping so that the benchmark reads it while the job runs. The benchmark
// divides records by time (throughput), and compares the newest due time seen from each source
// subtask with the clock (how far the output is behind where it would be without failures).
#include <fcntl.h>
#include <sluice/sluice.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "progress_file.h"

namespace {

int64_t WallMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Event {
  int64_t key = 0;
  int64_t value = 0;
  int64_t due_us = 0;  // wall-clock microseconds at which the source should have emitted it; 0
                       // when unpaced
  SLUICE_FIELDS(key, value, due_us)
};

// The source's operator state: one element per subtask.
struct SourcePosition {
  int64_t subtask = 0;
  int64_t next = 0;      // the index i of the next record to emit
  int64_t start_us = 0;  // wall-clock start of the schedule
  SLUICE_FIELDS(subtask, next, start_us)
};

class PacedSource final : public sluice::SourceFunction<Event> {
 public:
  PacedSource(int64_t keys, double rate) : keys_(keys), rate_(rate) {}

  void open(sluice::RuntimeContext& ctx) override {
    state_ = &ctx.get_operator_list_state(sluice::ListStateDescriptor<SourcePosition>("position"));
    subtask_ = ctx.index_of_this_subtask();
    parallelism_ = ctx.number_of_parallel_subtasks();
    pos_ = SourcePosition{subtask_, 0, WallMicros()};
    if (ctx.is_restored()) {
      std::vector<SourcePosition> restored = state_->get();
      if (restored.size() != 1 || restored[0].subtask != subtask_) {
        throw std::runtime_error("this job restores only at the parallelism it was taken with");
      }
      pos_ = restored[0];
    }
  }

  void run(SourceContext& ctx) override {
    constexpr int64_t kBatch = 4096;  // records between two looks at the clock and the flag
    us_per_record_ = rate_ > 0 ? 1e6 * static_cast<double>(parallelism_) / rate_ : 0;
    while (is_running()) {
      int64_t end = pos_.next + kBatch;
      if (rate_ > 0) {
        end = std::min(end, DueBy(WallMicros()));
        if (end <= pos_.next) {
          ctx.flush();  // what was collected goes out before the pause
          std::this_thread::sleep_for(std::chrono::microseconds(500));
          continue;
        }
      }
      for (; pos_.next < end; ++pos_.next) {
        int64_t n = pos_.next * parallelism_ + subtask_;
        int64_t due_us = rate_ > 0 ? DueTime(pos_.next) : 0;
        ctx.collect(Event{n % keys_, n, due_us});  // may checkpoint first, storing pos_.next
      }
    }
  }

  void snapshot_state(int64_t) override { state_->update({pos_}); }

 private:
  // Wall-clock us at which record i is due.
  int64_t DueTime(int64_t i) const {
    return pos_.start_us + static_cast<int64_t>(static_cast<double>(i) * us_per_record_);
  }
  // The number of records due by wall-clock time `now_us` (the index after the last one due).
  int64_t DueBy(int64_t now_us) const {
    return static_cast<int64_t>(static_cast<double>(now_us - pos_.start_us) / us_per_record_) + 1;
  }

  int64_t keys_;
  double rate_;
  int64_t subtask_ = 0;
  int64_t parallelism_ = 1;
  double us_per_record_ = 0;
  SourcePosition pos_;
  sluice::OperatorListState<SourcePosition>* state_ = nullptr;
};

// Per key: how many records and the sum of their values, in two ValueStates.
class CountAndSum final : public sluice::KeyedProcessFunction<int64_t, Event, Event> {
 public:
  void open(sluice::RuntimeContext& ctx) override {
    count_ = &ctx.get_state(sluice::ValueStateDescriptor<int64_t>("count"));
    sum_ = &ctx.get_state(sluice::ValueStateDescriptor<int64_t>("sum"));
  }
  void process_element(const Event& e, Context&, sluice::Collector<Event>& out) override {
    count_->update(count_->value() + 1);
    sum_->update(sum_->value() + e.value);
    out.collect(e);
  }

 private:
  sluice::ValueState<int64_t>* count_ = nullptr;
  sluice::ValueState<int64_t>* sum_ = nullptr;
};

// Publishes the subtask's progress in a shared file mapping (see progress_file.h).
class ProgressSink final : public sluice::SinkFunction<Event> {
 public:
  ProgressSink(std::string dir, int sources) : dir_(std::move(dir)), sources_(sources) {}
  ProgressSink(const ProgressSink& o) : dir_(o.dir_), sources_(o.sources_) {}
  ~ProgressSink() override { close(); }

  void open(sluice::RuntimeContext& ctx) override {
    std::string path = sluice::bench::ProgressFilePath(dir_, ctx.index_of_this_subtask());
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
    if (fd < 0 || ::ftruncate(fd, sizeof(sluice::bench::ProgressRecord)) != 0) {
      int err = errno;
      if (fd >= 0) ::close(fd);
      throw std::runtime_error("cannot open progress file " + path + ": " + std::strerror(err));
    }
    void* p = ::mmap(nullptr, sizeof(sluice::bench::ProgressRecord), PROT_READ | PROT_WRITE,
                     MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) throw std::runtime_error("cannot map progress file " + path);
    rec_ = static_cast<sluice::bench::ProgressRecord*>(p);
    // This attempt starts from nothing: no record and no due time seen yet.
    Store(rec_->records, 0);
    for (int64_t& due : rec_->max_due_us) Store(due, 0);
    Store(rec_->opened_us, WallMicros());
    // Last, and with release: a reader that sees the new attempt sees the fields zeroed.
    std::atomic_ref<int64_t>(rec_->attempt)
        .store(ctx.task_info().attempt, std::memory_order_release);
  }

  void invoke(const Event& e) override {
    ++records_;
    Store(rec_->records, records_);
    int source = static_cast<int>(e.value % sources_);  // value n = i * P + source subtask
    if (e.due_us > max_due_[source]) {
      max_due_[source] = e.due_us;
      Store(rec_->max_due_us[source], e.due_us);
    }
  }

  void close() override {
    if (rec_) ::munmap(rec_, sizeof(sluice::bench::ProgressRecord));
    rec_ = nullptr;
  }

 private:
  static void Store(int64_t& field, int64_t v) {
    std::atomic_ref<int64_t>(field).store(v, std::memory_order_relaxed);
  }

  std::string dir_;
  int sources_;
  sluice::bench::ProgressRecord* rec_ = nullptr;
  int64_t records_ = 0;
  int64_t max_due_[sluice::bench::kMaxProgressSources] = {};
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("bench: keyed state");
  int64_t keys = args.get_int("keys", 100'000);
  double rate = args.get_double("rate", 0);
  int64_t parallelism = args.get_int("parallelism", 2);
  std::string dir = args.required("progress-dir");
  if (keys < 1) throw std::invalid_argument("--keys must be at least 1");
  if (rate < 0) throw std::invalid_argument("--rate must not be negative");
  if (parallelism < 1 || parallelism > sluice::bench::kMaxProgressSources) {
    throw std::invalid_argument("--parallelism must be 1 to " +
                                std::to_string(sluice::bench::kMaxProgressSources));
  }
  env.set_parallelism(static_cast<int>(parallelism));
  auto events = env.add_source(PacedSource(keys, rate), "Source: Paced Numbers");
  ProgressSink sink(dir, static_cast<int>(parallelism));
  if (args.get_bool("stateless", false)) {
    events.map([](const Event& e) { return e; })
        .name("Pass Through")
        .add_sink(sink, "Sink: Progress");
  } else {
    events.key_by([](const Event& e) { return e.key; })
        .process(CountAndSum(), "Count and Sum")
        .add_sink(sink, "Sink: Progress");
  }
}
