// Integration-test piece for Kafka: a sluice-kafka-dev process (librdkafka's mock cluster on
// 127.0.0.1, connectors/kafka/dev/) as a child of the test, and kcat (/usr/bin/kcat) as a client
// independent of Sluice to write and read its topics.
//
// The tool runs from $SLUICE_BIN_DIR, with its standard output and error in files of a temporary
// folder. Commands go through its --control FIFO; each one's answer is the next line of its
// standard output (the first line is the bootstrap list). Every wait is bounded; the process is
// stopped by its pid, and dies with the test process (PR_SET_PDEATHSIG, see harness.h).
//
// Single-threaded use, like harness.h.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "integration/harness.h"

namespace sluice::itest {

class KafkaDev {
 public:
  KafkaDev() = default;
  // Stop(); prints the tool's error log (tail) when the test failed; removes the folder (kept
  // with SLUICE_KEEP_TEST_DIR=1).
  ~KafkaDev();
  KafkaDev(const KafkaDev&) = delete;
  KafkaDev& operator=(const KafkaDev&) = delete;

  // Starts `brokers` mock brokers with the topics {name, partitions} (replication factor
  // min(brokers, 3)) and waits (at most 20 s) for the bootstrap line. Error with the tool's log
  // when it exits or does not answer in time.
  absl::Status Start(int brokers, const std::vector<std::pair<std::string, int>>& topics);
  // "127.0.0.1:port,..." as the tool printed it; "" before Start().
  const std::string& bootstrap() const { return bootstrap_; }

  // Sends one command line (see sluice-kafka-dev --help) and waits up to `timeout` for its
  // answer. OK on `ok`; InvalidArgument carrying the whole `error: ...` line on an error answer;
  // DeadlineExceeded when no answer came; Unavailable when the tool is not running.
  absl::Status Command(const std::string& line,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // SIGTERM, up to 10 s for the exit, then SIGKILL. OK when the tool exited with 0 by itself (or
  // was never started); else an error naming the exit code or the kill. Idempotent.
  absl::Status Stop();

  bool Running();
  pid_t pid() const;
  // The exit code once the tool has exited and been reaped.
  std::optional<int> exit_code() const;
  // The tool's standard output (bootstrap line, then one answer per command) and error.
  std::string Output() const;
  std::string Log() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::string control_path_;
  int control_fd_ = -1;
  std::unique_ptr<ChildProcess> child_;
  std::string bootstrap_;
  size_t answered_ = 0;  // answer lines consumed after the bootstrap line
  bool stopped_ = false;
  absl::Status stop_status_;
};

// ---- kcat, an independent client ----

// Produces `lines`, one record each, to `topic` with `kcat -P -b B -t T [-p P] [-K sep]` (with
// `key_separator`, each line is KEY<sep>VALUE; without `partition`, kcat's partitioner picks).
// OK when kcat exits 0 within `timeout`, i.e. every record was acknowledged.
absl::Status KcatProduce(const std::string& bootstrap, const std::string& topic,
                         const std::vector<std::string>& lines,
                         std::optional<int> partition = std::nullopt,
                         std::optional<std::string> key_separator = std::nullopt,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Reads the whole topic, from the beginning of every partition to its end (`kcat -C -o beginning
// -e -q`): one value per record, partitions interleaved as kcat read them, each partition in
// offset order. A value containing a newline comes back as several lines.
absl::StatusOr<std::vector<std::string>> KcatConsume(
    const std::string& bootstrap, const std::string& topic,
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

struct KcatRecord {
  int partition = 0;
  int64_t offset = 0;
  std::string key;  // "" when the record has none
  std::string value;
};
// As KcatConsume, with partition, offset and key, sorted by (partition, offset). Keys must hold
// no tab and values no newline.
absl::StatusOr<std::vector<KcatRecord>> KcatConsumeRecords(
    const std::string& bootstrap, const std::string& topic,
    std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace sluice::itest
