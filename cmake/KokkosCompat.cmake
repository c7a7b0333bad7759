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
