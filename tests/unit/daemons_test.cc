// The JobManager and TaskManager services in process, driven through their gRPC interfaces:
// slot accounting across re-registration, repeated start and stop, malformed requests; and the
// helpers that keep user text and listeners safe.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "client/job_client.h"
#include "common/config.h"
#include "common/ids.h"
#include "jobmanager/job_manager.h"
#include "loopback_config.h"
#include "proto/jobmanager.grpc.pb.h"
#include "proto/taskmanager.grpc.pb.h"
#include "taskmanager/network.h"
#include "taskmanager/task_manager.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A one-vertex job graph for the library with hash `sha`.
proto::SubmitJobRequest OneVertexJob(const std::string& sha) {
  proto::SubmitJobRequest req;
  req.set_library_sha256(sha);
  auto* v = req.mutable_graph()->add_vertices();
  v->set_id(0);
  v->set_name("Only");
  v->set_parallelism(1);
  v->add_node_ids(0);
  req.mutable_graph()->set_max_parallelism(128);
  return req;
}

TEST(JobManagerTest, ReRegisteringTaskManagerKeepsItsFreeSlots) {
  auto jm = JobManager::Start(LoopbackConfig());
  ASSERT_TRUE(jm.ok()) << jm.status();
  auto stub = proto::JobManagerService::NewStub(
      grpc::CreateChannel((*jm)->address(), grpc::InsecureChannelCredentials()));
  // A TaskManager that registers but serves nothing: deploying to it fails.
  auto register_tm = [&] {
    grpc::ClientContext ctx;
    proto::RegisterTaskManagerRequest req;
    req.set_tm_id("tm-fake");
    req.set_address("127.0.0.1:1");
    req.set_num_slots(2);
    proto::RegisterTaskManagerResponse resp;
    return stub->RegisterTaskManager(&ctx, req, &resp);
  };
  ASSERT_TRUE(register_tm().ok());

  JobClient client((*jm)->address(), 10s);
  std::string lib = ReadFile(std::string(getenv("SLUICE_TEST_JOBS_DIR")) + "/libsequence_job.so");
  ASSERT_FALSE(lib.empty());
  auto sha = client.UploadLibrary(lib);
  ASSERT_TRUE(sha.ok()) << sha.status();
  auto id = client.Submit(OneVertexJob(*sha));
  ASSERT_TRUE(id.ok()) << id.status();
  auto st = client.WaitForTermination(*id);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->state(), proto::JOB_FAILED);
  EXPECT_THAT(st->failure(), HasSubstr("could not deploy"));

  auto ov = client.Overview();
  ASSERT_TRUE(ov.ok());
  EXPECT_EQ(ov->free_slots(), 2);
  // Registering again must not count the failed job's released slot as used.
  ASSERT_TRUE(register_tm().ok());
  ov = client.Overview();
  ASSERT_TRUE(ov.ok());
  EXPECT_EQ(ov->free_slots(), 2);
  (*jm)->Shutdown();
}

TEST(JobManagerTest, SubmitRefusesAMalformedLibraryHash) {
  auto jm = JobManager::Start(LoopbackConfig());
  ASSERT_TRUE(jm.ok()) << jm.status();
  JobClient client((*jm)->address(), 10s);
  auto id = client.Submit(OneVertexJob("../../etc/passwd"));
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(id.status().message(), HasSubstr("was not uploaded"));
}

TEST(JobManagerTest, StartsAndStopsRepeatedlyWithTheRestServer) {
  // The REST server's stop() used to be lost when it came before the server ran.
  for (int i = 0; i < 40; ++i) {
    auto jm = JobManager::Start(LoopbackConfig());
    ASSERT_TRUE(jm.ok()) << jm.status();
    EXPECT_GT((*jm)->rest_port(), 0);
    (*jm)->Shutdown();
  }
}

