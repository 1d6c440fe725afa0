// The CLI's savepoint commands, with Flink's wording:
//   sluice savepoint JOBID [DIR]            Savepoint completed. Path: <folder>
//   sluice savepoint -d PATH                disposes of a savepoint
//   sluice stop [-p DIR] [-d] JOBID         stop-with-savepoint (--drain: end the input first)
#pragma once

#include <string>

#include "client/job_client.h"

namespace sluice {

// `path` made absolute from the current folder (the JobManager, which reads the paths the CLI
// sends, has another); unchanged when empty or when that fails.
std::string AbsolutePath(const std::string& path);

// `dir` may be empty (the cluster's execution.checkpointing.savepoint-dir); a relative one is
// taken from the current folder. Each returns the process's exit code and prints the outcome.
int RunSavepoint(JobClient& client, const std::string& job_id, const std::string& dir);
int RunStop(JobClient& client, const std::string& job_id, const std::string& dir, bool drain);
int RunDisposeSavepoint(JobClient& client, const std::string& path);

}  // namespace sluice
