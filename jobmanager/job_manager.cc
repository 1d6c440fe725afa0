#include "jobmanager/job_manager.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <optional>
#include <random>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/checkpoint_storage.h"
#include "common/ids.h"
#include "common/job_graph.h"
#include "common/job_states.h"
#include "common/net.h"
#include "jobmanager/rest_server.h"
#include "proto/jobmanager.grpc.pb.h"
#include "proto/taskmanager.grpc.pb.h"
#include "sluice/keys.h"
#include "spdlog/spdlog.h"

namespace sluice {

using namespace std::chrono_literals;

namespace {

bool IsSha256Hex(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

constexpr size_t kMaxLibraryBytes = 1ull << 30;
// Finished, failed and cancelled jobs kept for `sluice list -a` and the REST API.
constexpr size_t kRetainedTerminalJobs = 1000;

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;

// Decides, at each failure of a job, whether and after what delay it restarts
// (restart-strategy.*, with Flink's meanings and defaults).
class RestartStrategy {
 public:
  RestartStrategy() = default;
  RestartStrategy(const Configuration& conf, bool checkpointing) {
    std::string type = conf.GetChoice("restart-strategy.type");
    if (type.empty()) type = checkpointing ? "EXPONENTIAL_DELAY" : "NONE";
    if (type == "FIXED_DELAY") {
      kind_ = Kind::kFixedDelay;
      attempts_ = conf.GetInt("restart-strategy.fixed-delay.attempts");
      delay_ = Millis(conf.GetDurationMs("restart-strategy.fixed-delay.delay"));
    } else if (type == "EXPONENTIAL_DELAY") {
      kind_ = Kind::kExponentialDelay;
      delay_ = Millis(conf.GetDurationMs("restart-strategy.exponential-delay.initial-backoff"));
      max_delay_ = Millis(conf.GetDurationMs("restart-strategy.exponential-delay.max-backoff"));
      multiplier_ = conf.GetDouble("restart-strategy.exponential-delay.backoff-multiplier");
      jitter_ = conf.GetDouble("restart-strategy.exponential-delay.jitter-factor");
      reset_after_ = Millis(conf.GetDurationMs("restart-strategy.exponential-delay.reset-backoff-threshold"));
      current_ = delay_;
    } else if (type == "FAILURE_RATE") {
      kind_ = Kind::kFailureRate;
      attempts_ = conf.GetInt("restart-strategy.failure-rate.max-failures-per-interval");
      interval_ = Millis(conf.GetDurationMs("restart-strategy.failure-rate.failure-rate-interval"));
      delay_ = Millis(conf.GetDurationMs("restart-strategy.failure-rate.delay"));
    }
  }

  // The wait before restarting after a failure now, or nothing: the job fails for good.
  std::optional<Millis> OnFailure(Clock::time_point now) {
    switch (kind_) {
      case Kind::kNone:
        return std::nullopt;
      case Kind::kFixedDelay:
        if (++failures_ > attempts_) return std::nullopt;
        return delay_;
      case Kind::kExponentialDelay: {
        if (last_failure_ && now - *last_failure_ >= reset_after_) current_ = delay_;
        last_failure_ = now;
        Millis d = current_;
        current_ = std::min(max_delay_, Millis(static_cast<int64_t>(current_.count() * multiplier_)));
        if (jitter_ > 0 && d.count() > 0) {
          std::uniform_real_distribution<double> u(-jitter_, jitter_);
          d = Millis(std::max<int64_t>(0, static_cast<int64_t>(d.count() * (1 + u(rng_)))));
        }
        return d;
      }
      case Kind::kFailureRate:
        failure_times_.push_back(now);
        while (!failure_times_.empty() && now - failure_times_.front() > interval_) {
          failure_times_.pop_front();
        }
        if (static_cast<int64_t>(failure_times_.size()) > attempts_) return std::nullopt;
        return delay_;
    }
    return std::nullopt;
  }
  std::string Describe() const {
    switch (kind_) {
      case Kind::kNone: return "restart-strategy.type is none";
      case Kind::kFixedDelay: return absl::StrCat("fixed-delay allows ", attempts_, " restarts");
      case Kind::kExponentialDelay: return "exponential-delay";
      case Kind::kFailureRate:
        return absl::StrCat("failure-rate allows ", attempts_, " failures per ", interval_.count(), " ms");
    }
    return "";
  }

 private:
  enum class Kind { kNone, kFixedDelay, kExponentialDelay, kFailureRate };
  Kind kind_ = Kind::kNone;
  int64_t attempts_ = 0;
  int64_t failures_ = 0;
  Millis delay_{0}, max_delay_{0}, interval_{0}, reset_after_{0}, current_{0};
  double multiplier_ = 1, jitter_ = 0;
  std::optional<Clock::time_point> last_failure_;
  std::deque<Clock::time_point> failure_times_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace

class JobManagerImpl final : public proto::JobManagerService::Service {
 public:
  explicit JobManagerImpl(const Configuration& conf) : conf_(conf) {
    jm_id_ = NewInstanceId("jm");
    heartbeat_timeout_ = std::chrono::milliseconds(conf.GetDurationMs("heartbeat.timeout"));
    heartbeat_interval_ = std::chrono::milliseconds(conf.GetDurationMs("heartbeat.interval"));
    std::string dir = conf.GetString("blob.storage.directory");
    if (dir.empty()) dir = std::filesystem::temp_directory_path().string();
    blob_dir_ = absl::StrCat(dir, "/sluice-", jm_id_, "-blobs");
  }

  absl::Status Init() {
    std::error_code ec;
    std::filesystem::create_directories(blob_dir_, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create blob store '", blob_dir_, "': ", ec.message()));
    grpc::ServerBuilder builder;
    // gRPC sets SO_REUSEPORT by default: a second process would bind the same port and share
    // its connections. Refuse a taken port instead.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    auto bind_addresses =
        ResolveHost(conf_.GetString("jobmanager.bind-host"), "jobmanager.bind-host");
    if (!bind_addresses.ok()) return bind_addresses.status();
    std::string bind = absl::StrCat(conf_.GetString("jobmanager.bind-host"), ":",
                                    conf_.GetInt("jobmanager.rpc.port"));
    builder.AddListeningPort(bind, grpc::InsecureServerCredentials(), &port_);
    builder.SetMaxReceiveMessageSize(64 << 20);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    if (!server_ || port_ == 0) {
      return absl::UnavailableError(absl::StrCat("JobManager cannot listen on ", bind,
                                                 " (is the port in use?)"));
    }
    address_ = absl::StrCat(conf_.GetString("jobmanager.rpc.address"), ":", port_);
    int rest_port = static_cast<int>(conf_.GetInt("rest.port"));
    if (rest_port >= 0) {
      auto rest = RestServer::Start(*this, conf_.GetString("rest.bind-address"), rest_port);
      if (!rest.ok()) return rest.status();
      rest_ = std::move(*rest);
      spdlog::info("REST API and dashboard at http://{}:{}/", conf_.GetString("rest.bind-address"),
                   rest_->port());
    }
    monitor_ = std::thread([this] { MonitorLoop(); });
    coordinator_ = std::thread([this] { CoordinatorLoop(); });
    spdlog::info("JobManager {} listening on {}", jm_id_, bind);
    return absl::OkStatus();
  }

  void Shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (monitor_.joinable()) monitor_.join();
    if (coordinator_.joinable()) coordinator_.join();
    if (rest_) rest_->Stop();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + 500ms);
    std::error_code ec;
    std::filesystem::remove_all(blob_dir_, ec);
    spdlog::info("JobManager {} stopped", jm_id_);
  }

  int port() const { return port_; }
  int rest_port() const { return rest_ ? rest_->port() : -1; }
  std::string address() const { return address_; }

  // ---- TaskManagers ----

  grpc::Status RegisterTaskManager(grpc::ServerContext*, const proto::RegisterTaskManagerRequest* req,
                                   proto::RegisterTaskManagerResponse* resp) override {
    if (req->tm_id().empty() || req->address().empty() || req->num_slots() < 1) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "registration needs a TaskManager id, an address and at least one slot");
    }
    std::lock_guard<std::mutex> lock(mu_);
    auto& tm = tms_[req->tm_id()];
    if (!tm.stub) {
      spdlog::info("TaskManager {} registered from {} with {} slots", req->tm_id(), req->address(),
                   req->num_slots());
    }
    tm.id = req->tm_id();
    tm.address = req->address();
    tm.slots = req->num_slots();
    tm.used = 0;
    for (auto& [id, job] : jobs_) {
      if (job.slots_released) continue;
      for (const auto& s : job.slots) tm.used += s == tm.id ? 1 : 0;
    }
    tm.last_heartbeat = std::chrono::steady_clock::now();
    tm.stub = proto::TaskExecutorService::NewStub(
        grpc::CreateChannel(tm.address, grpc::InsecureChannelCredentials()));
    resp->set_jm_id(jm_id_);
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const proto::TaskManagerHeartbeat* req,
                         proto::HeartbeatResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tms_.find(req->tm_id());
    if (it == tms_.end()) {
      resp->set_known(false);
      return grpc::Status::OK;
    }
    it->second.last_heartbeat = std::chrono::steady_clock::now();
    resp->set_known(true);
    return grpc::Status::OK;
  }

