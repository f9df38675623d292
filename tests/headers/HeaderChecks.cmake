# One generated translation unit per public header, each compiled on its own by a ctest entry
# (header/<path>), proving every header includes what it uses. The TU includes the header twice to
# check its include guard. The objects are EXCLUDE_FROM_ALL and built from ctest; each check builds
# one target with no shared outputs, so `ctest -j2` may run two at once.
file(GLOB_RECURSE _mopo_headers CONFIGURE_DEPENDS RELATIVE "${PROJECT_SOURCE_DIR}/include"
  "${PROJECT_SOURCE_DIR}/include/mopo/*.hpp")
foreach(_header IN LISTS _mopo_headers)
  if(_header MATCHES "^mopo/detail/")
    continue()  # internal, reached through the public headers
  endif()
  set(_link mopo::mopo)
  if(_header MATCHES "^mopo/deploy/" AND NOT _header STREQUAL "mopo/deploy/export.hpp")
    set(_link mopo::deploy)  # the LibTorch-free runtime: compiles without torch's include path
  endif()
  if(_header MATCHES "^mopo/env/mujoco/" OR _header MATCHES "mujoco")
    if(NOT MOPO_WITH_MUJOCO)
      continue()
    endif()
    set(_link mopo::mujoco)
  endif()
  string(MAKE_C_IDENTIFIER "${_header}" _id)
  set(_tu "${CMAKE_CURRENT_BINARY_DIR}/header_checks/${_id}.cpp")
  file(CONFIGURE OUTPUT "${_tu}" CONTENT "#include <${_header}>\n#include <${_header}>\n")
  add_library(header_check_${_id} OBJECT EXCLUDE_FROM_ALL "${_tu}")
  target_link_libraries(header_check_${_id} PRIVATE ${_link})
  mopo_set_warnings(header_check_${_id})
  add_test(NAME header/${_header}
    COMMAND "${CMAKE_COMMAND}" --build "${CMAKE_BINARY_DIR}" --target header_check_${_id})
  set_tests_properties(header/${_header} PROPERTIES LABELS "headers")
endforeach()
