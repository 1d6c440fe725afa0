// ThreadSanitizer builds only: makes absl::Mutex, absl::CondVar and absl::Notification visible
// to ThreadSanitizer when Abseil itself is not built with it (Debian's libabsl is not).
//
// ThreadSanitizer learns of synchronization from instrumented code and from the functions it
// intercepts (pthread_mutex_lock, ...). An uninstrumented absl::Mutex synchronizes through its
// own atomics and futex calls, which it cannot see, so every field guarded by one would be
// reported as a data race. This file defines the entry points of those classes in the program
// itself, where they take precedence over the shared library's: each calls the library's own
// definition (found with dlsym(RTLD_NEXT)) and adds the happens-before edge the lock gives,
// __tsan_release(mutex) before a release and __tsan_acquire(mutex) after an acquire. That is a
// plain happens-before annotation, not lock ownership, so an entry point missing here (or called
// inside the library) costs at most a missed edge, never a false "unlock of an unlocked mutex".
// A condition passed to Await or LockWhen is wrapped to acquire before it reads guarded fields.
// The program's own absl calls and those of other shared libraries (gRPC) go through here.
//
// CMakeLists.txt compiles it, with SLUICE_TSAN_ABSL_SYNC defined, into ThreadSanitizer builds
// only, and without instrumentation of its own: the library reads a waiter's Condition object from
// whichever thread evaluates it, which ThreadSanitizer would take for a race on this file's stack.
#ifdef SLUICE_TSAN_ABSL_SYNC

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/base/options.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

#if !ABSL_OPTION_USE_INLINE_NAMESPACE
#error "tsan_absl_sync.cc spells Abseil's symbols with its inline namespace"
#endif

namespace {

#define SLUICE_TSAN_STR2(x) #x
#define SLUICE_TSAN_STR(x) SLUICE_TSAN_STR2(x)

// The library's definition of a member of absl::<inline namespace>: `nested` is "_ZN" (or
// "_ZNK" for a const member) and `rest` the mangled name after the namespaces.
template <class Fn>
Fn Real(const char* nested, const char* rest) {
  const std::string ns = SLUICE_TSAN_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name = std::string(nested) + "4absl" + std::to_string(ns.size()) + ns + rest;
  void* fn = ::dlsym(RTLD_NEXT, name.c_str());
  if (fn == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: Abseil has no %s\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<Fn>(fn);
}

#define SLUICE_REAL(type, nested, rest) static const auto real = Real<type>(nested, rest)

// A waiter's condition is evaluated under the mutex, inside the library, before the wait returns
// (by the waiter, or by the thread that releases the mutex) and the mutex may be released again
// right after: it reads guarded fields, so it is bracketed like a critical section of its own.
struct AcquiringCondition {
  absl::Mutex* mu;
  const absl::Condition* cond;
  static bool Eval(AcquiringCondition* c) {
    __tsan_acquire(c->mu);
    bool met = c->cond->Eval();
    __tsan_release(c->mu);
    return met;
  }
};

}  // namespace

// Reports from interceptors (memcpy, epoll_wait, ...) called inside uninstrumented libraries
// (gRPC, RocksDB, Abseil) race with nothing this build can see; TSAN_OPTIONS still overrides.
extern "C" const char* __tsan_default_options() { return "ignore_noninstrumented_modules=1"; }

// Named by the linker flags, so that every program that links sluice_common takes this file.
extern "C" void sluice_tsan_absl_sync_anchor() {}

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(void (*)(Mutex*), "_ZN", "5Mutex4LockEv");
  real(this);
  __tsan_acquire(this);
}

bool Mutex::TryLock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(bool (*)(Mutex*), "_ZN", "5Mutex7TryLockEv");
  bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(void (*)(Mutex*), "_ZN", "5Mutex6UnlockEv");
  __tsan_release(this);
  real(this);
}

void Mutex::ReaderLock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(void (*)(Mutex*), "_ZN", "5Mutex10ReaderLockEv");
  real(this);
  __tsan_acquire(this);
}

bool Mutex::ReaderTryLock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(bool (*)(Mutex*), "_ZN", "5Mutex13ReaderTryLockEv");
  bool locked = real(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::ReaderUnlock() ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(void (*)(Mutex*), "_ZN", "5Mutex12ReaderUnlockEv");
  __tsan_release(this);
  real(this);
}

