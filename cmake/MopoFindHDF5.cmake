# Finds the HDF5 C library and defines the imported target mopo::hdf5.
#
# CMake's FindHDF5 needs the C language enabled (it try_compiles a .c file), which would force every
# C++-only consumer of mopo to enable C. This small module finds the serial HDF5 C library directly
# (Debian libhdf5-dev: /usr/include/hdf5/serial, /usr/lib/<arch>/hdf5/serial) and is installed beside
# mopoConfig.cmake, which includes it.
include_guard(GLOBAL)
if(NOT TARGET mopo::hdf5)
  find_path(MOPO_HDF5_INCLUDE_DIR hdf5.h PATH_SUFFIXES hdf5/serial hdf5)
  find_library(MOPO_HDF5_LIBRARY NAMES hdf5_serial hdf5 PATH_SUFFIXES hdf5/serial)
  include(FindPackageHandleStandardArgs)
  find_package_handle_standard_args(MopoHDF5 REQUIRED_VARS MOPO_HDF5_LIBRARY MOPO_HDF5_INCLUDE_DIR)
  if(MopoHDF5_FOUND)
    add_library(mopo::hdf5 UNKNOWN IMPORTED)
    set_target_properties(mopo::hdf5 PROPERTIES
      IMPORTED_LOCATION "${MOPO_HDF5_LIBRARY}"
      INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${MOPO_HDF5_INCLUDE_DIR}"
      INTERFACE_INCLUDE_DIRECTORIES "${MOPO_HDF5_INCLUDE_DIR}")
  endif()
endif()
