#include "taskmanager/task.h"

#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/checkpoint_storage.h"
#include "common/ids.h"
#include "common/job_graph.h"
#include "common/job_states.h"
#include "common/state_redistribution.h"
#include "sluice/task_label.h"
#include "spdlog/spdlog.h"

namespace sluice {

// Writes a task's state files and acknowledges them, one checkpoint after another, off the
// task's thread (the asynchronous part of a checkpoint).
class Task::SnapshotWriter {
 public:
  explicit SnapshotWriter(Task& task) : task_(task), thread_([this] { Loop(); }) {}
  ~SnapshotWriter() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    thread_.join();
  }
  // `timing`: what the task measured of the checkpoint before handing it over.
  void Submit(int64_t id, std::vector<internal::OperatorSnapshot> snaps,
              const CheckpointTiming& timing) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(Item{id, std::move(snaps), timing});
  }

 private:
  struct Item {
    int64_t id;
    std::vector<internal::OperatorSnapshot> snaps;
    CheckpointTiming timing;
  };
  bool StopOrWork() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty(); }
  void Loop() ABSL_LOCKS_EXCLUDED(mu_) {
    while (true) {
      Item item;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &SnapshotWriter::StopOrWork));
        if (queue_.empty()) return;  // stopping: what is not written is abandoned
        item = std::move(queue_.front());
        queue_.pop_front();
      }
      Write(item);
    }
  }
  void Write(Item& item) {
    const auto& tdd = task_.tdd_;
    auto t0 = std::chrono::steady_clock::now();
    proto::AcknowledgeCheckpointRequest ack;
    std::string deferred_error;
    for (internal::OperatorSnapshot& s : item.snaps) {
      if (!s.deferred) continue;
      try {
        s.deferred->complete(tdd.checkpoint_dir(), item.id, s);
      } catch (const std::exception& e) {
        deferred_error = e.what();
      }
      s.deferred.reset();  // lets the backend's files go
      if (!deferred_error.empty()) break;
    }
    if (!item.snaps.empty()) {
      // Named relative to the job's checkpoint directory: a later checkpoint may refer to the
      // file of a task that has finished since.
      std::string dir = absl::StrCat(tdd.checkpoint_dir(), "/chk-", item.id);
      std::string file =
          absl::StrCat("chk-", item.id, "/v", tdd.task().vertex_id(), "-s", tdd.task().subtask());
      proto::StateHandle* h = ack.add_handles();
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      absl::Status st =
          !deferred_error.empty() ? absl::InternalError(deferred_error)
          : ec                    ? absl::InternalError(
                                        absl::StrCat("cannot create checkpoint directory '", dir, "': ", ec.message()))
               : WriteStateFile(absl::StrCat(tdd.checkpoint_dir(), "/", file), item.snaps, h);
      if (!st.ok()) {
        proto::DeclineCheckpointRequest d;
        *d.mutable_task() = tdd.task();
        d.set_checkpoint_id(item.id);
        d.set_reason(std::string(st.message()));
        spdlog::warn("task {} declines checkpoint {}: {}", task_.label_, item.id,
                     std::string(st.message()));
        task_.services_.decline(d);
        return;
      }
      h->set_vertex_id(tdd.task().vertex_id());
      h->set_subtask(tdd.task().subtask());
      h->set_file(file);
      int64_t stored = h->size();
      int64_t full = h->size();
      for (const internal::OperatorSnapshot& s : item.snaps) {
        for (const internal::NativeSnapshot& n : s.native) {
          stored += static_cast<int64_t>(n.uploaded_bytes);
          for (const internal::StoreFile& f : n.files) {
            full += static_cast<int64_t>(f.size);
            if (f.shared) h->add_shared_files(f.path);
          }
        }
      }
      h->set_checkpointed_size(stored);
      h->set_full_size(full);
    }
    *ack.mutable_task() = tdd.task();
    ack.set_checkpoint_id(item.id);
    ack.set_sync_duration_us(item.timing.sync_us);
    ack.set_alignment_duration_us(item.timing.alignment_us);
    ack.set_start_delay_ms(item.timing.start_delay_ms);
    ack.set_async_duration_us(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    task_.services_.acknowledge(ack);
  }

  Task& task_;
  absl::Mutex mu_;
  std::deque<Item> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// Raises the task's mail flag when processing time reaches the callback time asked for, so that
// the task's thread (between records, or waiting for input) calls the chain back. Not a
// PeriodicThread: it sleeps until a wall-clock time that Schedule() moves, not for a period.
class Task::ProcessingTimer {
 public:
  explicit ProcessingTimer(Task& task) : task_(task), thread_([this] { Loop(); }) {}
  ~ProcessingTimer() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    cv_.SignalAll();
    thread_.join();
  }
  void Schedule(int64_t at_ms) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (at_ != kNoTimestamp && at_ <= at_ms) return;
      at_ = at_ms;
    }
    cv_.SignalAll();
  }

 private:
  void Loop() ABSL_LOCKS_EXCLUDED(mu_) {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        while (true) {
          if (stop_) return;
          if (at_ == kNoTimestamp) {
            cv_.Wait(&mu_);
            continue;
          }
          const absl::Time due = absl::FromUnixMillis(at_);
          if (absl::Now() < due) {
            cv_.WaitWithDeadline(&mu_, due);
            continue;
          }
          at_ = kNoTimestamp;
          break;
        }
      }
      task_.WakeUp();
    }
  }

  Task& task_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  int64_t at_ ABSL_GUARDED_BY(mu_) = kNoTimestamp;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

