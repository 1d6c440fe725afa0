#include "client/cancel_on_exit.h"

#include <cstdio>
#include <cstdlib>
#include <thread>

#include "common/process.h"

namespace sluice {

CancelOnExit* CancelOnExit::Install() {
  BlockTerminationSignals();
  // Lives as long as the process: the waiting thread uses it until the exit.
  static CancelOnExit* const instance = new CancelOnExit();
  std::thread([] {
    const int sig = WaitForTerminationSignal();
    JobClient* client = nullptr;
    std::string job;
    {
      absl::MutexLock lock(&instance->mu_);
      instance->signal_ = sig;
      client = instance->client_;
      job = instance->job_id_;
    }
    if (client) CancelAndExit(client, job, sig);
    // Not submitted yet: Submitted() cancels the job as soon as it has an id.
    std::fprintf(stderr, "signal %d: the job is cancelled as soon as it is submitted\n", sig);
  }).detach();
  return instance;
}

void CancelOnExit::Submitted(JobClient* client, const std::string& job_id) {
  int sig = 0;
  {
    absl::MutexLock lock(&mu_);
    client_ = client;
    job_id_ = job_id;
    sig = signal_;
  }
  if (sig != 0) CancelAndExit(client, job_id, sig);
}

void CancelOnExit::CancelAndExit(JobClient* client, const std::string& job_id, int sig) {
  std::fprintf(stderr, "signal %d: cancelling job %s (-sae: the job ends with this client)\n", sig,
               job_id.c_str());
  absl::Status st = client->Cancel(job_id);
  if (st.ok()) {
    std::fprintf(stderr, "Cancelled job %s.\n", job_id.c_str());
  } else {
    std::fprintf(stderr, "error: cannot cancel job %s: %s\n", job_id.c_str(),
                 std::string(st.message()).c_str());
  }
  std::fflush(nullptr);
  std::_Exit(128 + sig);
}

}  // namespace sluice
