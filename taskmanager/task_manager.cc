#include "taskmanager/task_manager.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/grpc_listener.h"
#include "common/grpc_status.h"
#include "common/ids.h"
#include "common/internal_tls.h"
#include "common/job_library.h"
#include "common/job_states.h"
#include "common/log_files.h"
#include "common/metrics/metric_dump.h"
#include "common/metrics/process_metrics.h"
#include "common/metrics/reporters.h"
#include "common/net.h"
#include "common/periodic_thread.h"
#include "proto/jobmanager.grpc.pb.h"
#include "proto/taskmanager.grpc.pb.h"
#include "spdlog/spdlog.h"
#include "taskmanager/network.h"
#include "taskmanager/state/state_backend.h"
#include "taskmanager/task.h"

namespace sluice {

using namespace std::chrono_literals;

class TaskManagerImpl final : public proto::TaskExecutorService::Service {
 public:
  explicit TaskManagerImpl(const Configuration& conf) : conf_(conf) {
    id_ = conf_.GetString("taskmanager.resource-id");
    if (id_.empty()) id_ = NewInstanceId("tm");
    slots_ = static_cast<int>(conf.GetInt("taskmanager.numberOfTaskSlots"));
    heartbeat_interval_ = std::chrono::milliseconds(conf.GetDurationMs("heartbeat.interval"));
    heartbeat_timeout_ = std::chrono::milliseconds(conf.GetDurationMs("heartbeat.timeout"));
    buffer_timeout_ = std::chrono::milliseconds(conf.GetDurationMs("execution.buffer-timeout"));
    buffer_size_ = static_cast<size_t>(conf.GetBytes("taskmanager.memory.segment-size"));
    credits_ = static_cast<size_t>(conf.GetInt("taskmanager.network.memory.buffers-per-channel"));
    rocksdb_memory_ =
        MakeRocksDbMemory(conf.GetBytes("taskmanager.memory.managed.size"),
                          conf.GetDouble("state.backend.rocksdb.memory.write-buffer-ratio"));
    {
      absl::MutexLock lock(&jm_mu_);
      jm_address_ = absl::StrCat(conf.GetString("jobmanager.rpc.address"), ":",
                                 conf.GetInt("jobmanager.rpc.port"));
    }
    std::string blob_dir = conf.GetString("blob.storage.directory");
    if (blob_dir.empty()) blob_dir = std::filesystem::temp_directory_path().string();
    lib_dir_ = absl::StrCat(blob_dir, "/sluice-", id_, "-libs");
    metric_registry_ = std::make_unique<metrics::MetricRegistry>(
        metrics::RegistryOptions{.enabled = conf.GetBool("metrics.enabled")});
    const std::string host = conf.GetString("taskmanager.host");
    metric_group_ = metric_registry_->CreateRootGroup(
        "taskmanager", {{"host", host}, {"tm_id", id_}}, {host, "taskmanager", id_});
    metrics::RegisterProcessMetrics(*metric_group_);
    std::shared_ptr<RocksDbMemory> memory = rocksdb_memory_;
    metric_group_->AddGauge("rocksdb.block-cache-usage", [memory] {
      return static_cast<double>(RocksDbStatsOf(*memory).block_cache_usage);
    });
    metric_group_->AddGauge("rocksdb.estimate-pending-compaction-bytes", [memory] {
      return static_cast<double>(RocksDbStatsOf(*memory).pending_compaction_bytes);
    });
    metric_group_->AddGauge("taskSlotsTotal",
                            [slots = slots_] { return static_cast<double>(slots); });
  }

