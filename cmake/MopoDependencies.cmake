# Finds mopo's dependencies (all from Debian bookworm packages; see scripts/install-deps.sh).
# The same calls, as find_dependency, are in cmake/mopoConfig.cmake.in.
include_guard(GLOBAL)

# libtorch-dev 1.13.1 reports 1.13.0 in its config, hence "1.13".
find_package(Torch 1.13 REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(nlohmann_json 3.9 REQUIRED)
# HDF5 C library -> mopo::hdf5 (our own small finder; see the comment in MopoFindHDF5.cmake).
include(MopoFindHDF5)
if(NOT TARGET mopo::hdf5)
  message(FATAL_ERROR "mopo: the HDF5 C library was not found (Debian: apt-get install libhdf5-dev)")
endif()
if(MOPO_WITH_MUJOCO)
  # Debian's mujoco config needs libqhull-dev and libgl-dev to be installed.
  find_package(mujoco 2.2 REQUIRED)
endif()
