# Provides mfsim::kokkos for two kinds of Kokkos installs:
#  - Debian's Trilinos 13.2 Kokkos 3.4.1 (TriBITS config). Its Kokkos::kokkos target points at the
#    non-existent /usr/lib/include, so we build our own target from Kokkos_INCLUDE_DIRS/LIBRARIES.
#  - upstream Kokkos 3.x/4.x (given with -DKokkos_ROOT=...), whose Kokkos::kokkos works and carries
#    the backend flags (OpenMP, CUDA, ...).
# Do not call kokkos_compilation(): Debian does not ship kokkos_launch_compiler.
find_package(Kokkos REQUIRED)
if(NOT TARGET mfsim::kokkos)
  add_library(mfsim_kokkos INTERFACE)
  add_library(mfsim::kokkos ALIAS mfsim_kokkos)
  if(DEFINED Kokkos_PACKAGE_LIST OR TARGET trilinos_kokkoscore)
    target_include_directories(mfsim_kokkos SYSTEM INTERFACE ${Kokkos_INCLUDE_DIRS})
    target_link_libraries(mfsim_kokkos INTERFACE ${Kokkos_LIBRARIES})
  else()
    target_link_libraries(mfsim_kokkos INTERFACE Kokkos::kokkos)
  endif()
endif()
message(STATUS "mfsim: Kokkos ${Kokkos_VERSION}, devices: ${Kokkos_DEVICES}")
# The backend mfsim's kernels run on (Kokkos' default execution space: the first device other
# than SERIAL), lower case: the ctest label of every test (ctest -L openmp).
set(MFSIM_KOKKOS_BACKEND serial)
foreach(_mfsim_device IN LISTS Kokkos_DEVICES)
  if(NOT _mfsim_device STREQUAL "SERIAL")
    string(TOLOWER "${_mfsim_device}" MFSIM_KOKKOS_BACKEND)
    break()
  endif()
endforeach()
# The backend presets (openmp, threads, cuda) name the backend they need: a Kokkos_ROOT left empty (its
# environment variable unset) would otherwise fall back to Debian's Serial Kokkos without a word.
set(MFSIM_REQUIRE_KOKKOS_DEVICE "" CACHE STRING
    "A Kokkos backend the Kokkos found must have (OPENMP, CUDA, ...); empty: any")
if(MFSIM_REQUIRE_KOKKOS_DEVICE AND NOT MFSIM_REQUIRE_KOKKOS_DEVICE IN_LIST Kokkos_DEVICES)
  message(FATAL_ERROR
    "mfsim: this build needs a Kokkos with the ${MFSIM_REQUIRE_KOKKOS_DEVICE} backend, but the "
    "Kokkos found (${Kokkos_DIR}, version ${Kokkos_VERSION}) has only: ${Kokkos_DEVICES}. Give "
    "its install prefix with -DKokkos_ROOT=... (presets: MFSIM_KOKKOS_OPENMP_ROOT, "
    "MFSIM_KOKKOS_THREADS_ROOT or MFSIM_KOKKOS_CUDA_ROOT in the environment; docs/gpu.md).")
endif()

# Kokkos/compiler combinations known to miscompile mfsim: refused here, with the reason, rather
# than found later as a crash. Set MFSIM_ALLOW_KNOWN_BAD_KOKKOS=ON to build anyway (e.g. to test
# a patched Kokkos whose header check below cannot tell).
option(MFSIM_ALLOW_KNOWN_BAD_KOKKOS "Build against a Kokkos/compiler pair known to miscompile" OFF)
#  - GCC 12 + Kokkos develop 4.6.99 from before July 2025 (kokkos/kokkos issue 8187): GCC 12.2-12.4
#    skips the constexpr constructor of the new View's SharedAllocationTracker, and every mfsim
#    binary segfaults in SharedAllocationRecord::decrement(nullptr) at the first View assignment.
#    Fixed by PR 8223 (merged 2025-07), which makes that constructor constexpr only for compilers
#    other than the affected GCCs; both sides are still 4.6.99, so the installed header decides:
#    a fixed impl/Kokkos_SharedAlloc.hpp tests KOKKOS_COMPILER_GCC, an affected one never does
#    (checked on the develop snapshot of 2025-06-20, whose install this refuses, and on 4.6.01).
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
   AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13 AND Kokkos_VERSION VERSION_EQUAL 4.6.99
   AND NOT MFSIM_ALLOW_KNOWN_BAD_KOKKOS)
  set(_mfsim_kokkos_includes "")
  if(TARGET Kokkos::kokkoscore)
    get_target_property(_mfsim_kokkos_includes Kokkos::kokkoscore INTERFACE_INCLUDE_DIRECTORIES)
  endif()
  find_file(_mfsim_shared_alloc impl/Kokkos_SharedAlloc.hpp
            HINTS ${_mfsim_kokkos_includes} ${Kokkos_DIR}/../../../include NO_DEFAULT_PATH
            NO_CACHE)
  set(_mfsim_tracker_fixed FALSE)
  if(_mfsim_shared_alloc)
    file(READ "${_mfsim_shared_alloc}" _mfsim_header)
    string(FIND "${_mfsim_header}" "KOKKOS_COMPILER_GCC" _mfsim_gcc_test)
    if(_mfsim_gcc_test GREATER -1)
      set(_mfsim_tracker_fixed TRUE)
    endif()
  endif()
  if(NOT _mfsim_tracker_fixed)
    message(FATAL_ERROR
      "mfsim: Kokkos ${Kokkos_VERSION} (develop) with GCC ${CMAKE_CXX_COMPILER_VERSION} is known "
      "to miscompile: GCC 12 skips the constexpr constructor of Kokkos' SharedAllocationTracker, "
      "and every binary segfaults at the first View assignment (kokkos/kokkos issue 8187, fixed by "
      "PR 8223 in July 2025; header checked: '${_mfsim_shared_alloc}'). Use Kokkos 4.6.01, a "
      "develop snapshot from after July 2025 or >= 4.7, or GCC >= 13 (or clang); "
      "-DMFSIM_ALLOW_KNOWN_BAD_KOKKOS=ON overrides this check.")
  endif()
endif()