std::string TaskLabel(const proto::TaskDeploymentDescriptor& tdd) {
  const auto& t = tdd.task();
  if (t.vertex_id() < 0 || t.vertex_id() >= tdd.graph().vertices_size()) {
    return task_label(t.job_id(), absl::StrCat("vertex ", t.vertex_id()), t.subtask(), 0);
  }
  const auto& v = tdd.graph().vertices(t.vertex_id());
  return task_label(t.job_id(), v.name(), t.subtask(), v.parallelism());
}

Task::Task(proto::TaskDeploymentDescriptor tdd,
           std::vector<std::shared_ptr<ResultPartition>> outputs, TaskServices services)
    : tdd_(std::move(tdd)), outputs_(std::move(outputs)), services_(std::move(services)) {
  const auto& v = tdd_.graph().vertices(tdd_.task().vertex_id());
  info_.job_id = tdd_.task().job_id();
  info_.job_name = tdd_.job_name();
  info_.task_name = v.name();
  info_.vertex_id = tdd_.task().vertex_id();
  info_.subtask_index = tdd_.task().subtask();
  info_.parallelism = v.parallelism();
  info_.max_parallelism = tdd_.graph().max_parallelism();
  info_.attempt = tdd_.task().attempt();
  info_.checkpointing = !tdd_.checkpoint_dir().empty();
  info_.auto_watermark_interval_ms = tdd_.auto_watermark_interval_ms();
  label_ = task_label(info_);
  for (auto& p : outputs_) p->set_cancel_flag(&cancelled_);
  if (services_.metrics) {
    metrics_ = std::make_unique<TaskMetrics>(*services_.metrics, tdd_, outputs_);
    counters_ = metrics_->counters();
  }
}

Task::~Task() {
  Cancel();
  Join();
  timer_.reset();
}

void Task::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Task::Join() {
  if (thread_.joinable()) thread_.join();
}

void Task::Cancel() {
  if (cancelled_.exchange(true)) return;
  absl::MutexLock lock(&chain_mu_);
  if (chain_) chain_->cancel();
}

void Task::print_line(std::string_view line) {
  std::string s;
  s.reserve(line.size() + 1);
  s.append(line);
  s.push_back('\n');
  std::fwrite(s.data(), 1, s.size(), stdout);
}

