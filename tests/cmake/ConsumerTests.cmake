# Consumer projects (style.md P9): mopo used through find_package after install, add_subdirectory
# and FetchContent. Each is configured, built and run by `ctest --build-and-test`.
set(_consumer_root "${CMAKE_CURRENT_BINARY_DIR}/consumers")
set(_prefix "${_consumer_root}/prefix")
set(_common_options -DCMAKE_BUILD_TYPE=Release)
if(CMAKE_CXX_COMPILER_LAUNCHER)
  list(APPEND _common_options "-DCMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}")
endif()

if(MOPO_INSTALL AND MOPO_WITH_MUJOCO)
  add_test(NAME consumer.install
    COMMAND "${CMAKE_COMMAND}" --install "${PROJECT_BINARY_DIR}" --prefix "${_prefix}")
  set_tests_properties(consumer.install PROPERTIES FIXTURES_SETUP mopo_installed LABELS consumer)
  add_test(NAME consumer.find_package
    COMMAND "${CMAKE_CTEST_COMMAND}" --build-and-test
      "${CMAKE_CURRENT_SOURCE_DIR}/cmake/find_package" "${_consumer_root}/find_package"
      --build-generator "${CMAKE_GENERATOR}" --build-noclean
      --build-options ${_common_options} "-DCMAKE_PREFIX_PATH=${_prefix}"
      --test-command consumer)
  set_tests_properties(consumer.find_package PROPERTIES FIXTURES_REQUIRED mopo_installed
    LABELS consumer RESOURCE_LOCK mopo_build_tree)
endif()

# mopo::deploy alone (issue 15): installed package, component `deploy`, checked torch-free.
if(TEST consumer.install)
  add_test(NAME consumer.deploy
    COMMAND "${CMAKE_CTEST_COMMAND}" --build-and-test
      "${CMAKE_CURRENT_SOURCE_DIR}/cmake/deploy" "${_consumer_root}/deploy"
      --build-generator "${CMAKE_GENERATOR}" --build-noclean
      --build-options ${_common_options} "-DCMAKE_PREFIX_PATH=${_prefix}"
      --test-command consumer)
  set_tests_properties(consumer.deploy PROPERTIES FIXTURES_REQUIRED mopo_installed
    LABELS consumer RESOURCE_LOCK mopo_build_tree)
endif()

add_test(NAME consumer.add_subdirectory
  COMMAND "${CMAKE_CTEST_COMMAND}" --build-and-test
    "${CMAKE_CURRENT_SOURCE_DIR}/cmake/add_subdirectory" "${_consumer_root}/add_subdirectory"
    --build-generator "${CMAKE_GENERATOR}" --build-noclean
    --build-options ${_common_options} "-DMOPO_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
    --test-command consumer)
set_tests_properties(consumer.add_subdirectory PROPERTIES LABELS consumer RESOURCE_LOCK mopo_build_tree)

if(MOPO_WITH_MUJOCO)
  add_test(NAME consumer.fetch_content
    COMMAND "${CMAKE_CTEST_COMMAND}" --build-and-test
      "${CMAKE_CURRENT_SOURCE_DIR}/cmake/fetch_content" "${_consumer_root}/fetch_content"
      --build-generator "${CMAKE_GENERATOR}" --build-noclean
      --build-options ${_common_options} "-DMOPO_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
      --test-command consumer)
  set_tests_properties(consumer.fetch_content PROPERTIES LABELS consumer RESOURCE_LOCK mopo_build_tree)
endif()
