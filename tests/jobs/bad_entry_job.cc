// Test job: an entry point that throws while building the graph.
#include <sluice/sluice.h>

#include <stdexcept>

SLUICE_JOB(env, args) { throw std::runtime_error("this entry point always fails"); }
