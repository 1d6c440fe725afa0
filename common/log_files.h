// DaemonLogFiles: the log files a daemon writes, found by the daemon itself, for the REST API's
// log views (/jobmanager/logs, /taskmanagers/:id/logs).
//
// A daemon logs to its standard error and prints to its standard output; whoever starts it
// decides where they go. deploy/daemon.sh sends them to $SLUICE_LOG_DIR/sluice-<daemon>-<n>-
// <host>.log and .out and keeps older generations as FILE.1 (newest) .. FILE.N; the integration
// harness sends them to <dir>/jobmanager-<n>.log and .out. So the files are found from the
// descriptors: the file a descriptor writes to (/proc/self/fd/<fd>) when it is a regular file
// that still has that name, and next to it every regular file named FILE.<digits>. Nothing else
// is ever listed or read: a name asked for must equal one of the listed names exactly (it is never
// joined onto a folder as given), symbolic links are neither listed nor followed, and a file
// removed since is NotFound.
//
// The listing is made anew on every call (files rotate and grow while the daemon runs).
// Threads: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

// At most this many bytes of a log file are served: the end of a longer file.
inline constexpr int64_t kMaxLogBytesServed = int64_t{8} << 20;

struct LogFileInfo {
  std::string name;  // the file's name, no folder
  int64_t size = 0;  // bytes
  int64_t mtime_ms = 0;
};

// The end of one log file.
struct LogFileTail {
  std::string name;
  std::string data;  // bytes [offset, offset + data.size()) of the file
  int64_t size = 0;  // the file's size when it was read
  int64_t offset = 0;
};

// OK when `name` could be a listed file's name: printable ASCII (which names made by
// deploy/daemon.sh are), no '/', not "." or "..". InvalidArgument naming it otherwise.
absl::Status CheckLogFileName(std::string_view name);

class DaemonLogFiles {
 public:
  // The files descriptors `log_fd` (the log: standard error) and `out_fd` (standard output)
  // write to.
  explicit DaemonLogFiles(int log_fd = 2, int out_fd = 1) : log_fd_(log_fd), out_fd_(out_fd) {}

  // Every log file: the current log and output files and their rotated generations, ordered by
  // name with generations in number order (x.log, x.log.1, x.log.2, ..., x.out, x.out.1, ...).
  std::vector<LogFileInfo> List() const;
  // The name of the current log (standard error) or output (standard output) file; "" when that
  // descriptor does not write to a regular file that still has a name.
  std::string CurrentLogName() const;
  std::string CurrentOutName() const;

  // The last `max_bytes` bytes of the listed file named exactly `name`. InvalidArgument when
  // CheckLogFileName refuses the name, NotFound naming it for any other name that is not listed
  // now, or a file that is gone.
  absl::StatusOr<LogFileTail> Read(std::string_view name,
                                   int64_t max_bytes = kMaxLogBytesServed) const;
  // The end of the current log or output file; NotFound when that descriptor writes to no file.
  absl::StatusOr<LogFileTail> ReadCurrentLog(int64_t max_bytes = kMaxLogBytesServed) const;
  absl::StatusOr<LogFileTail> ReadCurrentOut(int64_t max_bytes = kMaxLogBytesServed) const;

 private:
  int log_fd_, out_fd_;
};

}  // namespace sluice
