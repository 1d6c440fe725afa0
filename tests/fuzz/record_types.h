// Record types the record and network-buffer targets decode: the built-in serializers of
// sluice/serializer.h alone and nested, and a user struct as a job declares one.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "sluice/serializer.h"

namespace sluice::fuzz {

enum class Side : uint8_t { kBuy, kSell };

struct Bid {
  int64_t auction = 0;
  std::string bidder;
  double price = 0;
  bool winning = false;
  Side side = Side::kBuy;
  std::optional<std::string> note;
  std::vector<int32_t> lots;
  SLUICE_FIELDS(auction, bidder, price, winning, side, note, lots)
};

// What a job's code does with a record it receives: reads every field (a bool as a bool).
inline uint64_t Use(int64_t v) { return static_cast<uint64_t>(v); }
inline uint64_t Use(int32_t v) { return static_cast<uint64_t>(v); }
inline uint64_t Use(double v) { return v > 0 ? 1 : 0; }
inline uint64_t Use(bool v) { return v ? 1 : 0; }
inline uint64_t Use(Side v) { return v == Side::kSell ? 1 : 0; }
inline uint64_t Use(const std::string& v) { return v.size(); }
template <class T>
uint64_t Use(const std::optional<T>& v) {
  return v ? 1 + Use(*v) : 0;
}
template <class A, class B>
uint64_t Use(const std::pair<A, B>& v) {
  return Use(v.first) + Use(v.second);
}
template <class... Ts>
uint64_t Use(const std::tuple<Ts...>& v) {
  return std::apply([](const auto&... f) { return (uint64_t{0} + ... + Use(f)); }, v);
}
template <class T>
uint64_t Use(const std::vector<T>& v) {
  uint64_t n = 0;
  for (const auto& e : v) n += Use(e);
  return n;
}
template <class K, class V>
uint64_t Use(const std::map<K, V>& v) {
  uint64_t n = 0;
  for (const auto& [k, e] : v) n += Use(k) + Use(e);
  return n;
}
inline uint64_t Use(const Bid& b) {
  return Use(b.auction) + Use(b.bidder) + Use(b.price) + Use(b.winning) + Use(b.side) +
         Use(b.note) + Use(b.lots);
}

}  // namespace sluice::fuzz
