// Keys, key groups and the pointwise connection pattern, shared by the SDK and the runtime.
//
// A key maps to a key group (hash(key) % max_parallelism); each parallel subtask owns a contiguous
// range of key groups. KeyHash is stable across processes and builds: strings and integers are
// hashed by their bytes with a fixed function, and other types by their serialized bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

#include "sluice/serializer.h"

namespace sluice {

// MurmurHash3's 64-bit finaliser: spreads the bits of an integer.
inline uint64_t mix64(uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

// FNV-1a over bytes, finished by mix64.
inline uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return mix64(h);
}

template <class K, class Enable = void>
struct KeyHash {
  uint64_t operator()(const K& k) const { return hash_bytes(serialize(k)); }
};
template <class K>
struct KeyHash<K, std::enable_if_t<std::is_integral_v<K> || std::is_enum_v<K>>> {
  uint64_t operator()(const K& k) const { return mix64(static_cast<uint64_t>(k)); }
};
template <>
struct KeyHash<std::string> {
  uint64_t operator()(const std::string& k) const { return hash_bytes(k); }
};

// Default for pipeline.max-parallelism.
inline constexpr int kDefaultMaxParallelism = 128;

inline int key_group_for_hash(uint64_t hash, int max_parallelism) {
  return static_cast<int>(hash % static_cast<uint64_t>(max_parallelism));
}

// The subtask that owns a key group (Flink's formula).
inline int subtask_for_key_group(int key_group, int max_parallelism, int parallelism) {
  return static_cast<int>(static_cast<int64_t>(key_group) * parallelism / max_parallelism);
}

// The key groups [first, last] owned by a subtask: the inverse of subtask_for_key_group.
struct KeyGroupRange {
  int first;
  int last;  // inclusive; last < first means empty
  int size() const { return last - first + 1; }
};
inline KeyGroupRange key_group_range(int subtask, int max_parallelism, int parallelism) {
  int first = static_cast<int>((static_cast<int64_t>(subtask) * max_parallelism + parallelism - 1) /
                               parallelism);
  int last =
      static_cast<int>((static_cast<int64_t>(subtask + 1) * max_parallelism + parallelism - 1) /
                       parallelism) -
      1;
  return {first, last};
}

// Pointwise connections (forward and rescale edges). When the producer side is at least as wide,
// each producer feeds exactly one consumer; otherwise each producer feeds a contiguous group.
struct SubtaskRange {
  int begin;
  int end;  // exclusive
};
inline SubtaskRange pointwise_consumers(int producer, int producers, int consumers) {
  if (producers >= consumers) {
    int c = static_cast<int>(static_cast<int64_t>(producer) * consumers / producers);
    return {c, c + 1};
  }
  // consumers i with i * producers / consumers == producer
  int begin =
      static_cast<int>((static_cast<int64_t>(producer) * consumers + producers - 1) / producers);
  int end = static_cast<int>((static_cast<int64_t>(producer + 1) * consumers + producers - 1) /
                             producers);
  return {begin, end};
}
inline SubtaskRange pointwise_producers(int consumer, int producers, int consumers) {
  if (producers >= consumers) {
    int begin =
        static_cast<int>((static_cast<int64_t>(consumer) * producers + consumers - 1) / consumers);
    int end = static_cast<int>((static_cast<int64_t>(consumer + 1) * producers + consumers - 1) /
                               consumers);
    return {begin, end};
  }
  int p = static_cast<int>(static_cast<int64_t>(consumer) * producers / consumers);
  return {p, p + 1};
}

}  // namespace sluice