void Task::Run() {
  // "t<vertex>.<subtask>" in top and perf, instead of the gRPC thread's inherited name.
  std::string thread_name = absl::StrCat("t", info_.vertex_id, ".", info_.subtask_index);
  pthread_setname_np(pthread_self(), thread_name.substr(0, 15).c_str());
  proto::TaskState state = proto::TASK_FINISHED;
  std::string failure;
  try {
    Invoke();
    if (cancelled()) state = proto::TASK_CANCELED;
  } catch (const TaskCancelled&) {
    state = proto::TASK_CANCELED;
  } catch (const std::exception& e) {
    if (cancelled()) {
      state = proto::TASK_CANCELED;
    } else {
      state = proto::TASK_FAILED;
      failure = e.what();
    }
  } catch (...) {
    state = cancelled() ? proto::TASK_CANCELED : proto::TASK_FAILED;
    if (state == proto::TASK_FAILED) failure = "unknown exception";
  }
  std::fflush(stdout);
  failure = ToValidUtf8(failure);  // user text; protobuf strings must be UTF-8
  if (state == proto::TASK_FAILED) {
    spdlog::warn("task {} failed: {}", label_, failure);
  } else {
    spdlog::info("task {} {}", label_, TaskStateName(state));
  }
  proto::TaskStateUpdate update;
  // The final figures go to the JobManager with the state; the metrics leave the reporters.
  if (metrics_) metrics_->Dump(*update.mutable_metrics());
  counters_ = nullptr;
  metrics_.reset();
  done_.store(true);
  *update.mutable_task() = tdd_.task();
  update.set_state(state);
  update.set_failure(failure);
  services_.report(std::move(update));
}

void Task::Invoke() {
  auto job = services_.load_job(tdd_);
  if (!job.ok()) throw std::runtime_error(std::string(job.status().message()));
  const StreamExecutionEnvironment& env = *job->env;
  const auto& vertex = tdd_.graph().vertices(tdd_.task().vertex_id());

  std::vector<internal::OutputBinding> bindings;
  for (size_t i = 0; i < outputs_.size(); ++i) {
    const auto& e = tdd_.graph().edges(tdd_.outputs(static_cast<int>(i)).edge_index());
    internal::OutputBinding b;
    b.source_node = e.source_node();
    b.target_node = e.target_node();
    b.target_input = e.target_input();
    b.partitioner = PartitionerFromProto(e.partitioner());
    b.writer = outputs_[i].get();
    bindings.push_back(b);
  }
  std::vector<int> chain_nodes(vertex.node_ids().begin(), vertex.node_ids().end());
  std::unique_ptr<internal::ChainTask> chain;
  try {
    chain = env.build_chain(chain_nodes, bindings, *this);
  } catch (const std::exception& e) {
    throw std::runtime_error(
        absl::StrCat("cannot build the operators of '", info_.task_name, "': ", e.what()));
  }
  {
    absl::MutexLock lock(&chain_mu_);
    chain_ = chain.get();
  }
  struct ClearChain {
    Task* t;
    ~ClearChain() {
      absl::MutexLock lock(&t->chain_mu_);
      t->chain_ = nullptr;
      t->running_chain_ = nullptr;
    }
  } clear{this};
  if (cancelled()) throw TaskCancelled();
  if (checkpointing()) writer_ = std::make_unique<SnapshotWriter>(*this);

  std::unique_ptr<InputGate> gate;
  if (!chain->is_source()) {
    std::vector<InputChannelSpec> specs;
    for (const auto& g : tdd_.inputs()) {
      for (const auto& c : g.channels()) {
        InputChannelSpec s;
        s.input = g.target_input();
        s.partition_id = c.partition_id();
        s.subpartition = c.subpartition();
        s.local = c.local();
        s.producer_address = c.producer_address();
        s.producer_tm_id = c.producer_tm_id();
        specs.push_back(std::move(s));
      }
    }
    auto g = InputGate::Create(specs, *services_.registry, *services_.channels, services_.credits,
                               &cancelled_);
    if (!g.ok()) {
      if (cancelled()) throw TaskCancelled();
      throw std::runtime_error(absl::StrCat("cannot connect the inputs of '", info_.task_name,
                                            "': ", g.status().message()));
    }
    gate = std::move(*g);
    if (counters_) {
      gate->set_counters(&counters_->idle_ns, &counters_->bytes_in);
      counters_->set_inputs(gate->queues());
    }
  }

  RestoreState(*chain);
  chain->open();
  running_chain_ = chain.get();
  try {
    if (chain->is_source()) {
      if (!drain_.load()) chain->run_source();
      if (cancelled()) throw TaskCancelled();
      chain->process_watermark(kMaxWatermark);  // a bounded input has ended: every timer fires
      EndInput(*chain);
    } else {
      ProcessInputs(*gate, *chain);
    }
    if (cancelled()) throw TaskCancelled();
    AwaitFinalCheckpoint();
  } catch (const TaskCancelled&) {
    // A completed stop-with-savepoint ends the task as FINISHED, its input not ended.
    if (!stopped_ || cancelled()) throw;
    spdlog::info("task {} stopped with savepoint {}", label_, stop_id_);
  }
  int64_t late = chain->num_late_records_dropped();
  if (counters_) counters_->late_records_dropped.store(late, std::memory_order_relaxed);
  if (late > 0) {
    spdlog::info("task {} dropped {} late records", label_, late);
  }
  chain->close();
  for (auto& p : outputs_) p->BroadcastEvent(internal::BufferKind::kEndOfPartition);
}

