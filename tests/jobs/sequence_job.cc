// Test job: a keyed running sum over a number sequence, for cancel, kill and load tests.
//   --count N        numbers 0..N-1 (default 2^32: minutes of work; the sums stay in int64_t)
//   --keys K         key = n % K (default 100)
//   --sleep-us U     microseconds each sink record takes (a deliberately slow sink; default 0)
//   --output DIR     write `key,sum` lines (default: discard)
#include <sluice/connectors/files.h>
#include <sluice/sluice.h>

#include <chrono>
#include <limits>
#include <thread>
#include <utility>

using KV = std::pair<int64_t, int64_t>;

namespace {
class SlowDiscard : public sluice::SinkFunction<KV> {
 public:
  explicit SlowDiscard(int64_t us) : us_(us) {}
  void invoke(const KV&) override {
    if (us_ > 0) std::this_thread::sleep_for(std::chrono::microseconds(us_));
  }

 private:
  int64_t us_;
};
}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Sequence");
  // Not more: a key's running sum of numbers below 2^32 fits int64_t, a larger one would overflow.
  int64_t count = args.get_int("count", int64_t{1} << 32);
  int64_t keys = args.get_int("keys", 100);
  auto sums = env.generate_sequence(0, count - 1)
                  .map([keys](int64_t n) { return KV(n % keys, n); })
                  .key_by([](const KV& kv) { return kv.first; })
                  .sum<1>();
  if (args.has("output")) {
    sums.add_sink(sluice::files::TextFileSink(args.get("output")));
  } else {
    sums.add_sink(SlowDiscard(args.get_int("sleep-us", 0)));
  }
}
