include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MOPO_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_DATADIR}/cmake/mopo")

set(_mopo_targets mopo)
if(MOPO_WITH_MUJOCO)
  list(APPEND _mopo_targets mopo_mujoco)
endif()
install(TARGETS ${_mopo_targets} EXPORT mopoTargets)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/mopo" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(EXPORT mopoTargets NAMESPACE mopo:: DESTINATION "${MOPO_CMAKE_INSTALL_DIR}")
# mopo::deploy has its own export set, so find_package(mopo COMPONENTS deploy) loads no torch target.
install(TARGETS mopo_deploy EXPORT mopoDeployTargets)
install(EXPORT mopoDeployTargets NAMESPACE mopo:: DESTINATION "${MOPO_CMAKE_INSTALL_DIR}")

set(MOPO_CONFIG_WITH_MUJOCO ${MOPO_WITH_MUJOCO})
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/mopoConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/mopoConfig.cmake"
  INSTALL_DESTINATION "${MOPO_CMAKE_INSTALL_DIR}")
# 0.x: minor versions may break the API, so require the same minor (style.md P8).
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/mopoConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)
install(FILES
  "${PROJECT_BINARY_DIR}/mopoConfig.cmake"
  "${PROJECT_BINARY_DIR}/mopoConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/MopoFindHDF5.cmake"
  DESTINATION "${MOPO_CMAKE_INSTALL_DIR}")