void Task::RestoreState(internal::ChainTask& chain) {
  if (tdd_.restore_checkpoint_id() <= 0) {
    chain.initialize_state(nullptr);
    return;
  }
  const int64_t id = tdd_.restore_checkpoint_id();
  // Per vertex of the checkpoint that held some of this chain's operators: what its subtasks
  // wrote, narrowed to this subtask and mapped to the operators that take it.
  std::vector<SnapshotGroup> groups;
  for (const proto::RestoreGroup& g : tdd_.restore_groups()) {
    if (g.parallelism() < 1) {
      throw std::runtime_error(absl::StrCat("checkpoint ", id, ": the restore of vertex ",
                                            g.vertex_id(), " has no parallelism"));
    }
    SnapshotGroup& group = groups.emplace_back();
    group.node_ids.insert(g.node_ids().begin(), g.node_ids().end());
    group.by_subtask.resize(static_cast<size_t>(g.parallelism()));
    for (const auto& h : g.handles()) {
      if (h.subtask() < 0 || h.subtask() >= g.parallelism()) {
        throw std::runtime_error(absl::StrCat("checkpoint ", id, " names subtask ", h.subtask(),
                                              " of ", g.parallelism(), " of vertex ",
                                              g.vertex_id()));
      }
      auto snaps = ReadStateFile(absl::StrCat(tdd_.restore_dir(), "/", h.file()), &h);
      if (!snaps.ok()) {
        throw std::runtime_error(
            absl::StrCat("cannot restore checkpoint ", id, ": ", snaps.status().message()));
      }
      auto& dst = group.by_subtask[static_cast<size_t>(h.subtask())];
      for (auto& snap : *snaps) dst.push_back(std::move(snap));
    }
  }
  std::vector<internal::OperatorSnapshot> mine = AssignSnapshots(
      std::move(groups), info_.subtask_index, info_.parallelism, info_.max_parallelism);
  chain.initialize_state(&mine);
  last_checkpoint_id_ = notified_id_ = id;
  spdlog::info("task {} restored from checkpoint {}", label_, id);
}