  grpc::Status GetOverview(grpc::ServerContext*, const proto::Empty*,
                           proto::ClusterOverview* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto now = std::chrono::steady_clock::now();
    int total = 0, free = 0;
    for (auto& [id, tm] : tms_) {
      auto* info = resp->add_task_managers();
      info->set_tm_id(id);
      info->set_address(tm.address);
      info->set_num_slots(tm.slots);
      info->set_free_slots(tm.slots - tm.used);
      info->set_last_heartbeat_ms(
          std::chrono::duration_cast<std::chrono::milliseconds>(now - tm.last_heartbeat).count());
      total += tm.slots;
      free += tm.slots - tm.used;
    }
    resp->set_total_slots(total);
    resp->set_free_slots(free);
    return grpc::Status::OK;
  }

  // ---- Libraries ----

  grpc::Status UploadLibrary(grpc::ServerContext*, grpc::ServerReader<proto::LibraryChunk>* reader,
                             proto::UploadLibraryResponse* resp) override {
    std::string bytes;
    proto::LibraryChunk chunk;
    while (reader->Read(&chunk)) {
      bytes += chunk.data();
      if (bytes.size() > kMaxLibraryBytes) {
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "job library larger than 1 GiB");
      }
    }
    if (bytes.size() < 4 || bytes.compare(0, 4, "\x7f" "ELF") != 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the uploaded file is not a shared library (no ELF header)");
    }
    std::string sha = Sha256Hex(bytes);
    std::string path = absl::StrCat(blob_dir_, "/", sha, ".so");
    if (!std::filesystem::exists(path)) {
      std::string tmp = path + "." + NewInstanceId("tmp");
      std::ofstream f(tmp, std::ios::binary);
      f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      f.close();
      if (!f) return grpc::Status(grpc::StatusCode::INTERNAL, "cannot store the job library in " + blob_dir_);
      std::filesystem::rename(tmp, path);
    }
    resp->set_sha256(sha);
    return grpc::Status::OK;
  }

