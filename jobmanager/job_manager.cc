#include "jobmanager/job_manager.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/job_graph.h"
#include "common/job_states.h"
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
      job.slots = AllocateSlots(needed);
      deployments = BuildDeployments(job);
      job.state = "RUNNING";
      spdlog::info("job {} ({}) submitted: {} tasks in {} slots", job_id, job.graph.name(),
                   deployments.size(), needed);
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
      t->second.state = u->state();
      t->second.failure = u->failure();
      if (u->state() == "FAILED" && !IsTerminalJobState(job.state) && job.state != "FAILING") {
        const auto& v = job.graph.vertices(u->vertex_id());
        std::string cause = absl::StrCat(v.name(), " (", u->subtask() + 1, "/", v.parallelism(),
                                         ") on TaskManager ", u->tm_id(), " failed: ", u->failure());
        FailJobLocked(job, cause);
        cancel_on = TaskManagersOf(job);
      }
      MaybeCompleteLocked(job);
    }
    for (const auto& tm : cancel_on) SendCancel(tm, job_id);
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
        tdd.set_attempt(0);
        tdd.mutable_config()->insert(job.config.begin(), job.config.end());
        for (int e = 0; e < g.edges_size(); ++e) {
          const auto& edge = g.edges(e);
          if (edge.source_vertex() == v.id()) {
            auto* o = tdd.add_outputs();
            o->set_partition_id(PartitionId(job.id, e, s, 0));
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
              ch->set_partition_id(PartitionId(job.id, e, p, 0));
              ch->set_subpartition(s);
              ch->set_producer_tm_id(producer_tm);
              ch->set_producer_address(tms_[producer_tm].address);
              ch->set_local(producer_tm == tm_id);
            }
          }
        }
        job.tasks[{v.id(), s}] = TaskEntry{"DEPLOYING", tm_id, "", 0};
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
      if (job.state != "RUNNING") {
        auto& t = job.tasks[{tdd.vertex_id(), tdd.subtask()}];
        if (!IsTerminalTaskState(t.state)) t.state = "CANCELED";
        MaybeCompleteLocked(job);
        return;
      }
    }
    auto stub = StubOf(tm_id);
    grpc::Status st(grpc::StatusCode::UNAVAILABLE, "TaskManager is gone");
    if (stub) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 10s);
      proto::Empty e;
      st = stub->DeployTask(&ctx, tdd, &e);
    }
    if (st.ok()) return;
    std::set<std::string> cancel_on;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(tdd.job_id());
      if (it == jobs_.end()) return;
      Job& job = it->second;
      auto& t = job.tasks[{tdd.vertex_id(), tdd.subtask()}];
      t.state = "FAILED";
      t.failure = st.error_message();
      if (!IsTerminalJobState(job.state) && job.state != "FAILING") {
        FailJobLocked(job, absl::StrCat("could not deploy ", job.graph.vertices(tdd.vertex_id()).name(),
                                        " (", tdd.subtask() + 1, ") to TaskManager ", tm_id, ": ",
                                        st.error_message()));
        cancel_on = TaskManagersOf(job);
      }
      MaybeCompleteLocked(job);
    }
    for (const auto& tm : cancel_on) SendCancel(tm, tdd.job_id());
  }

  std::shared_ptr<proto::TaskExecutorService::Stub> StubOf(const std::string& tm_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tms_.find(tm_id);
    return it == tms_.end() ? nullptr : it->second.stub;
  }

  void SendCancel(const std::string& tm_id, const std::string& job_id) {
    auto stub = StubOf(tm_id);
    if (!stub) return;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    proto::CancelJobTasksRequest req;
    req.set_job_id(job_id);
    proto::Empty e;
    grpc::Status st = stub->CancelJobTasks(&ctx, req, &e);
    if (!st.ok()) spdlog::warn("cancelling job {} on TaskManager {}: {}", job_id, tm_id, st.error_message());
  }

  void SendRelease(const std::string& tm_id, const std::string& job_id) {
    auto stub = StubOf(tm_id);
    if (!stub) return;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    proto::CancelJobTasksRequest req;
    req.set_job_id(job_id);
    proto::Empty e;
    stub->ReleaseJob(&ctx, req, &e);
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

  void FillStatus(const Job& job, proto::JobStatus* s, bool with_tasks) {
    s->set_job_id(job.id);
    s->set_name(job.graph.name());
    s->set_state(job.state);
    s->set_start_time_ms(job.start_time_ms);
    s->set_end_time_ms(job.end_time_ms);
    s->set_parallelism(SlotsNeeded(job.graph));
    s->set_failure(job.failure);
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
          std::string cause = absl::StrCat(
              "TaskManager ", id, " at ", tms_[id].address, " was lost: no heartbeat for ",
              std::chrono::duration_cast<std::chrono::milliseconds>(now - tms_[id].last_heartbeat).count(),
              " ms (heartbeat.timeout is ", heartbeat_timeout_.count(), " ms)");
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
            if (job.state != "FAILING" && job.state != "CANCELLING") {
              FailJobLocked(job, cause);
              for (const auto& tm : TaskManagersOf(job)) {
                if (tm != id) cancels.emplace_back(tm, job_id);
              }
            }
            MaybeCompleteLocked(job);
          }
        }
        // Tasks that do not confirm cancellation within 30 s are taken as gone.
        for (auto& [job_id, job] : jobs_) {
          if ((job.state == "FAILING" || job.state == "CANCELLING") && now - job.stop_requested > 30s) {
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
