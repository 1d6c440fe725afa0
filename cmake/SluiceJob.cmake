# sluice_add_job(<name> <sources>...)
# sluice_add_job(<name> SOURCES <sources>... [CONNECTORS <connector>...] [NO_PCH])
#
# Builds lib<name>.so, a Sluice job library, against the job SDK: the target sluice_sdk inside the
# Sluice tree, Sluice::sdk after find_package(Sluice). CONNECTORS links the named connector
# libraries as well (`files` is sluice_connector_files in the tree, Sluice::connector_files when
# installed); linking them with target_link_libraries works just as well.
#
# Outside the Sluice tree:
#   find_package(Sluice REQUIRED)        # with CMAKE_PREFIX_PATH=<prefix of `cmake --install`>
#   sluice_add_job(wordcount wordcount.cc)
#
# Precompiled header (option SLUICE_JOB_PCH, default ON): the first sluice_add_job() of a project
# creates the target sluice_job_pch, which precompiles <sluice/sluice.h> once with the options of
# a job (hidden visibility, PIC, the SDK's standard, and the directory's compile options such as a
# sanitizer's), and every job reuses it. GCC checks that it may: -Winvalid-pch, which CMake passes,
# warns when a job's options or macros differ and the header is compiled from source instead;
# clang refuses such a job outright. A job whose compile definitions or options differ from the
# others' (e.g. its own SLUICE_SDK_VERSION) takes NO_PCH. With ccache as compiler launcher, the
# jobs and the PCH run it with the sloppiness it needs for precompiled headers (pch_defines,
# time_macros); a ccache put in front of the compiler otherwise needs that set in its config.
#
# The plain equivalent of a job is in README.md ("A job").
include_guard(GLOBAL)

option(SLUICE_JOB_PCH "Compile <sluice/sluice.h> once for all job libraries (precompiled header)" ON)

# The library of Sluice component <name> (sdk, connector_files, ...): the in-tree target
# sluice_<name>, else the installed Sluice::<name>, else empty.
function(_sluice_job_library name out)
  if(TARGET sluice_${name})
    set(${out} sluice_${name} PARENT_SCOPE)
  elseif(TARGET Sluice::${name})
    set(${out} Sluice::${name} PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

# What a job and the precompiled header must share for the header to be usable.
function(_sluice_job_options target sdk)
  target_link_libraries(${target} PRIVATE ${sdk})
  set_target_properties(${target} PROPERTIES
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
endfunction()

# ccache uses a precompiled header only with sloppiness pch_defines,time_macros (and, with clang,
# a PCH without timestamp): run it so for <target>, keeping the sloppiness it has otherwise.
function(_sluice_job_ccache target)
  get_target_property(launcher ${target} CXX_COMPILER_LAUNCHER)
  if(NOT launcher)
    return()
  endif()
  list(GET launcher 0 program)
  get_filename_component(program_name "${program}" NAME)
  if(NOT program_name MATCHES "^ccache")
    return()
  endif()
  get_property(sloppiness GLOBAL PROPERTY SLUICE_JOB_CCACHE_SLOPPINESS)
  if(NOT sloppiness)
    execute_process(COMMAND ${program} --get-config sloppiness OUTPUT_VARIABLE sloppiness
      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    string(REPLACE " " "" sloppiness "${sloppiness}")
    string(REPLACE "," ";" sloppiness "${sloppiness}")
    list(APPEND sloppiness pch_defines time_macros)
    list(REMOVE_DUPLICATES sloppiness)
    list(REMOVE_ITEM sloppiness "")
    string(REPLACE ";" "," sloppiness "${sloppiness}")
    set_property(GLOBAL PROPERTY SLUICE_JOB_CCACHE_SLOPPINESS "${sloppiness}")
  endif()
  set_property(TARGET ${target} PROPERTY CXX_COMPILER_LAUNCHER
    ${CMAKE_COMMAND} -E env CCACHE_SLOPPINESS=${sloppiness} ${launcher})
endfunction()

# The project's one precompiled <sluice/sluice.h>, made on first use.
function(_sluice_job_pch sdk)
  if(TARGET sluice_job_pch)
    return()
  endif()
  set(source ${CMAKE_BINARY_DIR}/CMakeFiles/sluice_job_pch.cc)
  file(CONFIGURE OUTPUT ${source} CONTENT "// Carries the precompiled <sluice/sluice.h> of the job libraries.\n")
  add_library(sluice_job_pch OBJECT EXCLUDE_FROM_ALL ${source})
  _sluice_job_options(sluice_job_pch ${sdk})
  target_precompile_headers(sluice_job_pch PRIVATE <sluice/sluice.h>)
  # clang stamps a PCH with its time unless told not to, which ccache cannot cache.
  target_compile_options(sluice_job_pch PRIVATE
    "$<$<CXX_COMPILER_ID:Clang>:SHELL:-Xclang -fno-pch-timestamp>")
  _sluice_job_ccache(sluice_job_pch)
endfunction()

function(sluice_add_job name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "NO_PCH" "" "SOURCES;CONNECTORS")
  set(sources ${arg_SOURCES} ${arg_UNPARSED_ARGUMENTS})
  if(NOT sources)
    message(FATAL_ERROR "sluice_add_job(${name}): no sources")
  endif()
  _sluice_job_library(sdk sdk)
  if(NOT sdk)
    message(FATAL_ERROR "sluice_add_job(${name}): no Sluice SDK: call find_package(Sluice REQUIRED) "
      "first, with CMAKE_PREFIX_PATH naming the prefix Sluice was installed to")
  endif()
  set(connectors)
  foreach(connector ${arg_CONNECTORS})
    _sluice_job_library(connector_${connector} library)
    if(NOT library)
      message(FATAL_ERROR "sluice_add_job(${name}): no connector '${connector}': neither "
        "sluice_connector_${connector} nor Sluice::connector_${connector} is a target")
    endif()
    list(APPEND connectors ${library})
  endforeach()

  add_library(${name} SHARED ${sources})
  _sluice_job_options(${name} ${sdk})
  target_link_libraries(${name} PRIVATE ${connectors})
  if(sdk STREQUAL "sluice_sdk")  # in the Sluice tree: beside the examples unless placed otherwise
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples)
  endif()
  if(SLUICE_JOB_PCH AND NOT arg_NO_PCH)
    _sluice_job_pch(${sdk})
    target_precompile_headers(${name} REUSE_FROM sluice_job_pch)
    _sluice_job_ccache(${name})
  endif()
endfunction()
