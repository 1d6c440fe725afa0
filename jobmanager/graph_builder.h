// Builds the job graph of an uploaded library in a child process, for the REST API's
// /jars/:jarid/plan and /run. The JobManager never loads user code into its own process: the
// child is the `sluice` CLI beside sluice-jobmanager, run as `sluice graph` (the code `sluice
// run` and `sluice info` run), which writes the graph to files of a temporary folder. A
// library that crashes, hangs, exits or throws while building its graph ends only the child;
// one that runs past the time limit is killed with its process group.
//
// Threads: any; each call has its own child and folder.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/jobmanager.pb.h"

namespace sluice {

struct GraphBuildRequest {
  std::string library;            // the library's path
  std::vector<std::string> args;  // the job's arguments
  // Default parallelism of the job's operators (the CLI's -p). Default: 1.
  int parallelism = 1;
  // Settings the builder reads as the CLI reads -D (pipeline.max-parallelism, ...). Default:
  // none.
  std::map<std::string, std::string> config;
  // The child is killed after this. Default: 30 s.
  std::chrono::milliseconds timeout{30000};
  // A folder of the JobManager's own (created 0700 if missing) where the call's temporary folder
  // goes (removed at its end). Default: the system's temporary directory.
  std::string work_dir;
};

// The most the builder may write: its graph, and the end of its error output that is read back.
inline constexpr size_t kMaxBuiltGraphBytes = size_t{64} << 20;
inline constexpr size_t kBuilderErrorTailBytes = size_t{64} << 10;

// Runs the builder and reads what it wrote. InvalidArgument with the builder's own message
// when the library cannot be loaded or its entry point fails, or saying that it crashed
// (naming the signal), exited without a graph, or was killed after `timeout` (naming
// web.submit.timeout); Internal when the builder cannot be started or wrote a graph that is too
// large or cannot be read. Its standard output is discarded.
absl::StatusOr<proto::JobGraph> BuildGraphInChild(const GraphBuildRequest& request);

// The builder: `sluice` in the folder of the running executable.
std::string GraphBuilderPath();

}  // namespace sluice
