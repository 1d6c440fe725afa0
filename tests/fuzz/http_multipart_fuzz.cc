// A multipart/form-data request body (common/http_routes.h: ParseMultipartFormData), as a jar
// upload sends it. The input is the Content-Type header's value, a newline, then the body; an
// input without a newline is a body under a fixed boundary.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/http_routes.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string content_type = "multipart/form-data; boundary=sluice";
  std::string body(input);
  if (size_t nl = input.find('\n'); nl != std::string_view::npos) {
    content_type = std::string(input.substr(0, nl));
    body = std::string(input.substr(nl + 1));
  }
  std::multimap<std::string, sluice::HttpFormPart> parts;
  absl::Status status = sluice::ParseMultipartFormData(content_type, body, &parts);
  SLUICE_FUZZ_CHECK(parts.size() <= sluice::kMaxParts);
  if (status.ok()) {
    for (const auto& [name, part] : parts) {
      SLUICE_FUZZ_CHECK(name == part.name);
      // A part's content is a view into the body, and lies within it.
      SLUICE_FUZZ_CHECK(part.content.data() >= body.data());
      SLUICE_FUZZ_CHECK(part.content.data() + part.content.size() <= body.data() + body.size());
    }
  }
  return 0;
}
