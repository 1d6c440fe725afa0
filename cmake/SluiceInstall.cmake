# What `cmake --install` puts under its prefix for job authors, so that a project of theirs can
#   find_package(Sluice REQUIRED)         # CMAKE_PREFIX_PATH=<prefix>
#   sluice_add_job(wordcount wordcount.cc)
# Included once by the top-level CMakeLists.txt, it installs the package files:
#   lib/cmake/Sluice/SluiceConfig.cmake, SluiceConfigVersion.cmake, SluiceTargets.cmake (the export
#   set, namespace Sluice::) and SluiceJob.cmake (sluice_add_job).
#
# sluice_install_library(<target> <export-name> [HEADERS <dir>...])
#   Installs a library of the SDK into the export set as Sluice::<export-name> (an alias of that
#   name is made for the tree too) and the headers of its include/ folders (or of the HEADERS
#   folders) into include/. Its include folders in the source or build tree become
#   $<BUILD_INTERFACE:...> and include/ is its installed one. A library built with sanitizers
#   (SLUICE_SANITIZE) passes their flags on to what links it once installed, so that job libraries
#   are instrumented like the runtime that loads them. E.g.
#     sluice_install_library(sluice_sdk sdk)
#     sluice_install_library(sluice_connector_files connector_files)
include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SLUICE_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Sluice)

# The sanitizer flags of <target>'s build (SLUICE_SANITIZE, or -fsanitize in CMAKE_CXX_FLAGS).
function(_sluice_install_sanitizer_flags target out_compile out_link)
  get_target_property(dir ${target} SOURCE_DIR)
  get_directory_property(compile DIRECTORY ${dir} COMPILE_OPTIONS)
  get_directory_property(link DIRECTORY ${dir} LINK_OPTIONS)
  separate_arguments(flags UNIX_COMMAND "${CMAKE_CXX_FLAGS}")
  list(APPEND compile ${flags})
  list(APPEND link ${flags})
  list(FILTER link INCLUDE REGEX "^-fsanitize=")
  set(sanitizers ${compile})
  list(FILTER sanitizers INCLUDE REGEX "^-fsanitize=")
  if(sanitizers)  # with frame pointers, for the reports' stacks through the job's code
    list(FILTER compile INCLUDE REGEX "^-f(no-)?sanitize|^-fno-omit-frame-pointer$")
  else()
    set(compile)
  endif()
  list(REMOVE_DUPLICATES compile)
  list(REMOVE_DUPLICATES link)
  set(${out_compile} ${compile} PARENT_SCOPE)
  set(${out_link} ${link} PARENT_SCOPE)
endfunction()