void Task::ProcessInputs(InputGate& gate, internal::ChainTask& chain) {
  data_ended_.assign(gate.num_channels(), 0);
  align_.seen.assign(gate.num_channels(), 0);
  channel_watermark_.assign(gate.num_channels(), kMinWatermark);
  channel_idle_.assign(gate.num_channels(), 0);
  gate_ = &gate;
  struct ClearGate {
    InputGate*& gate;
    ~ClearGate() { gate = nullptr; }
  } clear_gate{gate_};
  while (!gate.AllFinished()) {
    if (cancelled()) throw TaskCancelled();
    if (mail_.load(std::memory_order_relaxed)) process_mail();
    auto next = gate.Poll(services_.buffer_timeout);
    if (!next) {
      FlushIdleOutputs();
      continue;
    }
    const Buffer& b = next->buffer;
    switch (b.kind) {
      case internal::BufferKind::kData:
        chain.process_buffer(next->input, b.data);
        break;
      case internal::BufferKind::kBarrier:
        OnBarrier(gate, next->channel, b.value, b.value2,
                  b.data.empty() ? proto::CHECKPOINT_TYPE_CHECKPOINT
                                 : static_cast<proto::CheckpointType>(b.data[0]));
        break;
      case internal::BufferKind::kWatermark:
        OnWatermark(chain, next->channel, b.value);
        break;
      case internal::BufferKind::kWatermarkStatus:
        OnWatermarkStatus(chain, next->channel, b.value != 0);
        break;
      case internal::BufferKind::kEndOfData:
      case internal::BufferKind::kEndOfPartition:
        if (!data_ended_[next->channel]) {
          data_ended_[next->channel] = 1;
          // An ended channel holds nothing back (its producer sent kMaxWatermark before). After
          // a stop-with-savepoint barrier it ends nothing: no window may fire.
          channel_idle_[next->channel] = 0;
          if (stop_id_ == 0) OnWatermark(chain, next->channel, kMaxWatermark);
          // After a stop-with-savepoint barrier the producers end without ending the input.
          if (++data_ended_count_ == gate.num_channels() && stop_id_ == 0) EndInput(chain);
        }
        if (b.kind == internal::BufferKind::kEndOfPartition) {
          gate.MarkFinished(next->channel);
          MaybeCompleteAlignment(gate);
        }
        break;
      default:
        if (b.kind == kChannelError) throw std::runtime_error(b.data);
        break;
    }
  }
}

void Task::OnWatermark(internal::ChainTask& chain, int channel, int64_t watermark) {
  int64_t& w = channel_watermark_[static_cast<size_t>(channel)];
  if (watermark <= w) return;
  w = watermark;
  UpdateInputWatermark(chain);
}

void Task::OnWatermarkStatus(internal::ChainTask& chain, int channel, bool idle) {
  if (data_ended_[static_cast<size_t>(channel)]) return;
  channel_idle_[static_cast<size_t>(channel)] = idle ? 1 : 0;
  UpdateInputWatermark(chain);
}

void Task::UpdateInputWatermark(internal::ChainTask& chain) {
  int64_t low = kMaxWatermark;
  bool any_active = false;
  for (size_t c = 0; c < channel_watermark_.size(); ++c) {
    if (channel_idle_[c]) continue;
    any_active = true;
    low = std::min(low, channel_watermark_[c]);
  }
  if (!any_active) {
    if (!input_idle_) {
      // The last active channel went idle: what every channel has promised holds, so the
      // highest of their watermarks is passed on first (as Flink does).
      int64_t high = *std::max_element(channel_watermark_.begin(), channel_watermark_.end());
      if (high > input_watermark_) {
        input_watermark_ = high;
        chain.process_watermark(high);
      }
      input_idle_ = true;
      chain.process_watermark_status(true);
    }
    return;
  }
  if (input_idle_) {
    input_idle_ = false;
    chain.process_watermark_status(false);
  }
  if (low > input_watermark_) {
    input_watermark_ = low;
    chain.process_watermark(low);
  }
  if (counters_) {
    counters_->input_watermark.store(input_watermark_, std::memory_order_relaxed);
    counters_->late_records_dropped.store(chain.num_late_records_dropped(),
                                          std::memory_order_relaxed);
  }
}

