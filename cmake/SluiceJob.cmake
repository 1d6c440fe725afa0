# sluice_add_job(<name> <sources>...)
# sluice_add_job(<name> SOURCES <sources>... [CONNECTORS <connector>...])
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
# The plain equivalent of a job is in README.md ("A job").
include_guard(GLOBAL)

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

# A job's SDK and options.
function(_sluice_job_options target sdk)
  target_link_libraries(${target} PRIVATE ${sdk})
  set_target_properties(${target} PROPERTIES
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
endfunction()

function(sluice_add_job name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "" "SOURCES;CONNECTORS")
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
endfunction()
