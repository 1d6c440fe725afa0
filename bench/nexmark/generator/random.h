// The generator's random numbers: one small stream per event, seeded by the event's id, so that
// any event can be made alone, by any subtask, in any order (as the reference seeds its
// java.util.Random with the event id; the sequence itself differs, see README.md).
#pragma once

#include <cstdint>

namespace nexmark {

// SplitMix64: a 64-bit counter through a strong mixing function.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) : state_(Mix(seed ^ Mix(stream + 0x9e3779b97f4a7c15ULL))) {}

  uint64_t next_u64() {
    state_ += 0x9e3779b97f4a7c15ULL;
    return Mix(state_);
  }
  // Uniform in [0, bound); bound > 0.
  int64_t next_int(int64_t bound) {
    return static_cast<int64_t>(
        (static_cast<unsigned __int128>(next_u64()) * static_cast<uint64_t>(bound)) >> 64);
  }
  // Uniform in [0, 1).
  double next_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

  static uint64_t Mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  uint64_t state_;
};

}  // namespace nexmark