internal::OperatorCounters* Task::operator_counters(int node_id) {
  return counters_ ? counters_->of(node_id) : nullptr;
}

internal::SingleWriterCounter* Task::edge_records_out(size_t output) {
  return counters_ && output < counters_->edges.size() ? &counters_->edges[output] : nullptr;
}

void Task::request_processing_time_callback(int64_t time_ms) {
  if (callback_at_ != kNoTimestamp && callback_at_ <= time_ms) return;
  callback_at_ = time_ms;
  if (!timer_) timer_ = std::make_unique<ProcessingTimer>(*this);
  timer_->Schedule(time_ms);
}

void Task::WakeUp() {
  absl::MutexLock lock(&mail_mu_);
  mail_.store(true);
}

void Task::OnBarrier(InputGate& gate, int channel, int64_t id, int64_t timestamp_ms,
                     proto::CheckpointType type) {
  if (id <= last_checkpoint_id_ || id <= given_up_id_) return;  // taken already, or aborted
  if (id > align_.id) {
    // A newer checkpoint overtakes one still aligning: the older one will not complete.
    if (align_.id != 0) gate.UnblockAll();
    align_.id = id;
    align_.timestamp_ms = timestamp_ms;
    align_.type = type;
    // The first barrier of checkpoint `id`: alignment (and so the task's part) starts now.
    align_.first_barrier = std::chrono::steady_clock::now();
    align_.start_delay_ms = std::max<int64_t>(0, NowMillis() - timestamp_ms);
    std::fill(align_.seen.begin(), align_.seen.end(), 0);
  } else if (id < align_.id) {
    return;
  }
  if (align_.seen[channel]) return;
  align_.seen[channel] = 1;
  if (tdd_.exactly_once()) gate.Block(channel);
  MaybeCompleteAlignment(gate);
}

void Task::MaybeCompleteAlignment(InputGate& gate) {
  if (align_.id == 0) return;
  size_t have = 0;
  for (size_t c = 0; c < gate.num_channels(); ++c) {
    have += (align_.seen[c] || gate.finished(static_cast<int>(c))) ? 1 : 0;
  }
  if (have < gate.num_channels()) return;
  int64_t id = align_.id, ts = align_.timestamp_ms;
  align_.id = 0;
  CheckpointTiming timing;
  timing.start_delay_ms = align_.start_delay_ms;
  // Only EXACTLY_ONCE blocks channels while the barriers come in; AT_LEAST_ONCE only counts them.
  if (tdd_.exactly_once()) {
    timing.alignment_us = std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - align_.first_barrier)
                              .count();
  }
  PerformCheckpoint(id, ts, timing, align_.type);
  gate.UnblockAll();
}

void Task::EndInput(internal::ChainTask& chain) {
  chain.end_input();
  for (auto& p : outputs_) p->BroadcastEvent(internal::BufferKind::kEndOfData);
  input_ended_ = true;
  if (checkpointing() && chain.is_source()) {
    proto::TaskStateUpdate update;
    *update.mutable_task() = tdd_.task();
    update.set_end_of_data(true);
    services_.report(std::move(update));
  }
}

void Task::AwaitFinalCheckpoint() {
  // Inputs that ended after a stop-with-savepoint barrier: its completion ends the task (mail
  // throws), its abort would leave the task with nothing to do but wait for cancellation.
  while (stop_id_ != 0) {
    if (cancelled()) throw TaskCancelled();
    WaitForMail();
    process_mail();
  }
  if (!checkpointing()) return;
  while (final_checkpoint_id_ == 0 || notified_id_ < final_checkpoint_id_) {
    if (cancelled()) throw TaskCancelled();
    WaitForMail();
    process_mail();
  }
}

