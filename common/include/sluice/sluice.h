// The Sluice job SDK. A job library includes this header and defines its entry point:
//
//   #include <sluice/sluice.h>
//   SLUICE_JOB(env, args) {
//     env.add_source(sluice::files::TextFileSource(args.required("input")))  // connectors/files
//        .flat_map<std::string>([](const std::string& line, sluice::Collector<std::string>& out) {
//          ...
//        })
//        ...
//        .print();
//   }
//
// The entry point describes the job's graph and does no work; it must build the same graph for
// the same arguments every time, because every process that runs the job calls it.
#pragma once

#include "sluice/args.h"
#include "sluice/async.h"
#include "sluice/core.h"
#include "sluice/datastream.h"
#include "sluice/format.h"
#include "sluice/functions.h"
#include "sluice/keys.h"
#include "sluice/serializer.h"
#include "sluice/sinks.h"
#include "sluice/sources.h"
#include "sluice/state.h"
#include "sluice/watermarks.h"
#include "sluice/windows.h"

#define SLUICE_STRINGIFY2(x) #x
#define SLUICE_STRINGIFY(x) SLUICE_STRINGIFY2(x)

// The SDK's version; a library and a runtime must agree on it.
#ifndef SLUICE_SDK_VERSION
#define SLUICE_SDK_VERSION "0.7"
#endif

#if defined(__clang__)
#define SLUICE_COMPILER_STAMP \
  "clang-" SLUICE_STRINGIFY(__clang_major__) "." SLUICE_STRINGIFY(__clang_minor__)
#elif defined(__GNUC__)
#define SLUICE_COMPILER_STAMP "gcc-" SLUICE_STRINGIFY(__GNUC__) "." SLUICE_STRINGIFY(__GNUC_MINOR__)
#else
#define SLUICE_COMPILER_STAMP "unknown-compiler"
#endif

// Everything that must match between a job library and the runtime that loads it.
#define SLUICE_ABI_STAMP                                     \
  "sluice-sdk-" SLUICE_SDK_VERSION ";" SLUICE_COMPILER_STAMP \
  ";libstdc++-" SLUICE_STRINGIFY(_GLIBCXX_RELEASE) ";c++" SLUICE_STRINGIFY(__cplusplus)

namespace sluice {
using JobEntryFn = void (*)(StreamExecutionEnvironment*, const JobArgs*);
inline constexpr const char* kJobEntrySymbol = "sluice_job_entry";
inline constexpr const char* kAbiStampSymbol = "sluice_abi_stamp";
}  // namespace sluice

// Defines the job's entry point. `env` is a sluice::StreamExecutionEnvironment&, `args` a
// const sluice::JobArgs&.
#define SLUICE_JOB(env, args)                                                        \
  static void sluice_job_main(::sluice::StreamExecutionEnvironment& env,             \
                              const ::sluice::JobArgs& args);                        \
  extern "C" __attribute__((visibility("default"))) const char* sluice_abi_stamp() { \
    return SLUICE_ABI_STAMP;                                                         \
  }                                                                                  \
  extern "C" __attribute__((visibility("default"))) void sluice_job_entry(           \
      ::sluice::StreamExecutionEnvironment* e, const ::sluice::JobArgs* a) {         \
    sluice_job_main(*e, *a);                                                         \
  }                                                                                  \
  static void sluice_job_main(::sluice::StreamExecutionEnvironment& env,             \
                              const ::sluice::JobArgs& args)
