// The frame of checkpoint storage's files (common/checkpoint_storage.cc): magic, format version,
// body size, body, CRC-32C. The metadata and state-file targets frame most inputs themselves, so
// that the fuzzer's changes reach the body's decoder instead of failing the checksum.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/checkpoint_storage.h"

namespace sluice::fuzz {

inline std::string FrameFile(std::string_view magic, uint32_t version, std::string_view body) {
  std::string out(magic.substr(0, 4));
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((version >> (8 * i)) & 0xff));
  const uint64_t size = body.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((size >> (8 * i)) & 0xff));
  out.append(body);
  const uint32_t crc = Crc32c(out);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  return out;
}

// How a metadata or state-file input is read: its first byte picks the mode.
//   even: the rest is a whole file, as found on disk (the frame's own checks);
//   odd:  the rest is a body, framed here with format version 1 + (byte / 2) % 3.
struct FramedInput {
  std::string file;
  uint32_t version = 0;  // 0 for a whole file
};
inline FramedInput ToFile(std::string_view magic, const uint8_t* data, size_t size) {
  FramedInput in;
  if (size == 0) return in;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if ((data[0] & 1) == 0) {
    in.file = std::string(rest);
  } else {
    in.version = 1 + (data[0] / 2) % 3;
    in.file = FrameFile(magic, in.version, rest);
  }
  return in;
}

}  // namespace sluice::fuzz