  absl::Status Init() {
    if (slots_ < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "configuration key 'taskmanager.numberOfTaskSlots' must be at least 1, got ", slots_));
    }
    if (buffer_size_ < 64) {
      return absl::InvalidArgumentError(
          "configuration key 'taskmanager.memory.segment-size' must be at least 64 bytes");
    }
    if (credits_ < 1) {
      return absl::InvalidArgumentError(
          "configuration key 'taskmanager.network.memory.buffers-per-channel' must be at least 1");
    }
    std::error_code ec;
    std::filesystem::create_directories(lib_dir_, ec);
    if (ec) {
      return absl::InternalError(
          absl::StrCat("cannot create library cache '", lib_dir_, "': ", ec.message()));
    }
    auto reporters =
        metrics::StartReporters(conf_, *metric_registry_, conf_.GetString("taskmanager.bind-host"),
                                "taskmanager.bind-host");
    if (!reporters.ok()) return reporters.status();
    metric_reporters_ = std::move(*reporters);
    metric_registry_->StartViewUpdater();
    flush_clock_ = std::make_unique<FlushClock>(buffer_timeout_);
    data_server_ = NewDataExchangeServer(registry_);
    auto listener =
        GrpcListener::Bind(conf_.GetString("taskmanager.bind-host"),
                           static_cast<int>(conf_.GetInt("taskmanager.rpc.port")),
                           "taskmanager.bind-host", "taskmanager.rpc.port", "TaskManager");
    if (!listener.ok()) return listener.status();
    listener_ = std::move(*listener);
    port_ = listener_->port();
    grpc::ServerBuilder builder;
    listener_->AddTo(builder);
    // Accept the keepalive pings of other TaskManagers' data channels (every 10 s).
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    builder.SetMaxReceiveMessageSize(64 << 20);
    builder.RegisterService(this);
    builder.RegisterService(data_server_->service());
    server_ = builder.BuildAndStart();
    if (!server_) {
      return absl::InternalError(absl::StrCat("the TaskManager's gRPC server did not start on ",
                                              conf_.GetString("taskmanager.bind-host"), ":",
                                              port_));
    }
    listener_->Start();
    address_ = absl::StrCat(conf_.GetString("taskmanager.host"), ":", port_);
    {
      absl::MutexLock lock(&jm_mu_);
      jm_stub_ = proto::JobManagerService::NewStub(channels_.Get(jm_address_));
    }
    // Logged before registering: whoever sees this TaskManager registered finds the line.
    spdlog::info("TaskManager {} listening on {} with {} slots; JobManager at {}", id_, address_,
                 slots_, JmAddress());
    reporter_ = std::thread([this] { ReportLoop(); });
    // Registers at once, then heartbeats every interval.
    connector_ = std::make_unique<PeriodicThread>(
        "tm-connect", absl::FromChrono(heartbeat_interval_), [this] { ConnectOnce(); },
        PeriodicThread::FirstRun::kAtOnce);
    // Opens the watch at once, and again 200 ms after it ends.
    watcher_ = std::make_unique<PeriodicThread>(
        "tm-watch", absl::Milliseconds(200), [this] { WatchOnce(); },
        PeriodicThread::FirstRun::kAtOnce);
    return absl::OkStatus();
  }

  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_, watch_mu_) {
    {
      absl::MutexLock lock(&mu_);  // wakes the reporter's waits
      if (stopping_) return;
      stopping_ = true;
    }
    if (connector_) connector_->Stop();
    {
      absl::MutexLock lock(&watch_mu_);
      if (watch_ctx_) watch_ctx_->TryCancel();
    }
    if (watcher_) watcher_->Stop();
    CancelTasks("");
    ReapTasks(/*wait=*/true);
    if (data_server_) data_server_->Shutdown();
    if (listener_) listener_->Stop();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 500ms);
    if (reporter_.joinable()) reporter_.join();
    metric_reporters_.clear();
    flush_clock_.reset();
    std::error_code ec;
    std::filesystem::remove_all(lib_dir_, ec);
    spdlog::info("TaskManager {} stopped", id_);
  }

  // ---- TaskExecutorService ----

  // The calls that change tasks come only from the JobManager this TaskManager follows: one it
  // has left for a new leader (high availability) is refused, so an old leader that does not yet
  // know it lost leadership cannot deploy, cancel, trigger or commit here. (A call without the
  // JobManager's id, or from one not met before, is taken: the id is learnt on registering, and a
  // new leader may deploy before that answer is read.)
  grpc::Status Fence(const grpc::ServerContext* ctx) ABSL_LOCKS_EXCLUDED(jm_mu_) {
    auto it = ctx->client_metadata().find(kJobManagerIdMetadata);
    if (it == ctx->client_metadata().end()) return grpc::Status::OK;
    std::string from(it->second.data(), it->second.size());
    absl::MutexLock lock(&jm_mu_);
    if (!left_jm_ids_.count(from)) return grpc::Status::OK;
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("fenced: JobManager ", from,
                     " is no longer followed by this TaskManager (it follows ", jm_address_, ")"));
  }

  grpc::Status DeployTask(grpc::ServerContext* ctx, const proto::TaskDeploymentDescriptor* tdd,
                          proto::Empty*) override {
    if (grpc::Status fenced = Fence(ctx); !fenced.ok()) return fenced;
    if (!IsValidJobId(tdd->task().job_id())) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "malformed job id '" + tdd->task().job_id() + "'");
    }
    if (tdd->task().vertex_id() < 0 || tdd->task().vertex_id() >= tdd->graph().vertices_size()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "vertex id out of range");
    }
    std::vector<std::shared_ptr<ResultPartition>> outputs;
    for (const auto& o : tdd->outputs()) {
      if (o.edge_index() < 0 || o.edge_index() >= tdd->graph().edges_size() ||
          o.num_subpartitions() < 1) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "bad result partition descriptor");
      }
      auto p = std::make_shared<ResultPartition>(o.partition_id(), o.num_subpartitions(),
                                                 buffer_size_, credits_, flush_clock_.get());
      const auto& edge = tdd->graph().edges(o.edge_index());
      if (edge.partitioner() == proto::PARTITIONER_FORWARD ||
          edge.partitioner() == proto::PARTITIONER_RESCALE) {
        int producers = tdd->graph().vertices(tdd->task().vertex_id()).parallelism();
        SubtaskRange r =
            pointwise_consumers(tdd->task().subtask(), producers, o.num_subpartitions());
        p->set_consumed_range(r.begin, r.end);
      }
      registry_.Register(p);
      outputs.push_back(std::move(p));
    }
    absl::StatusOr<StateBackendOptions> backend = StateBackendOptionsFor(
        conf_, {tdd->config().begin(), tdd->config().end()}, rocksdb_memory_);
    if (!backend.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          std::string(backend.status().message()));
    }
    const std::string label = TaskLabel(*tdd);
    TaskServices services;
    services.state_backend = std::move(*backend);
    services.registry = &registry_;
    services.channels = &channels_;
    services.credits = credits_;
    services.buffer_timeout = buffer_timeout_;
    services.metrics = metric_group_.get();
    services.load_job = [this](const proto::TaskDeploymentDescriptor& d) { return LoadJob(d); };
    services.report = [this, label](proto::TaskStateUpdate u) { Report(std::move(u), label); };
    services.acknowledge = [this, label](const proto::AcknowledgeCheckpointRequest& r) {
      CallJobManager(absl::StrCat("acknowledge checkpoint ", r.checkpoint_id(), " of task ", label),
                     [&](grpc::ClientContext* ctx, proto::Empty* e) {
                       return JmStub()->AcknowledgeCheckpoint(ctx, r, e);
                     });
    };
    services.decline = [this, label](const proto::DeclineCheckpointRequest& r) {
      CallJobManager(absl::StrCat("decline checkpoint ", r.checkpoint_id(), " of task ", label),
                     [&](grpc::ClientContext* ctx, proto::Empty* e) {
                       return JmStub()->DeclineCheckpoint(ctx, r, e);
                     });
    };
    auto task = std::make_unique<Task>(*tdd, std::move(outputs), std::move(services));
    {
      // Reported, started and listed in one step: RUNNING is queued before anything the task
      // reports, and ReapTasks() never joins (nor frees) a task whose thread is being started.
      absl::MutexLock lock(&mu_);
      if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "TaskManager is stopping");
      proto::TaskStateUpdate running;
      *running.mutable_task() = tdd->task();
      running.set_state(proto::TASK_RUNNING);
      ReportLocked(std::move(running), label);
      task->Start();
      tasks_.push_back(std::move(task));
    }
    spdlog::info("task {} deployed (attempt {})", label, tdd->task().attempt());
    ReapTasks(/*wait=*/false);
    return grpc::Status::OK;
  }

  grpc::Status CancelJobTasks(grpc::ServerContext* ctx, const proto::CancelJobTasksRequest* req,
                              proto::Empty*) override {
    if (grpc::Status fenced = Fence(ctx); !fenced.ok()) return fenced;
    if (!IsValidJobId(req->job_id())) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "malformed job id '" + req->job_id() + "'");
    }
    CancelTasks(req->job_id());
    return grpc::Status::OK;
  }

  grpc::Status ReleaseJob(grpc::ServerContext* ctx, const proto::CancelJobTasksRequest* req,
                          proto::Empty*) override {
    if (grpc::Status fenced = Fence(ctx); !fenced.ok()) return fenced;
    if (!IsValidJobId(req->job_id())) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "malformed job id '" + req->job_id() + "'");
    }
    CancelTasks(req->job_id());
    registry_.ReleaseJob(req->job_id());
    {
      absl::MutexLock lock(&jobs_mu_);
      jobs_.erase(req->job_id());
    }
    ReapTasks(/*wait=*/false);
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const proto::JobManagerHeartbeat*,
                         proto::TaskManagerReport* resp) override {
    resp->set_tm_id(id_);
    resp->set_running_tasks(RunningTasks());
    return grpc::Status::OK;
  }

  grpc::Status TriggerCheckpoint(grpc::ServerContext* ctx,
                                 const proto::TriggerCheckpointRequest* req,
                                 proto::Empty*) override {
    if (grpc::Status fenced = Fence(ctx); !fenced.ok()) return fenced;
    ForEachTaskOf(req->job_id(), req->attempt(), [&](Task& t) {
      const auto& d = t.descriptor();
      if (d.graph().vertices(d.task().vertex_id()).is_source()) {
        t.TriggerCheckpoint(req->checkpoint_id(), req->timestamp_ms(), req->type());
      }
    });
    return grpc::Status::OK;
  }

  grpc::Status NotifyCheckpoint(grpc::ServerContext* ctx, const proto::NotifyCheckpointRequest* req,
                                proto::Empty*) override {
    if (grpc::Status fenced = Fence(ctx); !fenced.ok()) return fenced;
    ForEachTaskOf(req->job_id(), req->attempt(),
                  [&](Task& t) { t.NotifyCheckpoint(req->checkpoint_id(), req->aborted()); });
    return grpc::Status::OK;
  }

  grpc::Status QueryMetrics(grpc::ServerContext*, const proto::Empty*,
                            proto::MetricDump* dump) override {
    dump->set_tm_id(id_);
    metrics::AppendDump(metric_registry_->Snapshot(), *dump);
    return grpc::Status::OK;
  }

  grpc::Status ListLogs(grpc::ServerContext*, const proto::Empty*, proto::LogList* list) override {
    const DaemonLogFiles files;
    for (const LogFileInfo& f : files.List()) {
      proto::LogFileInfo* out = list->add_files();
      out->set_name(f.name);
      out->set_size(f.size);
      out->set_mtime_ms(f.mtime_ms);
    }
    list->set_log_file(files.CurrentLogName());
    list->set_stdout_file(files.CurrentOutName());
    return grpc::Status::OK;
  }

  grpc::Status ReadLog(grpc::ServerContext*, const proto::ReadLogRequest* req,
                       proto::LogFileTail* tail) override {
    const DaemonLogFiles files;
    const int64_t max_bytes =
        req->max_bytes() > 0 ? std::min(req->max_bytes(), kMaxLogBytesServed) : kMaxLogBytesServed;
    absl::StatusOr<LogFileTail> read;
    switch (req->which()) {
      case proto::ReadLogRequest::CURRENT_LOG:
        read = files.ReadCurrentLog(max_bytes);
        break;
      case proto::ReadLogRequest::CURRENT_STDOUT:
        read = files.ReadCurrentOut(max_bytes);
        break;
      default:
        read = files.Read(req->name(), max_bytes);
        break;
    }
    if (!read.ok()) return ToGrpcStatus(read.status());
    tail->set_name(read->name);
    tail->set_data(std::move(read->data));
    tail->set_size(read->size);
    tail->set_offset(read->offset);
    return grpc::Status::OK;
  }

  // Calls `fn` (under mu_) for every task of one attempt of a job in this TaskManager.
  template <class Fn>
  void ForEachTaskOf(const std::string& job_id, int attempt, Fn fn) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    for (auto& t : tasks_) {
      if (t->descriptor().task().job_id() == job_id && t->descriptor().task().attempt() == attempt)
        fn(*t);
    }
  }

  int RunningTasks() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (auto& t : tasks_) n += t->done() ? 0 : 1;
    return n;
  }

  const std::string& id() const { return id_; }
  std::string address() const { return address_; }

 private:
  // Cancels the tasks of `job_id`, or all tasks when it is empty.
  void CancelTasks(const std::string& job_id) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    for (auto& t : tasks_) {
      if (job_id.empty() || t->descriptor().task().job_id() == job_id) t->Cancel();
    }
  }

  // The JobManager has forgotten us (or we it): no release will come for the jobs we hold, so
  // cancel their tasks and free their partitions and loaded environments now.
  void DropAllJobs() ABSL_LOCKS_EXCLUDED(mu_, jobs_mu_) {
    CancelTasks("");
    std::vector<std::string> ids;
    {
      absl::MutexLock lock(&jobs_mu_);
      for (const auto& [id, slot] : jobs_) ids.push_back(id);
      jobs_.clear();
    }
    {
      absl::MutexLock lock(&mu_);
      for (const auto& t : tasks_) ids.push_back(t->descriptor().task().job_id());
    }
    for (const auto& id : ids) registry_.ReleaseJob(id);
  }

  // Joins and forgets finished tasks (all tasks when `wait`).
  void ReapTasks(bool wait) ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<std::unique_ptr<Task>> finished;
    {
      absl::MutexLock lock(&mu_);
      for (auto it = tasks_.begin(); it != tasks_.end();) {
        if (wait || (*it)->done()) {
          finished.push_back(std::move(*it));
          it = tasks_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& t : finished) t->Join();
  }

  absl::StatusOr<LoadedJob> LoadJob(const proto::TaskDeploymentDescriptor& tdd)
      ABSL_LOCKS_EXCLUDED(jobs_mu_, lib_mu_) {
    std::shared_ptr<JobSlot> slot;
    {
      absl::MutexLock lock(&jobs_mu_);
      auto& s = jobs_[tdd.task().job_id()];
      if (!s) s = std::make_shared<JobSlot>();
      slot = s;
    }
    absl::MutexLock lock(&slot->mu);  // one load per job; the others wait for it
    if (slot->env) return LoadedJob{slot->env};
    auto lib = FetchLibrary(tdd.library_sha256());
    if (!lib.ok()) return lib.status();
    std::vector<std::string> args(tdd.args().begin(), tdd.args().end());
    auto env = (*lib)->BuildEnvironment(args);
    if (!env.ok()) return env.status();
    slot->env = std::shared_ptr<const StreamExecutionEnvironment>(std::move(*env));
    return LoadedJob{slot->env};
  }

  absl::StatusOr<std::shared_ptr<JobLibrary>> FetchLibrary(const std::string& sha)
      ABSL_LOCKS_EXCLUDED(lib_mu_) {
    absl::MutexLock lock(&lib_mu_);  // also one download per library
    auto it = libraries_.find(sha);
    if (it != libraries_.end()) return it->second;
    std::string path = absl::StrCat(lib_dir_, "/", sha, ".so");
    if (!std::filesystem::exists(path)) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 60s);
      proto::UploadLibraryResponse req;
      req.set_sha256(sha);
      auto reader = JmStub()->DownloadLibrary(&ctx, req);
      std::string bytes;
      proto::LibraryChunk chunk;
      while (reader->Read(&chunk)) bytes += chunk.data();
      grpc::Status st = reader->Finish();
      if (!st.ok()) {
        return absl::UnavailableError(absl::StrCat("cannot download job library ", sha,
                                                   " from the JobManager: ", st.error_message()));
      }
      if (Sha256Hex(bytes) != sha) {
        return absl::DataLossError(
            absl::StrCat("downloaded job library does not match its hash ", sha));
      }
      std::string tmp = path + ".tmp";
      {
        std::ofstream f(tmp, std::ios::binary);
        f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!f) return absl::InternalError(absl::StrCat("cannot write ", tmp));
      }
      std::filesystem::rename(tmp, path);
    }
    auto lib = JobLibrary::Load(path);
    if (!lib.ok()) return lib.status();
    libraries_[sha] = *lib;
    return *lib;
  }

  // One call to the JobManager, tried a few times (checkpoint messages: a lost one only costs
  // that checkpoint).
  template <class Call>
  void CallJobManager(const std::string& what, Call call) {
    grpc::Status st;
    for (int attempt = 0; attempt < 3; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 5s);
      proto::Empty e;
      st = call(&ctx, &e);
      if (st.ok() || st.error_code() == grpc::StatusCode::INVALID_ARGUMENT) break;
      std::this_thread::sleep_for(100ms * (attempt + 1));
    }
    if (!st.ok()) spdlog::warn("cannot {} at the JobManager: {}", what, st.error_message());
  }

  // `task` is the task's task_label(), for the log.
  void Report(proto::TaskStateUpdate u, std::string task) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ReportLocked(std::move(u), std::move(task));
  }

  // Queues a task state update for the reporter (whose wait the unlock wakes).
  void ReportLocked(proto::TaskStateUpdate u, std::string task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    u.set_tm_id(id_);
    reports_.push_back({std::move(u), std::move(task)});
  }

  bool StoppingOrReport() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !reports_.empty();
  }

  // Sends task state updates in order; retries a failed send a few times. Not a PeriodicThread:
  // it waits for work, not for a period.
  void ReportLoop() ABSL_LOCKS_EXCLUDED(mu_) {
    while (true) {
      PendingReport r;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(this, &TaskManagerImpl::StoppingOrReport));
        if (reports_.empty()) return;
        r = std::move(reports_.front());
        reports_.pop_front();
      }
      const proto::TaskStateUpdate& u = r.update;
      // Until delivered: a lost FINISHED or FAILED would leave the job running forever. The
      // wait grows to the heartbeat timeout, after which this TaskManager re-registers anyway.
      auto backoff = 100ms;
      for (int attempt = 1;; ++attempt) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + 5s);
        proto::Empty e;
        grpc::Status st = JmStub()->UpdateTaskState(&ctx, u, &e);
        if (st.ok()) break;
        if (attempt == 3) {
          spdlog::warn("cannot report task {} as {} to the JobManager: {}; retrying", r.task,
                       u.end_of_data() ? "END_OF_DATA" : TaskStateName(u.state()),
                       st.error_message());
        }
        if (st.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
            st.error_code() == grpc::StatusCode::INTERNAL) {
          spdlog::error("JobManager rejected the state report of task {}: {}", r.task,
                        st.error_message());
          break;
        }
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(backoff))) break;
        backoff = std::min<std::chrono::milliseconds>(backoff * 2, heartbeat_timeout_);
      }
    }
  }

  // One round of the connector: registers with the JobManager, or sends a heartbeat; registers
  // again at once when it is unknown to the JobManager, and cancels its tasks when the
  // JobManager stays silent too long (registering again a round later).
  void ConnectOnce() ABSL_LOCKS_EXCLUDED(mu_) {
    // The leader this round talks to, and whether it is new, read together: a round that already
    // talks to a new leader (and registers there) must not take the change again in the next
    // round, which would cancel the tasks that leader has just deployed.
    std::shared_ptr<proto::JobManagerService::Stub> stub;
    bool jm_changed;
    {
      absl::MutexLock lock(&jm_mu_);
      stub = jm_stub_;
      jm_changed = jm_changed_.exchange(false);
    }
    if (jm_changed && registered_) {
      // A new leader (high availability) knows none of our tasks: they belonged to the old one.
      spdlog::warn("JobManager leader is now {}; cancelling tasks and registering there",
                   JmAddress());
      DropAllJobs();
      registered_ = false;
    }
    bool register_now = !registered_;
    if (registered_) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + heartbeat_interval_ * 2);
      proto::TaskManagerHeartbeat hb;
      hb.set_tm_id(id_);
      proto::HeartbeatResponse resp;
      grpc::Status st = stub->Heartbeat(&ctx, hb, &resp);
      auto now = std::chrono::steady_clock::now();
      if (st.ok()) {
        last_ok_ = now;
        if (!resp.known()) {
          spdlog::warn(
              "JobManager does not know TaskManager {}; cancelling tasks and registering again",
              id_);
          DropAllJobs();
          registered_ = false;
          absl::MutexLock lock(&mu_);
          if (stopping_) return;
          register_now = true;
        }
      } else if (now - last_ok_ > heartbeat_timeout_) {
        spdlog::warn("JobManager {} silent for {} ms; cancelling tasks and registering again",
                     JmAddress(),
                     std::chrono::duration_cast<std::chrono::milliseconds>(now - last_ok_).count());
        DropAllJobs();
        registered_ = false;
      }
    }
    if (register_now) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + heartbeat_interval_ * 2);
      proto::RegisterTaskManagerRequest req;
      req.set_tm_id(id_);
      req.set_address(address_);
      req.set_num_slots(slots_);
      proto::RegisterTaskManagerResponse resp;
      grpc::Status st = stub->RegisterTaskManager(&ctx, req, &resp);
      if (st.ok()) {
        registered_ = true;
        warned_ = false;
        {
          absl::MutexLock lock(&jm_mu_);
          registered_jm_id_ = resp.jm_id();
        }
        last_ok_ = std::chrono::steady_clock::now();
        spdlog::info("TaskManager {} registered at JobManager {} ({})", id_, JmAddress(),
                     resp.jm_id());
      } else if (!warned_) {
        spdlog::warn("TaskManager {} cannot register at JobManager {}: {}; retrying", id_,
                     JmAddress(), st.error_message());
        warned_ = true;
      }
    }
    ReapTasks(/*wait=*/false);
  }

  // Holds the JobManager's WatchJobManager call open, so that the JobManager learns at once
  // when this process dies (its connection closes). Opened again whenever it ends.
  void WatchOnce() ABSL_LOCKS_EXCLUDED(watch_mu_, mu_) {
    auto ctx = std::make_shared<grpc::ClientContext>();
    {
      // Under watch_mu_, so that Shutdown() (stopping_, then a cancel under watch_mu_) either
      // finds this call to cancel or keeps it from starting.
      absl::MutexLock lock(&watch_mu_);
      {
        absl::MutexLock l2(&mu_);
        if (stopping_) return;
      }
      watch_ctx_ = ctx;
    }
    proto::TaskManagerHeartbeat req;
    req.set_tm_id(id_);
    auto reader = JmStub()->WatchJobManager(ctx.get(), req);
    proto::Empty e;
    while (reader->Read(&e)) {
    }
    reader->Finish();
    absl::MutexLock lock(&watch_mu_);
    watch_ctx_.reset();
  }

 public:
  // Points this TaskManager at another JobManager (a new leader): the connector registers there
  // at its next round, and the watch call moves there.
  void SetJobManagerAddress(const std::string& address) ABSL_LOCKS_EXCLUDED(jm_mu_, watch_mu_) {
    {
      absl::MutexLock lock(&jm_mu_);
      if (address == jm_address_) return;
      jm_address_ = address;
      jm_stub_ = proto::JobManagerService::NewStub(channels_.Get(address));
      if (!registered_jm_id_.empty()) left_jm_ids_.insert(registered_jm_id_);
      registered_jm_id_.clear();
      jm_changed_ = true;  // with the stub: the connector reads both at once
    }
    absl::MutexLock lock(&watch_mu_);
    if (watch_ctx_) watch_ctx_->TryCancel();
  }

 private:
  std::shared_ptr<proto::JobManagerService::Stub> JmStub() const ABSL_LOCKS_EXCLUDED(jm_mu_) {
    absl::MutexLock lock(&jm_mu_);
    return jm_stub_;
  }
  std::string JmAddress() const ABSL_LOCKS_EXCLUDED(jm_mu_) {
    absl::MutexLock lock(&jm_mu_);
    return jm_address_;
  }

  struct JobSlot {
    absl::Mutex mu;
    std::shared_ptr<const StreamExecutionEnvironment> env ABSL_GUARDED_BY(mu);
  };

  Configuration conf_;
  std::shared_ptr<RocksDbMemory> rocksdb_memory_;  // shared by the RocksDB backends of all slots
  // Metrics: the registry outlives every group (the tasks' too: they are reaped at Shutdown).
  std::unique_ptr<metrics::MetricRegistry> metric_registry_;
  std::unique_ptr<metrics::MetricGroup> metric_group_;
  std::vector<std::unique_ptr<metrics::MetricReporter>> metric_reporters_;
  std::string id_;
  int slots_;
  std::chrono::milliseconds heartbeat_interval_, heartbeat_timeout_, buffer_timeout_;
  size_t buffer_size_, credits_;
  // The JobManager (the leader's, in HA mode): changed by SetJobManagerAddress.
  mutable absl::Mutex jm_mu_;
  std::string jm_address_ ABSL_GUARDED_BY(jm_mu_);
  // The id of the JobManager it registered with last, and those of JobManagers it stopped
  // following (refused by Fence).
  std::string registered_jm_id_ ABSL_GUARDED_BY(jm_mu_);
  std::set<std::string> left_jm_ids_ ABSL_GUARDED_BY(jm_mu_);
  std::shared_ptr<proto::JobManagerService::Stub> jm_stub_ ABSL_GUARDED_BY(jm_mu_);
  std::atomic<bool> jm_changed_{false};
  std::string lib_dir_;
  std::string address_;
  int port_ = 0;

  PartitionRegistry registry_;
  ChannelCache channels_;
  std::unique_ptr<FlushClock> flush_clock_;
  std::unique_ptr<DataExchangeServer> data_server_;
  std::unique_ptr<GrpcListener> listener_;  // outlives server_, which tells it of calls
  std::unique_ptr<grpc::Server> server_;

  // Lock order: watch_mu_, then mu_, then a task's locks (Task::Cancel, TriggerCheckpoint and
  // NotifyCheckpoint run under mu_); a JobSlot's mu, then lib_mu_.
  absl::Mutex watch_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::shared_ptr<grpc::ClientContext> watch_ctx_ ABSL_GUARDED_BY(watch_mu_);
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::unique_ptr<Task>> tasks_ ABSL_GUARDED_BY(mu_);
  // A task state update to send, with the task's task_label() for the log.
  struct PendingReport {
    proto::TaskStateUpdate update;
    std::string task;
  };
  std::deque<PendingReport> reports_ ABSL_GUARDED_BY(mu_);
  // The connector's state, its thread only.
  bool registered_ = false;
  bool warned_ = false;
  std::chrono::steady_clock::time_point last_ok_ = std::chrono::steady_clock::now();
  std::thread reporter_;
  std::unique_ptr<PeriodicThread> connector_;
  std::unique_ptr<PeriodicThread> watcher_;

  absl::Mutex jobs_mu_;
  std::map<std::string, std::shared_ptr<JobSlot>> jobs_ ABSL_GUARDED_BY(jobs_mu_);
  absl::Mutex lib_mu_ ABSL_ACQUIRED_AFTER(JobSlot::mu);
  std::map<std::string, std::shared_ptr<JobLibrary>> libraries_ ABSL_GUARDED_BY(lib_mu_);
};

absl::StatusOr<std::unique_ptr<TaskManager>> TaskManager::Start(const Configuration& conf) {
  auto impl = std::make_unique<TaskManagerImpl>(conf);
  absl::Status s = impl->Init();
  if (!s.ok()) {
    impl->Shutdown();
    return s;
  }
  return std::unique_ptr<TaskManager>(new TaskManager(std::move(impl)));
}

TaskManager::TaskManager(std::unique_ptr<TaskManagerImpl> impl) : impl_(std::move(impl)) {}
TaskManager::~TaskManager() { Shutdown(); }
const std::string& TaskManager::id() const { return impl_->id(); }
std::string TaskManager::address() const { return impl_->address(); }
void TaskManager::Shutdown() { impl_->Shutdown(); }
void TaskManager::SetJobManagerAddress(const std::string& address) {
  impl_->SetJobManagerAddress(address);
}
int TaskManager::running_tasks() const { return impl_->RunningTasks(); }

}  // namespace sluice