void Task::WaitForMail() {
  // Mail is raised under mail_mu_, which wakes this wait; a cancel is seen within 50 ms.
  absl::MutexLock lock(&mail_mu_);
  auto woken = [this] { return mail_.load() || cancelled(); };
  mail_mu_.AwaitWithTimeout(absl::Condition(&woken), absl::Milliseconds(50));
}

void Task::TriggerCheckpoint(int64_t id, int64_t timestamp_ms, proto::CheckpointType type) {
  if (type == proto::CHECKPOINT_TYPE_DRAIN) {
    // The source function's cancel() makes its run() return: its input has ended.
    drain_.store(true);
    absl::MutexLock lock(&chain_mu_);
    if (chain_) chain_->cancel();
    return;
  }
  absl::MutexLock lock(&mail_mu_);
  if (id <= trigger_id_) return;
  trigger_id_ = id;
  trigger_ts_ = timestamp_ms;
  trigger_type_ = type;
  mail_.store(true);
}

void Task::NotifyCheckpoint(int64_t id, bool aborted) {
  absl::MutexLock lock(&mail_mu_);
  if (aborted) {
    aborted_id_ = std::max(aborted_id_, id);
  } else {
    completed_id_ = std::max(completed_id_, id);
  }
  mail_.store(true);
}

void Task::process_mail() {
  internal::ChainTask* chain = running_chain_;
  if (!chain) return;  // not running yet: the flag stays up for when it is
  ProcessMailOnce(*chain);
  // A source that took a stop-with-savepoint emits nothing more: it waits here until the
  // savepoint completes (the mail throws) or is aborted (it goes on).
  while (stop_id_ != 0 && chain->is_source()) {
    if (cancelled()) throw TaskCancelled();
    WaitForMail();
    ProcessMailOnce(*chain);
  }
}

void Task::ProcessMailOnce(internal::ChainTask& chain_ref) {
  int64_t trigger_id, trigger_ts, completed, aborted;
  proto::CheckpointType trigger_type;
  std::deque<OperatorMail> operator_mail;
  bool stop_aborted = false;
  internal::ChainTask* chain = &chain_ref;
  {
    absl::MutexLock lock(&mail_mu_);
    mail_.store(false);
    trigger_id = trigger_id_;
    trigger_ts = trigger_ts_;
    trigger_type = trigger_type_;
    completed = completed_id_;
    aborted = aborted_id_;
    // After a stop-with-savepoint barrier operators get no mail (async results would be
    // emitted after the savepoint); an abort of it lets the held mail run.
    stop_aborted = stop_id_ != 0 && stop_id_ <= aborted;
    if (stop_id_ == 0 || stop_aborted) operator_mail.swap(operator_mail_);
  }
  if (stop_aborted) {
    spdlog::info("task {}: stop-with-savepoint {} was aborted; going on", label_, stop_id_);
    stop_id_ = 0;
  }
  for (OperatorMail& m : operator_mail) m.run();
  if (callback_at_ != kNoTimestamp && stop_id_ == 0) {
    int64_t now = current_processing_time();
    if (now >= callback_at_) {
      callback_at_ = kNoTimestamp;  // operators ask again for the next time they need
      chain->on_processing_time(now);
    }
  }
  // A trigger aborted before the source took it is not taken (a stop would never end).
  if (chain->is_source() && trigger_id > last_checkpoint_id_ &&
      trigger_id > std::max(aborted, given_up_id_)) {
    CheckpointTiming timing;
    timing.start_delay_ms = std::max<int64_t>(0, NowMillis() - trigger_ts);
    PerformCheckpoint(trigger_id, trigger_ts, timing, trigger_type);
  }
  if (completed > notified_id_ && completed <= last_checkpoint_id_) {
    notified_id_ = completed;
    chain->notify_checkpoint_complete(completed);
    if (stop_id_ != 0 && completed == stop_id_) {
      stopped_ = true;
      throw TaskCancelled();  // unwinds the source's run or the input loop; Invoke ends the task
    }
  }
  if (aborted > given_up_id_) {
    // Stop aligning for an aborted checkpoint: its missing barriers may never come, and the
    // channels already blocked for it would hold back the job until the next checkpoint.
    given_up_id_ = aborted;
    if (align_.id != 0 && align_.id <= aborted) {
      align_.id = 0;
      if (gate_) gate_->UnblockAll();
    }
  }
}

