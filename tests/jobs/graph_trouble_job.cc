// Test job: an entry point that misbehaves while the graph is built, for the REST API's
// child-process graph builder (jobmanager/graph_builder.h).
//   --trouble crash   a segmentation fault
//   --trouble hang    sleeps for an hour
//   --trouble exit    ends the process with exit code 0, before any graph exists
//   --trouble print   writes to standard output and error, then builds a graph
//   (none)            the sequence job's graph: numbers 0..9 to a discarding sink
#include <sluice/sluice.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <thread>

SLUICE_JOB(env, args) {
  const std::string trouble = args.get("trouble", "");
  if (trouble == "crash") std::raise(SIGSEGV);
  if (trouble == "hang") std::this_thread::sleep_for(std::chrono::hours(1));
  if (trouble == "exit") std::exit(0);
  if (trouble == "print") {
    std::printf("garbage on standard output\n");
    std::fprintf(stderr, "garbage on standard error\n");
  }
  env.set_job_name("Graph trouble");
  env.generate_sequence(0, 9).map([](int64_t n) { return n + 1; }).print();
}
