# Finds mopo's dependencies (all from Debian bookworm packages; see scripts/install-deps.sh).
# The same calls, as find_dependency, are in cmake/mopoConfig.cmake.in.
include_guard(GLOBAL)

# libtorch-dev 1.13.1 reports 1.13.0 in its config, hence "1.13".
find_package(Torch 1.13 REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(nlohmann_json 3.9 REQUIRED)
# zlib's crc32 checks LibTorch archives before LibTorch reads them (mopo/detail/torch_archive.hpp).
find_package(ZLIB REQUIRED)
# HDF5 C library -> mopo::hdf5 (our own small finder; see the comment in MopoFindHDF5.cmake).
include(MopoFindHDF5)
if(NOT TARGET mopo::hdf5)
  message(FATAL_ERROR "mopo: the HDF5 C library was not found (Debian: apt-get install libhdf5-dev)")
endif()
if(MOPO_WITH_MUJOCO)
  # Debian's mujoco config needs libqhull-dev and libgl-dev to be installed.
  find_package(mujoco 2.2 REQUIRED)
endif()

# Imported targets are directory-scoped: when mopo is added with add_subdirectory/FetchContent, the
# parent project links mopo::mopo from another directory, where torch_cpu, mujoco::mujoco, … would
# be unknown. Promote the targets found here to global visibility.
if(NOT PROJECT_IS_TOP_LEVEL)
  get_property(_mopo_imported DIRECTORY PROPERTY IMPORTED_TARGETS)
  foreach(_t IN LISTS _mopo_imported)
    get_target_property(_is_global ${_t} IMPORTED_GLOBAL)
    if(NOT _is_global)
      set_target_properties(${_t} PROPERTIES IMPORTED_GLOBAL TRUE)
    endif()
  endforeach()
endif()