void Task::post_mail(int node_id, std::function<void()> mail) {
  absl::MutexLock lock(&mail_mu_);
  operator_mail_.push_back(OperatorMail{node_id, std::move(mail)});
  mail_.store(true);
}

void Task::yield_to_mail(int node_id, int64_t deadline_ms) {
  std::vector<OperatorMail> mine;
  {
    absl::MutexLock lock(&mail_mu_);
    auto ready = [this, node_id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mail_mu_) {
      if (cancelled()) return true;
      for (const OperatorMail& m : operator_mail_) {
        if (m.node_id >= node_id) return true;
      }
      return false;
    };
    // Mail is posted under mail_mu_, which wakes this wait; a cancel is seen within 50 ms.
    int64_t wait_ms = 50;
    if (deadline_ms != kNoTimestamp) {
      wait_ms = std::clamp<int64_t>(deadline_ms - current_processing_time(), 0, wait_ms);
    }
    if (wait_ms > 0) {
      mail_mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(wait_ms));
    }
    // The operator's own mail and that of the operators after it; the others' stays queued.
    for (auto it = operator_mail_.begin(); it != operator_mail_.end();) {
      if (it->node_id >= node_id) {
        mine.push_back(std::move(*it));
        it = operator_mail_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (cancelled()) throw TaskCancelled();
  for (OperatorMail& m : mine) m.run();
}

void Task::PerformCheckpoint(int64_t id, int64_t timestamp_ms, CheckpointTiming timing,
                             proto::CheckpointType type) {
  auto t0 = std::chrono::steady_clock::now();
  snapshot_type_ = type;
  std::vector<internal::OperatorSnapshot> snaps = running_chain_->snapshot_state(id);
  snapshot_type_ = proto::CHECKPOINT_TYPE_CHECKPOINT;
  const std::string type_byte =
      type == proto::CHECKPOINT_TYPE_CHECKPOINT ? "" : std::string(1, static_cast<char>(type));
  for (auto& p : outputs_) {
    p->BroadcastEvent(internal::BufferKind::kBarrier, id, timestamp_ms, type_byte);
  }
  last_checkpoint_id_ = id;
  if (type == proto::CHECKPOINT_TYPE_STOP_SAVEPOINT) stop_id_ = id;
  if (input_ended_ && final_checkpoint_id_ == 0) final_checkpoint_id_ = id;
  timing.sync_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count();
  writer_->Submit(id, std::move(snaps), timing);
}

std::unique_ptr<internal::KeyedStateBackend> Task::create_keyed_state_backend(
    int node_id, const KeyGroupRange& range) {
  BackendSite site;
  site.job_id = info_.job_id;
  site.vertex_id = info_.vertex_id;
  site.subtask = info_.subtask_index;
  site.attempt = info_.attempt;
  site.node_id = node_id;
  if (tdd_.restore_checkpoint_id() > 0) site.restore_dir = tdd_.restore_dir();
  site.savepoint_snapshot = [this] { return snapshot_type_ != proto::CHECKPOINT_TYPE_CHECKPOINT; };
  return CreateKeyedStateBackend(services_.state_backend, site, range);
}

void Task::FlushIdleOutputs() {
  for (auto& p : outputs_) p->FlushAll();
}

}  // namespace sluice
