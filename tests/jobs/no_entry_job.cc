// Test job: a shared library without a SLUICE_JOB entry point.
extern "C" __attribute__((visibility("default"))) int not_a_job() { return 42; }