  grpc::Status DownloadLibrary(grpc::ServerContext*, const proto::UploadLibraryResponse* req,
                               grpc::ServerWriter<proto::LibraryChunk>* writer) override {
    const std::string& sha = req->sha256();
    if (!IsSha256Hex(sha)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "malformed library hash");
    }
    std::ifstream f(absl::StrCat(blob_dir_, "/", sha, ".so"), std::ios::binary);
    if (!f) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no job library " + sha);
    std::vector<char> buf(1 << 20);
    proto::LibraryChunk chunk;
    while (f) {
      f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      if (f.gcount() <= 0) break;
      chunk.set_data(buf.data(), static_cast<size_t>(f.gcount()));
      if (!writer->Write(chunk)) break;
    }
    return grpc::Status::OK;
  }

  // ---- Jobs ----

  grpc::Status SubmitJob(grpc::ServerContext*, const proto::SubmitJobRequest* req,
                         proto::SubmitJobResponse* resp) override {
    absl::Status valid = ValidateGraph(req->graph());
    if (!valid.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(valid.message()));
    if (!IsSha256Hex(req->library_sha256()) ||
        !std::filesystem::exists(absl::StrCat(blob_dir_, "/", req->library_sha256(), ".so"))) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "job library " + req->library_sha256() + " was not uploaded");
    }
    std::string job_id = NewJobId();
    Configuration job_conf = conf_;
    for (const auto& [k, v] : req->config()) {
      absl::Status st = job_conf.Set(k, v);
      if (!st.ok()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(st.message()));
    }
    std::optional<proto::CheckpointMetadata> restore;
    std::string restore_dir;
    if (!req->restore_path().empty()) {
      auto meta = LoadCheckpointForRestore(req->restore_path(), req->graph(), &restore_dir);
      if (!meta.ok()) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(meta.status().message()));
      }
      restore = std::move(*meta);
    }
    std::vector<std::pair<std::string, proto::TaskDeploymentDescriptor>> deployments;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "JobManager is stopping");
      int needed = SlotsNeeded(req->graph());
      int total = 0, free = 0;
      for (auto& [id, tm] : tms_) {
        total += tm.slots;
        free += tm.slots - tm.used;
      }
      if (needed > free) {
        return grpc::Status(
            grpc::StatusCode::RESOURCE_EXHAUSTED,
            absl::StrCat("job '", req->graph().name(), "' needs ", needed, " task slots but only ", free,
                         " of ", total, " are free (", tms_.size(),
                         " TaskManagers registered); lower the parallelism or add TaskManagers"));
      }
      Job& job = jobs_[job_id];
      job.id = job_id;
      job.graph = req->graph();
      job.library_sha256 = req->library_sha256();
      job.args.assign(req->args().begin(), req->args().end());
      job.config.insert(req->config().begin(), req->config().end());
      job.state = "CREATED";
      job.start_time_ms = NowMillis();
      SetUpCheckpointing(job, std::move(job_conf));
      job.restore_from = std::move(restore);
      job.restore_dir = restore_dir;
      // Numbering goes on from the restored checkpoint (tasks take only newer ones).
      if (job.restore_from) job.next_checkpoint_id = job.restore_from->checkpoint_id() + 1;
      job.slots = AllocateSlots(needed);
      deployments = BuildDeployments(job);
      job.state = "RUNNING";
      spdlog::info("job {} ({}) submitted: {} tasks in {} slots{}", job_id, job.graph.name(),
                   deployments.size(), needed,
                   job.restore_from ? absl::StrCat(", from checkpoint ", job.restore_from->checkpoint_id(),
                                                   " in ", job.restore_dir)
                                    : "");
    }
    for (auto& [tm_id, tdd] : deployments) Deploy(tm_id, tdd);
    resp->set_job_id(job_id);
    return grpc::Status::OK;
  }

  grpc::Status ListJobs(grpc::ServerContext*, const proto::ListJobsRequest* req,
                        proto::ListJobsResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<const Job*> jobs;
    for (auto& [id, job] : jobs_) {
      if (req->include_terminated() || !IsTerminalJobState(job.state)) jobs.push_back(&job);
    }
    std::sort(jobs.begin(), jobs.end(),
              [](const Job* a, const Job* b) { return a->start_time_ms < b->start_time_ms; });
    for (const Job* j : jobs) FillStatus(*j, resp->add_jobs(), /*with_tasks=*/false);
    return grpc::Status::OK;
  }

  grpc::Status GetJob(grpc::ServerContext*, const proto::JobIdRequest* req, proto::JobStatus* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(req->job_id());
    if (it == jobs_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no job " + req->job_id());
    FillStatus(it->second, resp, /*with_tasks=*/true);
    return grpc::Status::OK;
  }

  grpc::Status CancelJob(grpc::ServerContext*, const proto::JobIdRequest* req, proto::Empty*) override {
    std::set<std::string> tms;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(req->job_id());
      if (it == jobs_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no job " + req->job_id());
      Job& job = it->second;
      if (IsTerminalJobState(job.state)) {
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                            absl::StrCat("job ", job.id, " is already ", job.state));
      }
      if (job.state == "CANCELLING") return grpc::Status::OK;
      job.state = "CANCELLING";
      job.stop_requested = std::chrono::steady_clock::now();
      tms = TaskManagersOf(job);
      spdlog::info("job {} cancelling", job.id);
      MaybeCompleteLocked(job);
    }
    for (const auto& tm : tms) SendCancel(tm, req->job_id());
    return grpc::Status::OK;
  }

  grpc::Status UpdateTaskState(grpc::ServerContext*, const proto::TaskStateUpdate* u, proto::Empty*) override {
    std::set<std::string> cancel_on;
    std::string job_id = u->job_id();
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(job_id);
      if (it == jobs_.end()) return grpc::Status::OK;
      Job& job = it->second;
      auto t = job.tasks.find({u->vertex_id(), u->subtask()});
      if (t == job.tasks.end() || t->second.attempt != u->attempt()) return grpc::Status::OK;
      if (IsTerminalTaskState(t->second.state)) return grpc::Status::OK;
      std::pair<int, int> key{u->vertex_id(), u->subtask()};
      if (u->state() == "END_OF_DATA") {
        // Not a state of its own: the task keeps running until the final checkpoint.
        job.end_of_data.insert(key);
        cv_.notify_all();
        return grpc::Status::OK;
      }
      t->second.state = u->state();
      t->second.failure = u->failure();
      if (u->state() == "FINISHED" && job.pending && job.pending->waiting.erase(key)) {
        CarryForwardLocked(job, key, *job.pending);
        cv_.notify_all();
      }
      if (u->state() == "FAILED") {
        const auto& v = job.graph.vertices(u->vertex_id());
        std::string cause = absl::StrCat(v.name(), " (", u->subtask() + 1, "/", v.parallelism(),
                                         ") on TaskManager ", u->tm_id(), " failed: ", u->failure());
        cancel_on = HandleFailureLocked(job, cause);
      }
      MaybeCompleteLocked(job);
    }
    for (const auto& tm : cancel_on) SendCancel(tm, job_id);
    return grpc::Status::OK;
  }

  grpc::Status AcknowledgeCheckpoint(grpc::ServerContext*, const proto::AcknowledgeCheckpointRequest* a,
                                     proto::Empty*) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(a->job_id());
    if (it == jobs_.end()) return grpc::Status::OK;
    Job& job = it->second;
    if (a->attempt() != job.attempt || !job.pending || job.pending->id != a->checkpoint_id()) {
      return grpc::Status::OK;  // late: that checkpoint was aborted or belongs to an old attempt
    }
    if (job.pending->waiting.erase({a->vertex_id(), a->subtask()}) == 0) return grpc::Status::OK;
    for (const auto& h : a->handles()) *job.pending->handles.emplace(job.pending->handles.end()) = h;
    job.pending->max_sync_us = std::max(job.pending->max_sync_us, a->sync_duration_us());
    job.pending->max_async_us = std::max(job.pending->max_async_us, a->async_duration_us());
    if (job.pending->waiting.empty()) cv_.notify_all();
    return grpc::Status::OK;
  }

  grpc::Status DeclineCheckpoint(grpc::ServerContext*, const proto::DeclineCheckpointRequest* d,
                                 proto::Empty*) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(d->job_id());
    if (it == jobs_.end()) return grpc::Status::OK;
    Job& job = it->second;
    if (d->attempt() != job.attempt || !job.pending || job.pending->id != d->checkpoint_id()) {
      return grpc::Status::OK;
    }
    const auto& v = job.graph.vertices(d->vertex_id());
    AbortPendingLocked(job,
                       absl::StrCat(v.name(), " (", d->subtask() + 1, "/", v.parallelism(),
                                    ") declined it: ", d->reason()),
                       /*count_failure=*/true);
    return grpc::Status::OK;
  }

  // Held open by every TaskManager: when its process dies the connection closes and the
  // TaskManager is declared lost at once, without waiting for heartbeat.timeout.
  grpc::Status WatchJobManager(grpc::ServerContext* ctx, const proto::TaskManagerHeartbeat* req,
                               grpc::ServerWriter<proto::Empty>*) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!tms_.count(req->tm_id())) return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown TaskManager");
    }
    while (!ctx->IsCancelled()) {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, 50ms, [&] { return stopping_; })) return grpc::Status::OK;
      if (!tms_.count(req->tm_id())) return grpc::Status::OK;
    }
    std::vector<std::pair<std::string, std::string>> cancels;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || !tms_.count(req->tm_id())) return grpc::Status::OK;
      LoseTaskManagerLocked(req->tm_id(),
                            absl::StrCat("TaskManager ", req->tm_id(), " at ", tms_[req->tm_id()].address,
                                         " was lost: its connection to the JobManager closed"),
                            cancels);
    }
    for (auto& [tm, job] : cancels) SendCancel(tm, job);
    return grpc::Status::OK;
  }

 private:
  struct TaskManagerEntry {
    std::string id;
    std::string address;
    int slots = 0;
    int used = 0;
    std::chrono::steady_clock::time_point last_heartbeat;
    std::shared_ptr<proto::TaskExecutorService::Stub> stub;
  };

  struct TaskEntry {
    std::string state;
    std::string tm_id;
    std::string failure;
    int attempt = 0;
  };

  struct Job {
    std::string id;
    proto::JobGraph graph;
    std::string library_sha256;
    std::vector<std::string> args;
    std::map<std::string, std::string> config;
    std::string state;
    std::string failure;
    int64_t start_time_ms = 0;
    int64_t end_time_ms = 0;
    std::vector<std::string> slots;  // slot index -> TaskManager id
    bool slots_released = false;
    std::map<std::pair<int, int>, TaskEntry> tasks;  // (vertex, subtask)
    std::chrono::steady_clock::time_point stop_requested;

    // Failover: every restart deploys a new attempt of all tasks.
    Configuration conf;  // the cluster's, with the job's -D overrides
    int attempt = 0;
    int restarts = 0;
    RestartStrategy restart_strategy;
    Clock::time_point restart_at;

    // Checkpointing (off when interval is 0).
    Millis interval{0}, timeout{0}, min_pause{0};
    bool exactly_once = true;
    int64_t auto_watermark_interval_ms = 200;
    int64_t tolerable_failures = 0;
    size_t num_retained = 1;
    std::string checkpoint_root;  // state.checkpoints.dir, or its default
    std::string checkpoint_dir;   // <checkpoint_root>/<job-id>
    int64_t next_checkpoint_id = 1;
    struct PendingCheckpoint {
      int64_t id = 0;
      int64_t timestamp_ms = 0;
      Clock::time_point started;
      std::set<std::pair<int, int>> waiting;  // tasks yet to acknowledge
      std::vector<proto::StateHandle> handles;
      bool writing = false;  // every task acknowledged; _metadata being written
      int64_t max_sync_us = 0, max_async_us = 0;  // the longest task pause and file write
    };
    std::optional<PendingCheckpoint> pending;
    Clock::time_point last_checkpoint_end;
    Clock::time_point last_trigger;
    std::deque<proto::CheckpointMetadata> completed;  // retained, oldest first
    // Shared files (incremental state) that only checkpoints dropped at the last completion
    // named: removed at the next completion unless named again. The grace of one checkpoint
    // covers a task that builds on an older checkpoint's files before it hears of a newer one.
    std::set<std::string> shared_unreferenced;
    int64_t consecutive_failures = 0;
    int64_t completed_count = 0, failed_count = 0;
    // Source tasks that have emitted all their records, and whether a checkpoint was triggered
    // since the last of them did (the final checkpoint).
    std::set<std::pair<int, int>> end_of_data;
    bool final_triggered = false;
    // The checkpoint to start from (`sluice run -s`) until one of this job completes.
    std::optional<proto::CheckpointMetadata> restore_from;
    std::string restore_dir;
    bool checkpointing() const { return interval.count() > 0; }
  };

  static absl::Status ValidateGraph(const proto::JobGraph& g) {
    if (g.vertices_size() == 0) return absl::InvalidArgumentError("the job graph has no vertices");
    if (g.max_parallelism() < 1) return absl::InvalidArgumentError("max parallelism must be at least 1");
    for (int i = 0; i < g.vertices_size(); ++i) {
      const auto& v = g.vertices(i);
      if (v.id() != i) return absl::InvalidArgumentError("vertex ids must be 0..n-1 in order");
      if (v.parallelism() < 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("vertex '", v.name(), "' has parallelism ", v.parallelism(), "; it must be at least 1"));
      }
      if (v.parallelism() > g.max_parallelism()) {
        return absl::InvalidArgumentError(absl::StrCat("vertex '", v.name(), "' has parallelism ",
                                                       v.parallelism(), " above max parallelism ",
                                                       g.max_parallelism()));
      }
      if (v.node_ids_size() == 0) return absl::InvalidArgumentError("a vertex has no operators");
    }
    for (const auto& e : g.edges()) {
      if (e.source_vertex() < 0 || e.source_vertex() >= g.vertices_size() || e.target_vertex() < 0 ||
          e.target_vertex() >= g.vertices_size()) {
        return absl::InvalidArgumentError("an edge names a vertex that does not exist");
      }
      if (PartitionerFromName(e.partitioner()) == Partitioner::kDefault) {
        return absl::InvalidArgumentError("unknown partitioner '" + e.partitioner() + "'");
      }
      if ((e.partitioner() == "forward") &&
          g.vertices(e.source_vertex()).parallelism() != g.vertices(e.target_vertex()).parallelism()) {
        return absl::InvalidArgumentError("a forward edge joins vertices of different parallelism");
      }
    }
    return absl::OkStatus();
  }

  // Picks `n` free slots, spreading them over the TaskManagers with the most free slots.
  std::vector<std::string> AllocateSlots(int n) {
    std::vector<std::string> slots;
    for (int i = 0; i < n; ++i) {
      TaskManagerEntry* best = nullptr;
      for (auto& [id, tm] : tms_) {
        if (tm.slots - tm.used <= 0) continue;
        if (!best || tm.slots - tm.used > best->slots - best->used) best = &tm;
      }
      best->used++;
      slots.push_back(best->id);
    }
    return slots;
  }

  static std::string PartitionId(const std::string& job_id, int edge, int producer, int attempt) {
    return absl::StrCat(job_id, ".e", edge, ".s", producer, ".a", attempt);
  }

  // One descriptor per subtask of every vertex; subtask i runs in slot i.
  std::vector<std::pair<std::string, proto::TaskDeploymentDescriptor>> BuildDeployments(Job& job) {
    std::vector<std::pair<std::string, proto::TaskDeploymentDescriptor>> out;
    const auto& g = job.graph;
    // The newest completed checkpoint, else the one the job was submitted with.
    const proto::CheckpointMetadata* restore =
        !job.completed.empty() ? &job.completed.back() : (job.restore_from ? &*job.restore_from : nullptr);
    const std::string& restore_dir = !job.completed.empty() ? job.checkpoint_dir : job.restore_dir;
    job.tasks.clear();
    for (const auto& v : g.vertices()) {
      for (int s = 0; s < v.parallelism(); ++s) {
        const std::string& tm_id = job.slots[s];
        proto::TaskDeploymentDescriptor tdd;
        tdd.set_job_id(job.id);
        tdd.set_job_name(g.name());
        tdd.set_library_sha256(job.library_sha256);
        for (const auto& a : job.args) tdd.add_args(a);
        *tdd.mutable_graph() = g;
        tdd.set_vertex_id(v.id());
        tdd.set_subtask(s);
        tdd.set_attempt(job.attempt);
        tdd.mutable_config()->insert(job.config.begin(), job.config.end());
        // The backend is the cluster's unless the job overrides it; TaskManagers are told which.
        for (const char* key : {"state.backend.type", "state.backend.incremental"}) {
          (*tdd.mutable_config())[key] = job.conf.GetString(key);
        }
        tdd.set_auto_watermark_interval_ms(job.auto_watermark_interval_ms);
        if (job.checkpointing()) {
          tdd.set_checkpoint_dir(job.checkpoint_dir);
          tdd.set_exactly_once(job.exactly_once);
        }
        if (restore) {
          tdd.set_restore_checkpoint_id(restore->checkpoint_id());
          tdd.set_restore_dir(restore_dir);
          tdd.set_restore_parallelism(restore->vertex_parallelism(v.id()));
          for (const auto& h : restore->handles()) {
            if (h.vertex_id() == v.id()) *tdd.add_restore_handles() = h;
          }
        }
        for (int e = 0; e < g.edges_size(); ++e) {
          const auto& edge = g.edges(e);
          if (edge.source_vertex() == v.id()) {
            auto* o = tdd.add_outputs();
            o->set_partition_id(PartitionId(job.id, e, s, job.attempt));
            o->set_edge_index(e);
            o->set_num_subpartitions(g.vertices(edge.target_vertex()).parallelism());
          }
          if (edge.target_vertex() == v.id()) {
            int producers = g.vertices(edge.source_vertex()).parallelism();
            SubtaskRange range{0, producers};
            if (edge.partitioner() == "forward" || edge.partitioner() == "rescale") {
              range = pointwise_producers(s, producers, v.parallelism());
            }
            auto* gate = tdd.add_inputs();
            gate->set_target_input(edge.target_input());
            for (int p = range.begin; p < range.end; ++p) {
              const std::string& producer_tm = job.slots[p];
              auto* ch = gate->add_channels();
              ch->set_partition_id(PartitionId(job.id, e, p, job.attempt));
              ch->set_subpartition(s);
              ch->set_producer_tm_id(producer_tm);
              ch->set_producer_address(tms_[producer_tm].address);
              ch->set_local(producer_tm == tm_id);
            }
          }
        }
        job.tasks[{v.id(), s}] = TaskEntry{"DEPLOYING", tm_id, "", job.attempt};
        out.emplace_back(tm_id, std::move(tdd));
      }
    }
    return out;
  }

  void Deploy(const std::string& tm_id, const proto::TaskDeploymentDescriptor& tdd) {
    {
      // A job cancelled or failed while its tasks were being deployed gets no more tasks.
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(tdd.job_id());
      if (it == jobs_.end()) return;
      Job& job = it->second;
      if (tdd.attempt() != job.attempt) return;  // the job restarted meanwhile
      if (job.state != "RUNNING") {
        auto& t = job.tasks[{tdd.vertex_id(), tdd.subtask()}];
        if (!IsTerminalTaskState(t.state)) t.state = "CANCELED";
        MaybeCompleteLocked(job);
        return;
      }
    }
    proto::Empty e;
    grpc::Status st = CallTaskManager(tm_id, 10s, &proto::TaskExecutorService::Stub::DeployTask, tdd, &e);
    if (st.ok()) return;
    std::set<std::string> cancel_on;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(tdd.job_id());
      if (it == jobs_.end()) return;
      Job& job = it->second;
      if (tdd.attempt() != job.attempt) return;
      auto& t = job.tasks[{tdd.vertex_id(), tdd.subtask()}];
      t.state = "FAILED";
      t.failure = st.error_message();
      cancel_on = HandleFailureLocked(
          job, absl::StrCat("could not deploy ", job.graph.vertices(tdd.vertex_id()).name(), " (",
                            tdd.subtask() + 1, ") to TaskManager ", tm_id, ": ", st.error_message()));
      MaybeCompleteLocked(job);
    }
    for (const auto& tm : cancel_on) SendCancel(tm, tdd.job_id());
  }

  // One call to a registered TaskManager's service, with a deadline. NOT_FOUND when it is not
  // (or no longer) registered.
  template <class Req, class Resp>
  grpc::Status CallTaskManager(const std::string& tm_id, std::chrono::milliseconds deadline,
                               grpc::Status (proto::TaskExecutorService::Stub::*method)(
                                   grpc::ClientContext*, const Req&, Resp*),
                               const Req& req, Resp* resp) {
    std::shared_ptr<proto::TaskExecutorService::Stub> stub;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = tms_.find(tm_id);
      if (it != tms_.end()) stub = it->second.stub;
    }
    if (!stub) return grpc::Status(grpc::StatusCode::NOT_FOUND, "TaskManager " + tm_id + " is gone");
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    return ((*stub).*method)(&ctx, req, resp);
  }

  void SendCancel(const std::string& tm_id, const std::string& job_id) {
    proto::CancelJobTasksRequest req;
    req.set_job_id(job_id);
    proto::Empty e;
    grpc::Status st = CallTaskManager(tm_id, 5s, &proto::TaskExecutorService::Stub::CancelJobTasks, req, &e);
    if (!st.ok() && st.error_code() != grpc::StatusCode::NOT_FOUND) {
      spdlog::warn("cancelling job {} on TaskManager {}: {}", job_id, tm_id, st.error_message());
    }
  }

  void SendRelease(const std::string& tm_id, const std::string& job_id) {
    proto::CancelJobTasksRequest req;
    req.set_job_id(job_id);
    proto::Empty e;
    CallTaskManager(tm_id, 5s, &proto::TaskExecutorService::Stub::ReleaseJob, req, &e);
  }

  std::set<std::string> TaskManagersOf(const Job& job) {
    return std::set<std::string>(job.slots.begin(), job.slots.end());
  }

  void FailJobLocked(Job& job, const std::string& cause) {
    job.state = "FAILING";
    job.failure = cause;
    job.stop_requested = std::chrono::steady_clock::now();
    spdlog::warn("job {} failing: {}", job.id, cause);
  }

  // Moves a job whose tasks have all ended to its final state and frees its slots.
  void MaybeCompleteLocked(Job& job) {
    if (IsTerminalJobState(job.state)) return;
    bool all_terminal = true, all_finished = true;
    for (auto& [key, t] : job.tasks) {
      all_terminal &= IsTerminalTaskState(t.state);
      all_finished &= t.state == "FINISHED";
    }
    if (!all_terminal) return;
    if (job.state == "RESTARTING") {
      cv_.notify_all();  // the coordinator redeploys once the delay has passed
      return;
    }
    AbortPendingLocked(job, "the job ended", /*count_failure=*/false);
    if (job.state == "RUNNING" && all_finished) {
      job.state = "FINISHED";
    } else if (job.state == "CANCELLING") {
      job.state = "CANCELED";
    } else {
      job.state = "FAILED";
      if (job.failure.empty()) job.failure = "tasks ended without finishing";
    }
    job.end_time_ms = NowMillis();
    ReleaseSlotsLocked(job);
    spdlog::info("job {} ({}) {}", job.id, job.graph.name(), job.state);
    for (const auto& tm : TaskManagersOf(job)) releases_.emplace_back(tm, job.id);
    cv_.notify_all();
    terminal_order_.push_back(job.id);
    while (terminal_order_.size() > kRetainedTerminalJobs) {
      jobs_.erase(terminal_order_.front());
      terminal_order_.pop_front();
    }
  }

  void ReleaseSlotsLocked(Job& job) {
    if (job.slots_released) return;
    job.slots_released = true;
    for (const auto& tm_id : job.slots) {
      auto it = tms_.find(tm_id);
      if (it != tms_.end() && it->second.used > 0) it->second.used--;
    }
  }

  // ---- Failover ----

  // A task of the job failed, or could not be deployed, or its TaskManager was lost: restart as
  // the strategy says, or fail the job. Returns the TaskManagers whose tasks of the job must be
  // cancelled.
  std::set<std::string> HandleFailureLocked(Job& job, const std::string& cause) {
    if (job.state != "RUNNING") return {};  // already restarting, failing, cancelling or over
    AbortPendingLocked(job, "the job failed", /*count_failure=*/false);
    auto now = Clock::now();
    std::optional<Millis> delay = job.restart_strategy.OnFailure(now);
    if (!delay) {
      FailJobLocked(job, job.restarts > 0 ? absl::StrCat(cause, " (no more restarts: ",
                                                         job.restart_strategy.Describe(), ")")
                                          : cause);
    } else {
      job.state = "RESTARTING";
      job.failure = cause;
      job.stop_requested = now;
      job.restart_at = now + *delay;
      spdlog::warn("job {} restarting in {} ms: {}", job.id, delay->count(), cause);
      cv_.notify_all();
    }
    return TaskManagersOf(job);
  }

  // Forgets a TaskManager and fails the tasks it ran; `cancels` gets the (TaskManager, job)
  // pairs whose other tasks must be cancelled.
  void LoseTaskManagerLocked(const std::string& id, const std::string& cause,
                             std::vector<std::pair<std::string, std::string>>& cancels) {
    if (!tms_.count(id)) return;
    spdlog::warn("{}", cause);
    tms_.erase(id);
    for (auto& [job_id, job] : jobs_) {
      if (IsTerminalJobState(job.state)) continue;
      bool affected = false;
      for (auto& [key, t] : job.tasks) {
        if (t.tm_id == id && !IsTerminalTaskState(t.state)) {
          t.state = "FAILED";
          t.failure = cause;
          affected = true;
        }
      }
      if (!affected) continue;
      for (const auto& tm : HandleFailureLocked(job, cause)) {
        if (tm != id) cancels.emplace_back(tm, job_id);
      }
      MaybeCompleteLocked(job);
    }
  }

  // Redeploys a RESTARTING job whose old tasks have all ended: onto the free slots of the
  // TaskManagers that answer, from the newest completed checkpoint.
  void Restart(const std::string& job_id) {
    std::set<std::string> old_tms;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(job_id);
      if (it == jobs_.end() || it->second.state != "RESTARTING") return;
      old_tms = TaskManagersOf(it->second);
    }
    // A TaskManager that does not answer now is gone: do not wait for its heartbeats to stop.
    std::vector<std::pair<std::string, std::string>> cancels;
    for (const auto& tm : old_tms) {
      proto::JobManagerHeartbeat hb;
      hb.set_jm_id(jm_id_);
      proto::TaskManagerReport report;
      grpc::Status st = CallTaskManager(tm, 1s, &proto::TaskExecutorService::Stub::Heartbeat, hb, &report);
      if (st.error_code() == grpc::StatusCode::NOT_FOUND) continue;  // already forgotten
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        LoseTaskManagerLocked(tm, absl::StrCat("TaskManager ", tm, " was lost: it does not answer (",
                                               st.error_message(), ")"),
                              cancels);
      } else {
        SendRelease(tm, job_id);  // the old attempt's partitions and tasks
      }
    }
    for (auto& [tm, job] : cancels) SendCancel(tm, job);
    std::vector<std::pair<std::string, proto::TaskDeploymentDescriptor>> deployments;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(job_id);
      if (it == jobs_.end() || it->second.state != "RESTARTING") return;
      Job& job = it->second;
      ReleaseSlotsLocked(job);
      int needed = SlotsNeeded(job.graph);
      int free = 0;
      for (auto& [id, tm] : tms_) free += tm.slots - tm.used;
      if (needed > free) {
        std::string cause = absl::StrCat("cannot restart: the job needs ", needed, " task slots but ",
                                         free, " are free");
        auto delay = job.restart_strategy.OnFailure(Clock::now());
        if (!delay) {
          FailJobLocked(job, absl::StrCat(cause, " (", job.restart_strategy.Describe(), ")"));
          MaybeCompleteLocked(job);
          return;
        }
        spdlog::warn("job {}: {}; trying again in {} ms", job.id, cause, delay->count());
        job.restart_at = Clock::now() + *delay;
        return;
      }
      job.slots = AllocateSlots(needed);
      job.slots_released = false;
      job.attempt++;
      job.restarts++;
      job.pending.reset();
      job.end_of_data.clear();
      job.final_triggered = false;
      job.last_trigger = Clock::now();
      deployments = BuildDeployments(job);
      job.state = "RUNNING";
      spdlog::info("job {} restarted (attempt {}){}", job.id, job.attempt,
                   !job.completed.empty()
                       ? absl::StrCat(" from checkpoint ", job.completed.back().checkpoint_id())
                       : "");
    }
    for (auto& [tm_id, tdd] : deployments) Deploy(tm_id, tdd);
  }

  // ---- Checkpoints ----

  void SetUpCheckpointing(Job& job, Configuration conf) {
    job.conf = std::move(conf);
    job.interval = Millis(job.conf.GetDurationMs("execution.checkpointing.interval"));
    job.timeout = Millis(job.conf.GetDurationMs("execution.checkpointing.timeout"));
    job.min_pause = Millis(job.conf.GetDurationMs("execution.checkpointing.min-pause"));
    job.exactly_once = job.conf.GetChoice("execution.checkpointing.mode") != "AT_LEAST_ONCE";
    job.auto_watermark_interval_ms = job.conf.GetDurationMs("pipeline.auto-watermark-interval");
    job.tolerable_failures = job.conf.GetInt("execution.checkpointing.tolerable-failed-checkpoints");
    job.num_retained = static_cast<size_t>(std::max<int64_t>(1, job.conf.GetInt("state.checkpoints.num-retained")));
    std::string root = job.conf.GetString("state.checkpoints.dir");
    if (root.empty()) root = (std::filesystem::temp_directory_path() / "sluice-checkpoints").string();
    job.checkpoint_root = root;
    job.checkpoint_dir = absl::StrCat(root, "/", job.id);
    job.restart_strategy = RestartStrategy(job.conf, job.checkpointing());
    job.last_trigger = job.last_checkpoint_end = Clock::now();
  }

  // Reads and checks a retained checkpoint for a new job: its metadata, that it fits the job's
  // graph, and every state file's size and checksum. Errors name the file.
  absl::StatusOr<proto::CheckpointMetadata> LoadCheckpointForRestore(const std::string& path,
                                                                     const proto::JobGraph& graph,
                                                                     std::string* dir) {
    auto meta = ReadMetadata(path);
    if (!meta.ok()) return meta.status();
    std::filesystem::path p(path);
    if (p.filename() == "_metadata") p = p.parent_path();
    if (p.filename().empty()) p = p.parent_path();  // a trailing slash
    *dir = p.parent_path().string();
    if (meta->vertex_parallelism_size() != graph.vertices_size() ||
        meta->vertex_nodes_size() != graph.vertices_size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint ", path, " has ", meta->vertex_parallelism_size(), " tasks but job '", graph.name(),
          "' has ", graph.vertices_size(), ": it belongs to another job"));
    }
    for (int v = 0; v < graph.vertices_size(); ++v) {
      std::string nodes = absl::StrJoin(graph.vertices(v).node_ids(), ",");
      if (meta->vertex_nodes(v) != nodes) {
        return absl::InvalidArgumentError(absl::StrCat("checkpoint ", path, " does not fit job '",
                                                       graph.name(), "': task ", v, " has operators ",
                                                       meta->vertex_nodes(v), ", the job ", nodes));
      }
    }
    if (meta->max_parallelism() != graph.max_parallelism()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint ", path, " was taken with max parallelism ", meta->max_parallelism(),
          " but the job has ", graph.max_parallelism(), " (pipeline.max-parallelism must not change)"));
    }
    for (const auto& h : meta->handles()) {
      auto st = ReadStateFile(absl::StrCat(*dir, "/", h.file()), &h);
      if (!st.ok()) return st.status();
    }
    return meta;
  }

  // Gives a task that finished during a checkpoint the state it had in the newest completed one
  // (a finished task emits nothing more, so that state is still its state).
  // With checkpointing a task finishes only after a checkpoint of this job has completed, so
  // there always is one.
  void CarryForwardLocked(const Job& job, const std::pair<int, int>& key, Job::PendingCheckpoint& p) {
    if (job.completed.empty()) return;
    for (const auto& h : job.completed.back().handles()) {
      if (h.vertex_id() == key.first && h.subtask() == key.second) p.handles.push_back(h);
    }
  }

  // Ends the pending checkpoint without completing it; removes its files and tells the tasks.
  void AbortPendingLocked(Job& job, const std::string& reason, bool count_failure) {
    if (!job.pending || job.pending->writing) return;
    int64_t id = job.pending->id;
    // Shared files the acknowledged tasks stored for this checkpoint alone: tasks build only on
    // completed checkpoints' files, so nothing else will name them.
    std::vector<std::string> shared;
    std::set<std::string> named = SharedFilesOf(job.completed);
    for (const auto& h : job.pending->handles) {
      for (const std::string& f : h.shared_files()) {
        if (!named.count(f) && !job.shared_unreferenced.count(f)) shared.push_back(f);
      }
    }
    job.pending.reset();
    job.last_checkpoint_end = Clock::now();
    std::string dir = CheckpointDirectory(job.checkpoint_root, job.id, id);
    std::set<std::string> tms = TaskManagersOf(job);
    int attempt = job.attempt;
    std::string job_id = job.id;
    std::string job_dir = job.checkpoint_dir;
    deferred_.push_back([this, dir, tms, attempt, job_id, id, job_dir, shared] {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      for (const std::string& f : shared) std::filesystem::remove(absl::StrCat(job_dir, "/", f), ec);
      for (const auto& tm : tms) SendNotify(tm, job_id, attempt, id, /*aborted=*/true);
    });
    cv_.notify_all();
    if (!count_failure) {
      spdlog::info("job {}: checkpoint {} aborted: {}", job.id, id, reason);
      return;
    }
    job.failed_count++;
    job.consecutive_failures++;
    spdlog::warn("job {}: checkpoint {} failed: {}", job.id, id, reason);
    if (job.consecutive_failures > job.tolerable_failures) {
      std::set<std::string> cancel = HandleFailureLocked(
          job, absl::StrCat("checkpoint ", id, " failed (", reason, ") and ", job.consecutive_failures,
                            " consecutive checkpoint failures exceed "
                            "execution.checkpointing.tolerable-failed-checkpoints (",
                            job.tolerable_failures, ")"));
      deferred_.push_back([this, cancel, job_id] {
        for (const auto& tm : cancel) SendCancel(tm, job_id);
      });
    }
  }

  // Starts a checkpoint if one is due. Returns the TaskManagers to trigger.
  std::set<std::string> MaybeTriggerLocked(Job& job, Clock::time_point now) {
    if (job.state != "RUNNING" || !job.checkpointing() || job.pending) return {};
    bool all_sources_ended = true;
    for (const auto& [key, t] : job.tasks) {
      if (t.state != "RUNNING" && t.state != "FINISHED") return {};  // still deploying
      if (job.graph.vertices(key.first).is_source() && t.state != "FINISHED" &&
          !job.end_of_data.count(key)) {
        all_sources_ended = false;
      }
    }
    bool final_due = all_sources_ended && !job.final_triggered;
    if (!final_due && (now < job.last_trigger + job.interval || now < job.last_checkpoint_end + job.min_pause)) {
      return {};
    }
    Job::PendingCheckpoint p;
    p.id = job.next_checkpoint_id++;
    p.timestamp_ms = NowMillis();
    p.started = now;
    std::set<std::string> sources;
    for (const auto& [key, t] : job.tasks) {
      if (t.state == "FINISHED") {
        CarryForwardLocked(job, key, p);
        continue;
      }
      p.waiting.insert(key);
      if (job.graph.vertices(key.first).is_source()) sources.insert(t.tm_id);
    }
    job.last_trigger = now;
    if (p.waiting.empty()) return {};
    if (all_sources_ended) job.final_triggered = true;
    job.pending = std::move(p);
    return sources;
  }

  // The shared files that the checkpoints in `checkpoints` name.
  template <class Checkpoints>
  static std::set<std::string> SharedFilesOf(const Checkpoints& checkpoints) {
    std::set<std::string> files;
    for (const auto& c : checkpoints) {
      for (const auto& h : c.handles()) files.insert(h.shared_files().begin(), h.shared_files().end());
    }
    return files;
  }

  // Fails when a shared file the checkpoint names is not in checkpoint storage (it would not
  // restore): names the file.
  static absl::Status CheckSharedFiles(const std::string& job_dir, const proto::CheckpointMetadata& meta) {
    std::error_code ec;
    for (const auto& h : meta.handles()) {
      for (const std::string& f : h.shared_files()) {
        std::string path = absl::StrCat(job_dir, "/", f);
        if (!std::filesystem::exists(path, ec)) {
          return absl::DataLossError(absl::StrCat("shared state file '", path, "' of vertex ",
                                                  h.vertex_id(), " subtask ", h.subtask(),
                                                  " is missing"));
        }
      }
    }
    return absl::OkStatus();
  }

  // The metadata of a checkpoint every task has acknowledged.
  proto::CheckpointMetadata MetadataLocked(const Job& job) {
    proto::CheckpointMetadata m;
    m.set_job_id(job.id);
    m.set_checkpoint_id(job.pending->id);
    m.set_timestamp_ms(job.pending->timestamp_ms);
    m.set_job_name(job.graph.name());
    m.set_max_parallelism(job.graph.max_parallelism());
    for (const auto& v : job.graph.vertices()) {
      m.add_vertex_parallelism(v.parallelism());
      m.add_vertex_nodes(absl::StrJoin(v.node_ids(), ","));
    }
    for (const auto& h : job.pending->handles) *m.add_handles() = h;
    return m;
  }

  void CompleteCheckpoint(const std::string& job_id, const proto::CheckpointMetadata& meta,
                          const std::string& dir) {
    absl::Status st = absl::OkStatus();
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    std::string job_dir_of_meta = std::filesystem::path(dir).parent_path().string();
    if (ec) {
      st = absl::InternalError(absl::StrCat("cannot create '", dir, "': ", ec.message()));
    } else {
      st = CheckSharedFiles(job_dir_of_meta, meta);
      if (st.ok()) st = WriteMetadata(dir, meta);
    }
    std::set<std::string> tms;
    int attempt = 0;
    std::string job_dir;
    std::set<std::string> keep;
    std::vector<std::string> shared_to_remove;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(job_id);
      if (it == jobs_.end()) return;
      Job& job = it->second;
      if (!job.pending || job.pending->id != meta.checkpoint_id()) return;
      job.pending->writing = false;
      if (!st.ok()) {
        AbortPendingLocked(job, std::string(st.message()), /*count_failure=*/true);
        return;
      }
      auto now = Clock::now();
      spdlog::info("job {}: checkpoint {} complete ({} state files, {} ms; longest task pause {} us, "
                   "longest write {} us)",
                   job.id, meta.checkpoint_id(), meta.handles_size(),
                   std::chrono::duration_cast<Millis>(now - job.pending->started).count(),
                   job.pending->max_sync_us, job.pending->max_async_us);
      job.pending.reset();
      job.last_checkpoint_end = now;
      job.completed.push_back(meta);
      job.completed_count++;
      job.consecutive_failures = 0;
      std::vector<proto::CheckpointMetadata> dropped;
      while (job.completed.size() > job.num_retained) {
        dropped.push_back(std::move(job.completed.front()));
        job.completed.pop_front();
      }
      for (const auto& c : job.completed) {
        keep.insert(absl::StrCat("chk-", c.checkpoint_id()));
        for (const auto& h : c.handles()) keep.insert(h.file().substr(0, h.file().find('/')));
      }
      std::set<std::string> named = SharedFilesOf(job.completed);
      for (const std::string& f : job.shared_unreferenced) {
        if (!named.count(f)) shared_to_remove.push_back(f);
      }
      job.shared_unreferenced.clear();
      for (const std::string& f : SharedFilesOf(dropped)) {
        if (!named.count(f)) job.shared_unreferenced.insert(f);
      }
      if (job.state == "RUNNING") tms = TaskManagersOf(job);
      attempt = job.attempt;
      job_dir = job.checkpoint_dir;
    }
    for (const auto& tm : tms) SendNotify(tm, job_id, attempt, meta.checkpoint_id(), /*aborted=*/false);
    for (const std::string& f : shared_to_remove) std::filesystem::remove(absl::StrCat(job_dir, "/", f), ec);
    // Older checkpoints, unless a retained one still refers to their files.
    for (const auto& e : std::filesystem::directory_iterator(job_dir, ec)) {
      std::string name = e.path().filename().string();
      if (name.rfind("chk-", 0) != 0 || keep.count(name)) continue;
      int64_t n = std::atoll(name.c_str() + 4);
      if (n >= meta.checkpoint_id()) continue;  // a newer one may be in progress
      std::filesystem::remove_all(e.path(), ec);
    }
  }

  void SendNotify(const std::string& tm_id, const std::string& job_id, int attempt, int64_t id, bool aborted) {
    proto::NotifyCheckpointRequest req;
    req.set_job_id(job_id);
    req.set_attempt(attempt);
    req.set_checkpoint_id(id);
    req.set_aborted(aborted);
    proto::Empty e;
    grpc::Status st = CallTaskManager(tm_id, 5s, &proto::TaskExecutorService::Stub::NotifyCheckpoint, req, &e);
    if (!st.ok() && st.error_code() != grpc::StatusCode::NOT_FOUND) spdlog::warn("notifying TaskManager {} of checkpoint {}: {}", tm_id, id, st.error_message());
  }

  // Triggers due checkpoints, completes acknowledged ones, aborts expired ones, restarts jobs.
  void CoordinatorLoop() {
    while (true) {
      std::vector<std::function<void()>> deferred;
      std::vector<std::pair<proto::TriggerCheckpointRequest, std::set<std::string>>> triggers;
      std::vector<std::tuple<std::string, proto::CheckpointMetadata, std::string>> completions;
      std::vector<std::string> restarts;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, 20ms, [&] { return stopping_ || !deferred_.empty(); });
        if (stopping_) return;
        auto now = Clock::now();
        for (auto& [id, job] : jobs_) {
          if (job.state == "RESTARTING" && now >= job.restart_at && !(job.pending && job.pending->writing)) {
            bool all_terminal = true;
            for (const auto& [key, t] : job.tasks) all_terminal &= IsTerminalTaskState(t.state);
            if (all_terminal) restarts.push_back(id);
          }
          if (job.pending && !job.pending->writing) {
            if (job.pending->waiting.empty()) {
              job.pending->writing = true;
              completions.emplace_back(id, MetadataLocked(job),
                                       CheckpointDirectory(job.checkpoint_root, id, job.pending->id));
            } else if (now - job.pending->started > job.timeout) {
              AbortPendingLocked(job,
                                 absl::StrCat("expired after ", job.timeout.count(), " ms (", job.pending->waiting.size(),
                                              " tasks had not acknowledged; execution.checkpointing.timeout)"),
                                 /*count_failure=*/true);
            }
          }
          auto tms = MaybeTriggerLocked(job, now);
          if (!tms.empty()) {
            proto::TriggerCheckpointRequest req;
            req.set_job_id(id);
            req.set_attempt(job.attempt);
            req.set_checkpoint_id(job.pending->id);
            req.set_timestamp_ms(job.pending->timestamp_ms);
            triggers.emplace_back(std::move(req), std::move(tms));
          }
        }
        deferred.swap(deferred_);
      }
      for (auto& f : deferred) f();
      for (auto& [req, tms] : triggers) {
        for (const auto& tm : tms) {
          proto::Empty e;
          grpc::Status st =
              CallTaskManager(tm, 5s, &proto::TaskExecutorService::Stub::TriggerCheckpoint, req, &e);
          if (st.ok()) continue;
          std::lock_guard<std::mutex> lock(mu_);
          auto it = jobs_.find(req.job_id());
          if (it != jobs_.end() && it->second.pending && it->second.pending->id == req.checkpoint_id()) {
            AbortPendingLocked(it->second,
                               absl::StrCat("cannot trigger it at TaskManager ", tm, ": ", st.error_message()),
                               /*count_failure=*/true);
          }
        }
      }
      for (auto& [job_id, meta, dir] : completions) CompleteCheckpoint(job_id, meta, dir);
      for (const auto& job_id : restarts) Restart(job_id);
    }
  }

  void FillStatus(const Job& job, proto::JobStatus* s, bool with_tasks) {
    s->set_job_id(job.id);
    s->set_name(job.graph.name());
    s->set_state(job.state);
    s->set_start_time_ms(job.start_time_ms);
    s->set_end_time_ms(job.end_time_ms);
    s->set_parallelism(SlotsNeeded(job.graph));
    s->set_failure(job.failure);
    s->set_restarts(job.restarts);
    s->set_completed_checkpoints(job.completed_count);
    s->set_failed_checkpoints(job.failed_count);
    if (!job.completed.empty()) {
      s->set_last_checkpoint_id(job.completed.back().checkpoint_id());
      s->set_last_checkpoint_path(
          CheckpointDirectory(job.checkpoint_root, job.id, job.completed.back().checkpoint_id()));
    }
    if (!with_tasks) return;
    for (const auto& [key, t] : job.tasks) {
      auto* ts = s->add_tasks();
      ts->set_vertex_id(key.first);
      ts->set_subtask(key.second);
      ts->set_state(t.state);
      ts->set_tm_id(t.tm_id);
      ts->set_failure(t.failure);
    }
  }

  // Declares silent TaskManagers lost and ends cancellations that take too long.
  void MonitorLoop() {
    while (true) {
      std::vector<std::pair<std::string, std::string>> cancels;  // (tm, job)
      std::vector<std::pair<std::string, std::string>> releases;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, heartbeat_interval_ / 2, [&] { return stopping_ || !releases_.empty(); });
        if (stopping_) return;
        auto now = std::chrono::steady_clock::now();
        std::vector<std::string> lost;
        for (auto& [id, tm] : tms_) {
          if (now - tm.last_heartbeat > heartbeat_timeout_) lost.push_back(id);
        }
        for (const auto& id : lost) {
          LoseTaskManagerLocked(
              id,
              absl::StrCat("TaskManager ", id, " at ", tms_[id].address, " was lost: no heartbeat for ",
                           std::chrono::duration_cast<std::chrono::milliseconds>(now - tms_[id].last_heartbeat)
                               .count(),
                           " ms (heartbeat.timeout is ", heartbeat_timeout_.count(), " ms)"),
              cancels);
        }
        // Tasks that do not confirm cancellation within 30 s are taken as gone.
        for (auto& [job_id, job] : jobs_) {
          if ((job.state == "FAILING" || job.state == "CANCELLING" || job.state == "RESTARTING") &&
              now - job.stop_requested > 30s) {
            for (auto& [key, t] : job.tasks) {
              if (!IsTerminalTaskState(t.state)) {
                t.state = "CANCELED";
                t.failure = "did not confirm cancellation within 30 s";
              }
            }
            MaybeCompleteLocked(job);
          }
        }
        releases.swap(releases_);
      }
      for (auto& [tm, job] : cancels) SendCancel(tm, job);
      for (auto& [tm, job] : releases) SendRelease(tm, job);
    }
  }

  Configuration conf_;
  std::string jm_id_;
  std::chrono::milliseconds heartbeat_timeout_, heartbeat_interval_;
  std::string blob_dir_;
  int port_ = 0;
  std::string address_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<RestServer> rest_;
  std::thread monitor_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<std::string, TaskManagerEntry> tms_;
  std::map<std::string, Job> jobs_;
  std::deque<std::string> terminal_order_;  // ids of terminal jobs, oldest first
  std::vector<std::pair<std::string, std::string>> releases_;  // (TaskManager, job) to release
  // Work found under mu_ that must run without it (calls to TaskManagers, file removal); run by
  // the coordinator thread.
  std::vector<std::function<void()>> deferred_;
  std::thread coordinator_;
};

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Start(const Configuration& conf) {
  auto impl = std::make_unique<JobManagerImpl>(conf);
  absl::Status s = impl->Init();
  if (!s.ok()) {
    impl->Shutdown();
    return s;
  }
  return std::unique_ptr<JobManager>(new JobManager(std::move(impl)));
}

JobManager::JobManager(std::unique_ptr<JobManagerImpl> impl) : impl_(std::move(impl)) {}
JobManager::~JobManager() { Shutdown(); }
int JobManager::port() const { return impl_->port(); }
int JobManager::rest_port() const { return impl_->rest_port(); }
std::string JobManager::address() const { return impl_->address(); }
void JobManager::Shutdown() { impl_->Shutdown(); }

}  // namespace sluice
