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