void Mutex::LockWhen(const Condition& cond) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(void (*)(Mutex*, const Condition&), "_ZN", "5Mutex8LockWhenERKNS0_9ConditionE");
  AcquiringCondition acquiring{this, &cond};
  __tsan_release(this);  // publishes the condition to the thread that evaluates it
  real(this, Condition(&AcquiringCondition::Eval, &acquiring));
  __tsan_acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond,
                                Duration timeout) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(bool (*)(Mutex*, const Condition&, Duration), "_ZN",
              "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  AcquiringCondition acquiring{this, &cond};
  __tsan_release(this);  // publishes the condition to the thread that evaluates it
  bool met = real(this, Condition(&AcquiringCondition::Eval, &acquiring), timeout);
  __tsan_acquire(this);  // held either way
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond,
                                 Time deadline) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(bool (*)(Mutex*, const Condition&, Time), "_ZN",
              "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  AcquiringCondition acquiring{this, &cond};
  __tsan_release(this);  // publishes the condition to the thread that evaluates it
  bool met = real(this, Condition(&AcquiringCondition::Eval, &acquiring), deadline);
  __tsan_acquire(this);
  return met;
}

void Mutex::ReaderLockWhen(const Condition& cond) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(void (*)(Mutex*, const Condition&), "_ZN",
              "5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  AcquiringCondition acquiring{this, &cond};
  __tsan_release(this);  // publishes the condition to the thread that evaluates it
  real(this, Condition(&AcquiringCondition::Eval, &acquiring));
  __tsan_acquire(this);
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond,
                                      Duration timeout) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(bool (*)(Mutex*, const Condition&, Duration), "_ZN",
              "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  AcquiringCondition acquiring{this, &cond};
  __tsan_release(this);  // publishes the condition to the thread that evaluates it
  bool met = real(this, Condition(&AcquiringCondition::Eval, &acquiring), timeout);
  __tsan_acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond,
                                       Time deadline) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(bool (*)(Mutex*, const Condition&, Time), "_ZN",
              "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  AcquiringCondition acquiring{this, &cond};
  __tsan_release(this);  // publishes the condition to the thread that evaluates it
  bool met = real(this, Condition(&AcquiringCondition::Eval, &acquiring), deadline);
  __tsan_acquire(this);
  return met;
}

// Await and a CondVar wait release the mutex while they wait and hold it again when they return.
void Mutex::Await(const Condition& cond) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(void (*)(Mutex*, const Condition&), "_ZN", "5Mutex5AwaitERKNS0_9ConditionE");
  AcquiringCondition acquiring{this, &cond};
  __tsan_release(this);
  real(this, Condition(&AcquiringCondition::Eval, &acquiring));
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond,
                             Duration timeout) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(bool (*)(Mutex*, const Condition&, Duration), "_ZN",
              "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  AcquiringCondition acquiring{this, &cond};
  __tsan_release(this);
  bool met = real(this, Condition(&AcquiringCondition::Eval, &acquiring), timeout);
  __tsan_acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  SLUICE_REAL(bool (*)(Mutex*, const Condition&, Time), "_ZN",
              "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  AcquiringCondition acquiring{this, &cond};
  __tsan_release(this);
  bool met = real(this, Condition(&AcquiringCondition::Eval, &acquiring), deadline);
  __tsan_acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  SLUICE_REAL(void (*)(CondVar*, Mutex*), "_ZN", "7CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  SLUICE_REAL(bool (*)(CondVar*, Mutex*, Duration), "_ZN",
              "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  bool timed_out = real(this, mu, timeout);
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  SLUICE_REAL(bool (*)(CondVar*, Mutex*, Time), "_ZN",
              "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  bool timed_out = real(this, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}

void Notification::Notify() {
  SLUICE_REAL(void (*)(Notification*), "_ZN", "12Notification6NotifyEv");
  __tsan_release(this);
  real(this);
}

void Notification::WaitForNotification() const {
  SLUICE_REAL(void (*)(const Notification*), "_ZNK", "12Notification19WaitForNotificationEv");
  real(this);
  __tsan_acquire(const_cast<Notification*>(this));
}

bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  SLUICE_REAL(bool (*)(const Notification*, Duration), "_ZNK",
              "12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  bool notified = real(this, timeout);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  SLUICE_REAL(bool (*)(const Notification*, Time), "_ZNK",
              "12Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  bool notified = real(this, deadline);
  if (notified) __tsan_acquire(const_cast<Notification*>(this));
  return notified;
}

ABSL_NAMESPACE_END
}  // namespace absl

#endif  // SLUICE_TSAN_ABSL_SYNC
