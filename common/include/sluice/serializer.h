// Serializer<T>: how records cross a thread or network boundary.
//
// Built in for arithmetic types, enums, std::string, std::pair, std::tuple, std::vector,
// std::optional and std::map; user structs opt in with one line inside the struct:
//
//   struct Bid { int64_t auction; std::string bidder; double price;
//                SLUICE_FIELDS(auction, bidder, price) };
//
// The encoding is compact and not self-describing: both ends run the same job library, so they
// agree on the type. Reading past the end of a buffer throws SerializationError.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace sluice {

class __attribute__((visibility("default"))) SerializationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  ~SerializationError() override;
};

// Reads values back from a buffer of serialized records. Does not own the bytes.
class DataInput {
 public:
  DataInput(const char* data, size_t size) : pos_(data), end_(data + size) {}
  explicit DataInput(std::string_view s) : DataInput(s.data(), s.size()) {}

  bool at_end() const { return pos_ >= end_; }
  size_t remaining() const { return static_cast<size_t>(end_ - pos_); }

  void read_raw(void* out, size_t n) {
    if (remaining() < n) throw SerializationError("record buffer truncated");
    std::memcpy(out, pos_, n);
    pos_ += n;
  }
  std::string_view read_view(size_t n) {
    if (remaining() < n) throw SerializationError("record buffer truncated");
    std::string_view v(pos_, n);
    pos_ += n;
    return v;
  }
  uint64_t read_varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= end_) throw SerializationError("record buffer truncated in a length");
      uint8_t b = static_cast<uint8_t>(*pos_++);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    throw SerializationError("malformed length in record buffer");
  }

 private:
  const char* pos_;
  const char* end_;
};

