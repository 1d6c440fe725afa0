// A subtask's state file (common/checkpoint_storage.h: ReadStateFile), then what a restoring
// task does with it: the redistribution of its snapshots over new subtasks (NarrowSnapshots) and
// the restore of each into the heap backend and the operator-state store, declaring the states
// that make_corpus.cc writes (so their entries are deserialized). See framed_file.h for how the
// input becomes the file.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/checkpoint_storage.h"
#include "common/state_redistribution.h"
#include "framed_file.h"
#include "fuzz_support.h"
#include "sluice/internal/heap_backend.h"
#include "sluice/state.h"

namespace {

constexpr int kMaxParallelism = 128;

// Restores `s` as one subtask of `parallelism` would; the errors a corrupt file may give are
// exceptions the task turns into a failure.
void Restore(const sluice::internal::OperatorSnapshot& s, int subtask, int parallelism) {
  using namespace sluice;
  try {
    internal::HeapKeyedStateBackend keyed(key_group_range(subtask, kMaxParallelism, parallelism),
                                          [] { return int64_t{1000}; });
    keyed.restore(s);
    auto& v = keyed.get<ValueState<std::string>>(ValueStateDescriptor<std::string>("v"));
    auto& l = keyed.get<ListState<int>>(ListStateDescriptor<int>("l"));
    auto& m = keyed.get<MapState<std::string, int>>(MapStateDescriptor<std::string, int>("m"));
    auto& c = keyed.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("count"));
    keyed.for_each_key([&](const std::string&) {
      (void)v.value();
      (void)l.get();
      (void)c.value();
      for (const auto& [k, n] : m.entries()) (void)n;
    });
    internal::OperatorSnapshot again;
    keyed.snapshot(again);

    internal::OperatorStateStore ops;
    ops.restore(s);
    (void)ops.get_list_state(ListStateDescriptor<int64_t>("offsets")).get();
    (void)ops.get_list_state(ListStateDescriptor<std::string>("names")).get();
  } catch (const SerializationError&) {
  } catch (const std::invalid_argument&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  sluice::fuzz::FramedInput in = sluice::fuzz::ToFile("SLST", data, size);
  sluice::fuzz::ScratchFile file("state", in.file);
  auto snapshots = sluice::ReadStateFile(file.path());
  if (!snapshots.ok()) {
    SLUICE_FUZZ_CHECK(!snapshots.status().message().empty());
    return 0;
  }
  // The same file as both old subtasks' of two, read by each of three new subtasks.
  const int parallelism = 1 + data[0] % 3;
  std::vector<std::vector<sluice::internal::OperatorSnapshot>> by_subtask{*snapshots, *snapshots};
  for (int subtask = 0; subtask < parallelism; ++subtask) {
    for (const auto& s :
         sluice::NarrowSnapshots(by_subtask, subtask, parallelism, kMaxParallelism)) {
      Restore(s, subtask, parallelism);
    }
  }
  return 0;
}
