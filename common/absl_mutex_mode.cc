// Debian's libabsl is built without NDEBUG, so absl::Mutex runs its debug-only deadlock detector
// on every Lock(): an update of a process-wide lock graph under a global lock, and an abort of the
// process on any lock-order cycle it sees, for Sluice's locks and for gRPC's. Builds of Sluice with
// NDEBUG (Release, RelWithDebInfo) turn it off before main, as Abseil's own release builds do;
// Debug builds keep it.
#include "absl/synchronization/mutex.h"

#ifdef NDEBUG
namespace {
const bool kDeadlockDetectionOff =
    (absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore), true);
}  // namespace
#endif

// Named by the linker flags, so that every program that links sluice_common takes this file.
extern "C" void sluice_absl_mutex_mode_anchor() {}
