// Identifiers: job ids (32 lowercase hex characters, as Flink's), TaskManager ids, hashes.
#pragma once

#include <string>
#include <string_view>

namespace sluice {

// 128 random bits as 32 lowercase hex characters.
std::string NewJobId();
// A short random id for a TaskManager or JobManager instance.
std::string NewInstanceId(std::string_view prefix);
// True if `id` is 32 lowercase hex characters.
bool IsValidJobId(std::string_view id);
// SHA-256 of `data`, as 64 lowercase hex characters.
std::string Sha256Hex(std::string_view data);
// `s` with every byte that is not part of valid UTF-8 replaced by '?': for text from user code
// that goes into protobuf strings and JSON, which require UTF-8.
std::string ToValidUtf8(std::string_view s);
// Milliseconds since the Unix epoch.
int64_t NowMillis();

// The gRPC metadata key that carries the calling JobManager's id on its calls to a TaskManager,
// so that a TaskManager refuses the calls of a JobManager it stopped following (fencing: an old
// leader in high availability).
inline constexpr char kJobManagerIdMetadata[] = "sluice-jobmanager-id";

}  // namespace sluice
