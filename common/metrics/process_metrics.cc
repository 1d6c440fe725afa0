#include "common/metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/times.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

namespace sluice::metrics {
namespace {

int64_t CpuTimeMs() {
  struct tms t;
  if (::times(&t) == static_cast<clock_t>(-1)) return 0;
  const long ticks = ::sysconf(_SC_CLK_TCK);
  return ticks > 0 ? static_cast<int64_t>(t.tms_utime + t.tms_stime) * 1000 / ticks : 0;
}

int64_t ResidentBytes() {
  std::ifstream f("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(f >> size >> resident)) return 0;
  return resident * ::sysconf(_SC_PAGESIZE);
}

int64_t Threads() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoll(line.substr(8));
  }
  return 0;
}

int64_t OpenFiles() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return 0;
  int64_t n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the directory's own descriptor
}

}  // namespace

ProcessStats ReadProcessStats() {
  ProcessStats s;
  s.cpu_time_ms = CpuTimeMs();
  s.rss_bytes = ResidentBytes();
  s.threads = Threads();
  s.open_files = OpenFiles();
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0) s.max_files = static_cast<int64_t>(r.rlim_cur);
  return s;
}

void RegisterProcessMetrics(MetricGroup& group) {
  group.AddCounter("Status.Process.CPU.Time", CpuTimeMs);
  auto cpu = group.AddMeter("Status.Process.CPU.TimeMsPerSecond", CpuTimeMs);
  if (cpu) group.AddGauge("Status.Process.CPU.Load", [cpu] { return cpu->Rate() / 1000.0; });
  group.AddGauge("Status.Process.Memory.RSS", [] { return static_cast<double>(ResidentBytes()); });
  group.AddGauge("Status.Process.Threads.Count", [] { return static_cast<double>(Threads()); });
  group.AddGauge("Status.Process.FileDescriptors.Count",
                 [] { return static_cast<double>(OpenFiles()); });
  group.AddGauge("Status.Process.FileDescriptors.Max", [] {
    rlimit r{};
    return ::getrlimit(RLIMIT_NOFILE, &r) == 0 ? static_cast<double>(r.rlim_cur) : 0.0;
  });
}

}  // namespace sluice::metrics
