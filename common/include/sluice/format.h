// Formatter<T>: how records become text lines for print() and files::TextFileSink.
// Strings as they are, numbers in decimal, pairs, tuples and SLUICE_FIELDS structs as their
// fields joined by commas, vectors in brackets; any type with operator<< uses it.
#pragma once

#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/serializer.h"

namespace sluice {

namespace detail {
template <class T, class = void>
struct has_ostream : std::false_type {};
template <class T>
struct has_ostream<T,
                   std::void_t<decltype(std::declval<std::ostream&>() << std::declval<const T&>())>>
    : std::true_type {};
}  // namespace detail

template <class T>
void format_to(std::string& out, const T& v);
template <class A, class B>
void format_special(std::string& out, const std::pair<A, B>& v);
template <class... Ts>
void format_special(std::string& out, const std::tuple<Ts...>& v);
template <class T>
void format_special(std::string& out, const std::vector<T>& v);

template <class Tuple>
void format_fields(std::string& out, const Tuple& t) {
  bool first = true;
  std::apply(
      [&](const auto&... f) { ((out += first ? "" : ",", first = false, format_to(out, f)), ...); },
      t);
}

template <class T>
void format_to(std::string& out, const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    out += v;
  } else if constexpr (std::is_same_v<T, bool>) {
    out += v ? "true" : "false";
  } else if constexpr (std::is_integral_v<T>) {
    out += std::to_string(v);
  } else if constexpr (std::is_floating_point_v<T>) {
    std::ostringstream os;
    os << v;
    out += os.str();
  } else if constexpr (detail::has_tie<T>::value) {
    format_fields(out, v.sluice_tie());
  } else if constexpr (detail::has_ostream<T>::value) {
    std::ostringstream os;
    os << v;
    out += os.str();
  } else {
    format_special(out, v);
  }
}

template <class A, class B>
void format_special(std::string& out, const std::pair<A, B>& v) {
  format_to(out, v.first);
  out += ',';
  format_to(out, v.second);
}
template <class... Ts>
void format_special(std::string& out, const std::tuple<Ts...>& v) {
  format_fields(out, v);
}
template <class T>
void format_special(std::string& out, const std::vector<T>& v) {
  out += '[';
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    format_to(out, v[i]);
  }
  out += ']';
}

template <class T>
std::string to_text(const T& v) {
  std::string s;
  format_to(s, v);
  return s;
}

}  // namespace sluice
