// Test job: a map that throws when it sees the number --fail-at (default 5000). With
// --latin1, the message is not valid UTF-8 ("caf\xe9"), as text from user code may be.
#include <sluice/sluice.h>

#include <stdexcept>
#include <string>

SLUICE_JOB(env, args) {
  env.set_job_name("Throwing");
  int64_t fail_at = args.get_int("fail-at", 5000);
  std::string extra = args.get_bool("latin1", false) ? " caf\xe9" : "";
  env.generate_sequence(0, args.get_int("count", 100000) - 1)
      .map([fail_at, extra](int64_t n) {
        if (n == fail_at) throw std::runtime_error("boom at record " + std::to_string(n) + extra);
        return n;
      })
      .name("Exploding Map")
      .add_sink(sluice::DiscardingSink<int64_t>());
}