function(sluice_install_library target export_name)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "HEADERS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "sluice_install_library(${target}): unexpected ${arg_UNPARSED_ARGUMENTS}")
  endif()
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${export_name})
  if(NOT TARGET Sluice::${export_name})
    add_library(Sluice::${export_name} ALIAS ${target})
  endif()

  # Include folders: those of the tree for the build only, include/ once installed.
  get_target_property(dirs ${target} INTERFACE_INCLUDE_DIRECTORIES)
  if(NOT dirs)
    set(dirs)
  endif()
  set(header_dirs ${arg_HEADERS})
  set(interface_dirs)
  set(has_install_dir OFF)
  foreach(dir IN LISTS dirs)
    set(path)
    if(dir MATCHES "^\\$<BUILD_INTERFACE:(.*)>$")
      set(path ${CMAKE_MATCH_1})
    elseif(dir MATCHES "^\\$<INSTALL_INTERFACE:")
      set(has_install_dir ON)
    elseif(IS_ABSOLUTE "${dir}")
      cmake_path(IS_PREFIX CMAKE_SOURCE_DIR "${dir}" NORMALIZE in_source)
      cmake_path(IS_PREFIX CMAKE_BINARY_DIR "${dir}" NORMALIZE in_build)
      if(in_source OR in_build)
        set(path ${dir})
        set(dir "$<BUILD_INTERFACE:${dir}>")
      endif()
    endif()
    list(APPEND interface_dirs "${dir}")
    if(path AND NOT arg_HEADERS)
      if(NOT path MATCHES "/include/?$")
        message(FATAL_ERROR "sluice_install_library(${target}): its include folder ${path} is not "
          "an include/ folder of public headers alone; name the folders to install with HEADERS")
      endif()
      list(APPEND header_dirs ${path})
    endif()
  endforeach()
  if(header_dirs AND NOT has_install_dir)
    list(APPEND interface_dirs "$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
  endif()
  set_property(TARGET ${target} PROPERTY INTERFACE_INCLUDE_DIRECTORIES "${interface_dirs}")
  foreach(dir IN LISTS header_dirs)
    install(DIRECTORY ${dir}/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
      FILES_MATCHING PATTERN "*.h" PATTERN "*.hh" PATTERN "*.hpp" PATTERN "*.inc")
  endforeach()

  _sluice_install_sanitizer_flags(${target} compile link)
  foreach(flag IN LISTS compile)
    target_compile_options(${target} INTERFACE "$<INSTALL_INTERFACE:${flag}>")
  endforeach()
  foreach(flag IN LISTS link)
    target_link_options(${target} INTERFACE "$<INSTALL_INTERFACE:${flag}>")
  endforeach()

  install(TARGETS ${target} EXPORT SluiceTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()

# The package files. The export set is filled by the sluice_install_library() calls, before or
# after this point: it is written at generation.
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/SluiceConfig.cmake.in
  ${CMAKE_BINARY_DIR}/SluiceConfig.cmake INSTALL_DESTINATION ${SLUICE_INSTALL_CMAKEDIR})
# Before 1.0 a minor version may break job sources, so only the same major.minor is accepted.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/SluiceConfigVersion.cmake
  VERSION ${sluice_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/SluiceConfig.cmake ${CMAKE_BINARY_DIR}/SluiceConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/SluiceJob.cmake DESTINATION ${SLUICE_INSTALL_CMAKEDIR})
install(EXPORT SluiceTargets NAMESPACE Sluice:: FILE SluiceTargets.cmake
  DESTINATION ${SLUICE_INSTALL_CMAKEDIR})

# A precompiled <sluice/sluice.h> beside the installed header, for the README's compiler line
# (g++ -std=c++20 -O2 -fPIC): g++ uses <prefix>/include/sluice/sluice.h.gch when a job includes
# <sluice/sluice.h> first with options that match, and parses the header otherwise. Made at
# install time from the installed headers, with the compiler Sluice was built with (GCC only;
# not for sanitized builds, whose jobs take other options).
# Call it after the sluice_install_library() calls: install rules run in order.
option(SLUICE_INSTALL_PCH "Install a precompiled sluice/sluice.h for plain g++ job builds" ON)
function(sluice_install_pch)
  if(SLUICE_INSTALL_PCH AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND NOT SLUICE_SANITIZE
     AND NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize")
    install(CODE "
      set(include_dir \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_INCLUDEDIR}\")
      message(STATUS \"Precompiling: \${include_dir}/sluice/sluice.h.gch\")
      file(REMOVE \${include_dir}/sluice/sluice.h.gch)
      list(APPEND CMAKE_INSTALL_MANIFEST_FILES \${include_dir}/sluice/sluice.h.gch)
      execute_process(
        COMMAND \"${CMAKE_CXX_COMPILER}\" -std=c++20 -O2 -fPIC -I\${include_dir} -x c++-header
                \${include_dir}/sluice/sluice.h -o \${include_dir}/sluice/sluice.h.gch
        RESULT_VARIABLE rc ERROR_VARIABLE err)
      if(NOT rc EQUAL 0)
        message(FATAL_ERROR \"precompiling sluice/sluice.h failed: \${err}\")
      endif()")
  else()
    # No precompiled header this time: one left by an earlier install would be stale.
    install(CODE "file(REMOVE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_INCLUDEDIR}/sluice/sluice.h.gch\")")
  endif()
endfunction()
