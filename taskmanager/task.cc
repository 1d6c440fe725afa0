#include "taskmanager/task.h"

#include <pthread.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/job_graph.h"
#include "spdlog/spdlog.h"

namespace sluice {

Task::Task(proto::TaskDeploymentDescriptor tdd, std::vector<std::shared_ptr<ResultPartition>> outputs,
           TaskServices services)
    : tdd_(std::move(tdd)), outputs_(std::move(outputs)), services_(std::move(services)) {
  const auto& v = tdd_.graph().vertices(tdd_.vertex_id());
  info_.job_id = tdd_.job_id();
  info_.job_name = tdd_.job_name();
  info_.task_name = v.name();
  info_.vertex_id = tdd_.vertex_id();
  info_.subtask_index = tdd_.subtask();
  info_.parallelism = v.parallelism();
  info_.max_parallelism = tdd_.graph().max_parallelism();
  info_.attempt = tdd_.attempt();
  for (auto& p : outputs_) p->set_cancel_flag(&cancelled_);
}

Task::~Task() {
  Cancel();
  Join();
}

void Task::Start() { thread_ = std::thread([this] { Run(); }); }

void Task::Join() {
  if (thread_.joinable()) thread_.join();
}

void Task::Cancel() {
  if (cancelled_.exchange(true)) return;
  std::lock_guard<std::mutex> lock(chain_mu_);
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
  const std::string who = absl::StrCat(info_.task_name, " (", info_.subtask_index + 1, "/",
                                       info_.parallelism, ") of job ", info_.job_id);
  std::string state = "FINISHED";
  std::string failure;
  try {
    Invoke();
    if (cancelled()) state = "CANCELED";
  } catch (const TaskCancelled&) {
    state = "CANCELED";
  } catch (const std::exception& e) {
    if (cancelled()) {
      state = "CANCELED";
    } else {
      state = "FAILED";
      failure = e.what();
    }
  } catch (...) {
    state = cancelled() ? "CANCELED" : "FAILED";
    if (state == "FAILED") failure = "unknown exception";
  }
  std::fflush(stdout);
  failure = ToValidUtf8(failure);  // user text; protobuf strings must be UTF-8
  if (state == "FAILED") {
    spdlog::warn("task {} failed: {}", who, failure);
  } else {
    spdlog::info("task {} {}", who, state);
  }
  done_.store(true);
  services_.report(tdd_, state, failure);
}

void Task::Invoke() {
  auto job = services_.load_job(tdd_);
  if (!job.ok()) throw std::runtime_error(std::string(job.status().message()));
  const StreamExecutionEnvironment& env = *job->env;
  const auto& vertex = tdd_.graph().vertices(tdd_.vertex_id());

  std::vector<OutputBinding> bindings;
  for (size_t i = 0; i < outputs_.size(); ++i) {
    const auto& e = tdd_.graph().edges(tdd_.outputs(static_cast<int>(i)).edge_index());
    OutputBinding b;
    b.source_node = e.source_node();
    b.target_node = e.target_node();
    b.target_input = e.target_input();
    b.partitioner = PartitionerFromName(e.partitioner());
    b.writer = outputs_[i].get();
    bindings.push_back(b);
  }
  std::vector<int> chain_nodes(vertex.node_ids().begin(), vertex.node_ids().end());
  std::unique_ptr<ChainTask> chain;
  try {
    chain = env.build_chain(chain_nodes, bindings, *this);
  } catch (const std::exception& e) {
    throw std::runtime_error(absl::StrCat("cannot build the operators of '", info_.task_name,
                                          "': ", e.what()));
  }
  {
    std::lock_guard<std::mutex> lock(chain_mu_);
    chain_ = chain.get();
  }
  struct ClearChain {
    Task* t;
    ~ClearChain() {
      std::lock_guard<std::mutex> lock(t->chain_mu_);
      t->chain_ = nullptr;
    }
  } clear{this};
  if (cancelled()) throw TaskCancelled();

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
  }

  chain->open();
  if (chain->is_source()) {
    chain->run_source();
  } else {
    while (!gate->AllFinished()) {
      if (cancelled()) throw TaskCancelled();
      auto next = gate->Poll(services_.buffer_timeout);
      if (!next) {
        FlushIdleOutputs();
        continue;
      }
      const Buffer& b = next->buffer;
      if (b.kind == BufferKind::kData) {
        chain->process_buffer(next->input, b.data);
      } else if (b.kind == BufferKind::kEndOfPartition) {
        gate->MarkFinished(next->channel);
      } else if (b.kind == kChannelError) {
        throw std::runtime_error(b.data);
      }
      // Watermarks and barriers are handled by the features that introduce them.
    }
  }
  if (cancelled()) throw TaskCancelled();
  chain->end_input();
  chain->close();
  for (auto& p : outputs_) p->BroadcastEvent(BufferKind::kEndOfPartition);
}

void Task::FlushIdleOutputs() {
  for (auto& p : outputs_) p->FlushAll();
}

}  // namespace sluice
