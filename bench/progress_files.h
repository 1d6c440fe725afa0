// The reading side of the progress files (progress_file.h) for the benchmarks that run the
// keyed-state job: the sinks' files of one job, mapped read-only and read field by field.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "progress_file.h"

namespace sluice::bench {

// The sinks' progress files of one job, mapped read-only.
class ProgressFiles {
 public:
  // Creates `dir` and the files (the sinks map the same files when they open).
  static absl::StatusOr<std::unique_ptr<ProgressFiles>> Create(const std::string& dir,
                                                               int subtasks) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
    std::unique_ptr<ProgressFiles> f(new ProgressFiles());
    for (int s = 0; s < subtasks; ++s) {
      std::string path = ProgressFilePath(dir, s);
      int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
      if (fd < 0 || ::ftruncate(fd, sizeof(ProgressRecord)) != 0) {
        if (fd >= 0) ::close(fd);
        return absl::InternalError(absl::StrCat("cannot create ", path));
      }
      void* p = ::mmap(nullptr, sizeof(ProgressRecord), PROT_READ, MAP_SHARED, fd, 0);
      ::close(fd);
      if (p == MAP_FAILED) return absl::InternalError(absl::StrCat("cannot map ", path));
      f->maps_.push_back(static_cast<const ProgressRecord*>(p));
    }
    return f;
  }
  ~ProgressFiles() {
    for (const ProgressRecord* p : maps_) {
      ::munmap(const_cast<ProgressRecord*>(p), sizeof(ProgressRecord));
    }
  }

  std::vector<ProgressRecord> Read() const {
    std::vector<ProgressRecord> out;
    for (const ProgressRecord* p : maps_) {
      ProgressRecord r;
      r.attempt = std::atomic_ref<int64_t>(const_cast<int64_t&>(p->attempt))
                      .load(std::memory_order_acquire);
      r.records = Load(p->records);
      r.opened_us = Load(p->opened_us);
      for (int i = 0; i < kMaxProgressSources; ++i) r.max_due_us[i] = Load(p->max_due_us[i]);
      out.push_back(r);
    }
    return out;
  }
  int64_t Records() const {
    int64_t n = 0;
    for (const auto& r : Read()) n += r.records;
    return n;
  }

 private:
  ProgressFiles() = default;
  static int64_t Load(const int64_t& field) {
    return std::atomic_ref<int64_t>(const_cast<int64_t&>(field)).load(std::memory_order_relaxed);
  }
  std::vector<const ProgressRecord*> maps_;
};

}  // namespace sluice::bench
