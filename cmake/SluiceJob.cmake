# sluice_add_job(<name> <sources>...): builds lib<name>.so, a Sluice job library.
#
# In a project of your own, include this file and point SLUICE_INCLUDE_DIR at the SDK headers
# (the folder that holds sluice/sluice.h), or use it inside the Sluice tree where the sluice_sdk
# target exists. The plain equivalent is:
#   g++ -std=c++20 -O2 -fPIC -shared -I<sdk>/include job.cc -o libjob.so
function(sluice_add_job name)
  add_library(${name} SHARED ${ARGN})
  if(TARGET sluice_sdk)
    target_link_libraries(${name} PRIVATE sluice_sdk)
  else()
    if(NOT SLUICE_INCLUDE_DIR)
      message(FATAL_ERROR "sluice_add_job: set SLUICE_INCLUDE_DIR to the folder holding sluice/sluice.h")
    endif()
    target_include_directories(${name} PRIVATE ${SLUICE_INCLUDE_DIR})
    target_compile_features(${name} PRIVATE cxx_std_20)
  endif()
  set_target_properties(${name} PROPERTIES
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
endfunction()
