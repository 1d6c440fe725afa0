#include "client/savepoint_commands.h"

#include <cstdio>
#include <filesystem>

#include "common/ids.h"

namespace sluice {
namespace {

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
  return 1;
}

int CheckJobId(const std::string& job_id) {
  if (IsValidJobId(job_id)) return 0;
  std::fprintf(stderr,
               "error: '%s' is not a job id (32 lowercase hex characters; see sluice list)\n",
               job_id.c_str());
  return 1;
}

int Trigger(JobClient& client, const proto::TriggerSavepointRequest& req) {
  auto id = client.TriggerSavepoint(req);
  if (!id.ok()) return Fail(id.status());
  std::printf("Waiting for response...\n");
  std::fflush(stdout);
  auto path = client.WaitForSavepoint(req.job_id(), *id);
  if (!path.ok()) return Fail(path.status());
  std::printf("Savepoint completed. Path: %s\n", path->c_str());
  return 0;
}

}  // namespace

std::string AbsolutePath(const std::string& path) {
  if (path.empty()) return path;
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

int RunSavepoint(JobClient& client, const std::string& job_id, const std::string& dir) {
  if (int rc = CheckJobId(job_id)) return rc;
  proto::TriggerSavepointRequest req;
  req.set_job_id(job_id);
  req.set_target_directory(AbsolutePath(dir));
  std::printf("Triggering savepoint for job %s.\n", job_id.c_str());
  int rc = Trigger(client, req);
  if (rc == 0)
    std::printf("You can resume your program from this savepoint with the run command.\n");
  return rc;
}

int RunStop(JobClient& client, const std::string& job_id, const std::string& dir, bool drain) {
  if (int rc = CheckJobId(job_id)) return rc;
  proto::TriggerSavepointRequest req;
  req.set_job_id(job_id);
  req.set_target_directory(AbsolutePath(dir));
  req.set_stop(true);
  req.set_drain(drain);
  std::printf("Suspending job \"%s\" with a savepoint.\n", job_id.c_str());
  return Trigger(client, req);
}

int RunDisposeSavepoint(JobClient& client, const std::string& path) {
  std::string p = AbsolutePath(path);
  std::printf("Disposing savepoint '%s'.\n", p.c_str());
  absl::Status st = client.DisposeSavepoint(p);
  if (!st.ok()) return Fail(st);
  std::printf("Savepoint '%s' disposed.\n", p.c_str());
  return 0;
}

}  // namespace sluice
