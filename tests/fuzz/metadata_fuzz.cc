// A checkpoint's _metadata file (common/checkpoint_storage.h: ReadMetadata), which a restore
// reads from a path a user names. See framed_file.h for how the input becomes the file; a
// metadata body is a serialized proto::CheckpointMetadata. The file is read by its path or, on
// every other input, by its chk-<n> directory.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/checkpoint_storage.h"
#include "framed_file.h"
#include "fuzz_support.h"
#include "google/protobuf/stubs/logging.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf logs every string field that is not UTF-8; the parse fails either way.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  sluice::fuzz::FramedInput in = sluice::fuzz::ToFile("SLMD", data, size);
  sluice::fuzz::ScratchFile file("_metadata", in.file);
  absl::StatusOr<sluice::proto::CheckpointMetadata> meta =
      sluice::ReadMetadata(size % 2 == 0 ? file.path() : sluice::fuzz::ScratchDir());
  if (!meta.ok()) {
    SLUICE_FUZZ_CHECK(!meta.status().message().empty());
    return 0;
  }
  // What was read is a whole message again.
  std::string again;
  SLUICE_FUZZ_CHECK(meta->SerializeToString(&again));
  return 0;
}
