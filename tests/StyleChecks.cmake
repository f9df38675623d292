# clang-format check over every C++ file of the project (the .clang-format at the top level).
find_program(MOPO_CLANG_FORMAT NAMES clang-format clang-format-14)
if(MOPO_CLANG_FORMAT)
  file(GLOB_RECURSE _style_files CONFIGURE_DEPENDS
    "${PROJECT_SOURCE_DIR}/include/*.hpp"
    "${PROJECT_SOURCE_DIR}/tests/*.cpp" "${PROJECT_SOURCE_DIR}/tests/*.hpp"
    "${PROJECT_SOURCE_DIR}/examples/*.cpp" "${PROJECT_SOURCE_DIR}/examples/*.hpp"
    "${PROJECT_SOURCE_DIR}/benchmarks/*.cpp")
  add_test(NAME style.clang_format
    COMMAND "${MOPO_CLANG_FORMAT}" --dry-run --Werror --style=file ${_style_files})
  set_tests_properties(style.clang_format PROPERTIES LABELS style)
else()
  message(WARNING "mopo: clang-format not found; the style check is not registered")
endif()

# The layering rules of docs/architecture.md on the headers: folder include arrows, one folder one
# namespace, a complete <mopo/mopo.hpp>, headers over 450 lines say why (tests/layers_test.py).
find_program(MOPO_PYTHON3 NAMES python3)
if(MOPO_PYTHON3)
  add_test(NAME style.layers COMMAND "${MOPO_PYTHON3}" "${CMAKE_CURRENT_SOURCE_DIR}/layers_test.py"
           "${PROJECT_SOURCE_DIR}")
  set_tests_properties(style.layers PROPERTIES LABELS style)
endif()