// Appends serialized values to a std::string it does not own.
class DataOutput {
 public:
  explicit DataOutput(std::string& buf) : buf_(buf) {}
  void write_raw(const void* p, size_t n) { buf_.append(static_cast<const char*>(p), n); }
  void write_varint(uint64_t v) {
    char tmp[10];
    int n = 0;
    while (v >= 0x80) {
      tmp[n++] = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    tmp[n++] = static_cast<char>(v);
    buf_.append(tmp, n);
  }
  std::string& buffer() { return buf_; }

 private:
  std::string& buf_;
};

template <class T, class Enable = void>
struct Serializer {
  static_assert(sizeof(T) == 0,
                "sluice::Serializer<T> is not defined for this type: add SLUICE_FIELDS(...) to the "
                "struct, or specialise sluice::Serializer<T> with write() and read()");
};

// Declares the fields of a user struct for serialization and text output.
#define SLUICE_FIELDS(...)                                  \
  auto sluice_tie() { return std::tie(__VA_ARGS__); }       \
  auto sluice_tie() const { return std::tie(__VA_ARGS__); } \
  static constexpr const char* sluice_field_names() { return #__VA_ARGS__; }

namespace detail {
template <class T, class = void>
struct has_tie : std::false_type {};
template <class T>
struct has_tie<T, std::void_t<decltype(std::declval<const T&>().sluice_tie())>> : std::true_type {};
}  // namespace detail

template <class T>
struct Serializer<T, std::enable_if_t<std::is_arithmetic_v<T> || std::is_enum_v<T>>> {
  static void write(DataOutput& out, const T& v) { out.write_raw(&v, sizeof(T)); }
  static void read(DataInput& in, T& v) { in.read_raw(&v, sizeof(T)); }
};

// One byte, 0 or 1. A bool holding any other byte is undefined behaviour once read (and a
// corrupt or hostile buffer may carry one), so reading another byte throws.
template <>
struct Serializer<bool> {
  static void write(DataOutput& out, const bool& v) {
    const uint8_t b = v ? 1 : 0;
    out.write_raw(&b, 1);
  }
  static void read(DataInput& in, bool& v) {
    uint8_t b;
    in.read_raw(&b, 1);
    if (b > 1) throw SerializationError("malformed bool in record buffer");
    v = b == 1;
  }
};

template <>
struct Serializer<std::string> {
  static void write(DataOutput& out, const std::string& v) {
    out.write_varint(v.size());
    out.write_raw(v.data(), v.size());
  }
  static void read(DataInput& in, std::string& v) {
    size_t n = in.read_varint();
    v.assign(in.read_view(n));
  }
};

template <class A, class B>
struct Serializer<std::pair<A, B>> {
  static void write(DataOutput& out, const std::pair<A, B>& v) {
    Serializer<std::remove_const_t<A>>::write(out, v.first);
    Serializer<B>::write(out, v.second);
  }
  static void read(DataInput& in, std::pair<A, B>& v) {
    Serializer<std::remove_const_t<A>>::read(in, const_cast<std::remove_const_t<A>&>(v.first));
    Serializer<B>::read(in, v.second);
  }
};

template <class... Ts>
struct Serializer<std::tuple<Ts...>> {
  static void write(DataOutput& out, const std::tuple<Ts...>& v) {
    std::apply(
        [&](const auto&... f) { (Serializer<std::decay_t<decltype(f)>>::write(out, f), ...); }, v);
  }
  static void read(DataInput& in, std::tuple<Ts...>& v) {
    std::apply([&](auto&... f) { (Serializer<std::decay_t<decltype(f)>>::read(in, f), ...); }, v);
  }
};

template <class T, class A>
struct Serializer<std::vector<T, A>> {
  static void write(DataOutput& out, const std::vector<T, A>& v) {
    out.write_varint(v.size());
    for (const auto& e : v) Serializer<T>::write(out, e);
  }
  static void read(DataInput& in, std::vector<T, A>& v) {
    size_t n = in.read_varint();
    if (n > in.remaining()) throw SerializationError("vector length exceeds record buffer");
    v.clear();
    v.resize(n);
    for (auto& e : v) Serializer<T>::read(in, e);
  }
};

template <class T>
struct Serializer<std::optional<T>> {
  static void write(DataOutput& out, const std::optional<T>& v) {
    uint8_t present = v.has_value() ? 1 : 0;
    out.write_raw(&present, 1);
    if (v) Serializer<T>::write(out, *v);
  }
  static void read(DataInput& in, std::optional<T>& v) {
    uint8_t present;
    in.read_raw(&present, 1);
    if (present) {
      T t{};
      Serializer<T>::read(in, t);
      v = std::move(t);
    } else {
      v.reset();
    }
  }
};

template <class K, class V, class C, class A>
struct Serializer<std::map<K, V, C, A>> {
  static void write(DataOutput& out, const std::map<K, V, C, A>& m) {
    out.write_varint(m.size());
    for (const auto& [k, v] : m) {
      Serializer<K>::write(out, k);
      Serializer<V>::write(out, v);
    }
  }
  static void read(DataInput& in, std::map<K, V, C, A>& m) {
    size_t n = in.read_varint();
    if (n > in.remaining()) throw SerializationError("map size exceeds record buffer");
    m.clear();
    for (size_t i = 0; i < n; ++i) {
      K k{};
      V v{};
      Serializer<K>::read(in, k);
      Serializer<V>::read(in, v);
      m.emplace(std::move(k), std::move(v));
    }
  }
};

template <class T>
struct Serializer<T, std::enable_if_t<detail::has_tie<T>::value>> {
  static void write(DataOutput& out, const T& v) {
    std::apply(
        [&](const auto&... f) { (Serializer<std::decay_t<decltype(f)>>::write(out, f), ...); },
        v.sluice_tie());
  }
  static void read(DataInput& in, T& v) {
    std::apply([&](auto&... f) { (Serializer<std::decay_t<decltype(f)>>::read(in, f), ...); },
               v.sluice_tie());
  }
};

// Convenience: one value to bytes and back.
template <class T>
std::string serialize(const T& v) {
  std::string s;
  DataOutput out(s);
  Serializer<T>::write(out, v);
  return s;
}
template <class T>
T deserialize(std::string_view bytes) {
  DataInput in(bytes);
  T v{};
  Serializer<T>::read(in, v);
  if (!in.at_end()) throw SerializationError("trailing bytes after value");
  return v;
}

}  // namespace sluice