TEST(TaskManagerTest, RefusesMalformedJobIds) {
  Configuration conf = LoopbackConfig();
  ASSERT_TRUE(conf.Set("jobmanager.rpc.port", "1").ok());  // nobody there; it keeps retrying
  auto tm = TaskManager::Start(conf);
  ASSERT_TRUE(tm.ok()) << tm.status();
  auto stub = proto::TaskExecutorService::NewStub(
      grpc::CreateChannel((*tm)->address(), grpc::InsecureChannelCredentials()));
  for (const char* id : {"", "abc", "0123456789ABCDEF0123456789ABCDEF"}) {
    SCOPED_TRACE(id);
    proto::CancelJobTasksRequest req;
    req.set_job_id(id);
    proto::Empty e;
    grpc::ClientContext c1;
    EXPECT_EQ(stub->CancelJobTasks(&c1, req, &e).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    grpc::ClientContext c2;
    EXPECT_EQ(stub->ReleaseJob(&c2, req, &e).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    proto::TaskDeploymentDescriptor tdd;
    tdd.mutable_task()->set_job_id(id);
    grpc::ClientContext c3;
    EXPECT_EQ(stub->DeployTask(&c3, tdd, &e).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  (*tm)->Shutdown();
}

// The id a JobManager gives out on registration (a fake TaskManager's).
std::string JobManagerId(const std::string& address) {
  auto stub = proto::JobManagerService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  proto::RegisterTaskManagerRequest req;
  req.set_tm_id("tm-probe");
  req.set_address("127.0.0.1:1");
  req.set_num_slots(1);
  proto::RegisterTaskManagerResponse resp;
  EXPECT_TRUE(stub->RegisterTaskManager(&ctx, req, &resp).ok());
  return resp.jm_id();
}

TEST(TaskManagerTest, RefusesTheJobManagerItStoppedFollowing) {
  auto old_leader = JobManager::Start(LoopbackConfig());
  ASSERT_TRUE(old_leader.ok()) << old_leader.status();
  auto new_leader = JobManager::Start(LoopbackConfig());
  ASSERT_TRUE(new_leader.ok()) << new_leader.status();
  Configuration conf = LoopbackConfig();
  ASSERT_TRUE(conf.Set("jobmanager.rpc.port", std::to_string((*old_leader)->port())).ok());
  auto tm = TaskManager::Start(conf);
  ASSERT_TRUE(tm.ok()) << tm.status();
  JobClient old_client((*old_leader)->address(), 10s);
  for (int i = 0; i < 200; ++i) {
    auto ov = old_client.Overview();
    if (ov.ok() && ov->task_managers_size() == 1) break;
    std::this_thread::sleep_for(20ms);
  }
  const std::string old_id = JobManagerId((*old_leader)->address());
  const std::string new_id = JobManagerId((*new_leader)->address());
  auto stub = proto::TaskExecutorService::NewStub(
      grpc::CreateChannel((*tm)->address(), grpc::InsecureChannelCredentials()));
  auto cancel_from = [&](const std::string& jm_id) {
    grpc::ClientContext ctx;
    ctx.AddMetadata(kJobManagerIdMetadata, jm_id);
    proto::CancelJobTasksRequest req;
    req.set_job_id("0123456789abcdef0123456789abcdef");
    proto::Empty e;
    return stub->CancelJobTasks(&ctx, req, &e);
  };
  EXPECT_TRUE(cancel_from(old_id).ok());  // the one it follows
  (*tm)->SetJobManagerAddress((*new_leader)->address());
  grpc::Status refused = cancel_from(old_id);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.error_message(), HasSubstr("fenced"));
  EXPECT_THAT(refused.error_message(), HasSubstr(old_id));
  // The new leader's calls are taken, before and after the TaskManager registered there.
  EXPECT_TRUE(cancel_from(new_id).ok());
  (*tm)->Shutdown();
  (*new_leader)->Shutdown();
  (*old_leader)->Shutdown();
}

TEST(TextTest, ToValidUtf8KeepsValidTextAndReplacesTheRest) {
  EXPECT_EQ(ToValidUtf8("plain"), "plain");
  EXPECT_EQ(ToValidUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(ToValidUtf8("caf\xe9"), "caf?");           // Latin-1
  EXPECT_EQ(ToValidUtf8("\xc3"), "?");                 // truncated
  EXPECT_EQ(ToValidUtf8("\xc0\xaf"), "??");            // overlong
  EXPECT_EQ(ToValidUtf8("\xed\xa0\x80"), "???");       // surrogate
  EXPECT_EQ(ToValidUtf8("\xf4\x90\x80\x80"), "????");  // above U+10FFFF
  EXPECT_EQ(ToValidUtf8(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(NetworkLifetimeTest, GateCanGoWhileItsProducerKeepsPushing) {
  // A consumer that stops early destroys its gate while the producer still pushes into the
  // queue the gate listened to; the producer must never call into the destroyed gate.
  for (int round = 0; round < 200; ++round) {
    PartitionRegistry registry;
    ChannelCache channels;
    auto partition = std::make_shared<ResultPartition>("0123456789abcdef0123456789abcdef.e0.s0.a0",
                                                       1, 64, 4, nullptr);
    registry.Register(partition);
    std::atomic<bool> stop{false};
    std::thread producer([&] {
      while (!stop.load()) {
        Buffer b;
        b.data = "x";
        if (!partition->subpartition(0)->Push(std::move(b), &stop)) return;
      }
    });
    std::atomic<bool> cancelled{false};
    InputChannelSpec spec;
    spec.partition_id = partition->id();
    auto gate = InputGate::Create({spec}, registry, channels, 4, &cancelled);
    ASSERT_TRUE(gate.ok());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE((*gate)->Poll(1s).has_value());
    gate->reset();
    // Drain so the producer keeps running past the gate's end, then stop it.
    auto q = partition->subpartition(0);
    for (int i = 0; i < 20; ++i) q->PopWait(1ms);
    stop.store(true);
    q->Close();
    producer.join();
  }
}

}  // namespace
}  // namespace sluice
