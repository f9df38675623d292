# Real-client tests of mopo's dataset I/O with Debian's python3-h5py (issue 5). Included from
# tests/CMakeLists.txt after the unit executables exist. Three ctest fixtures run in order:
#   data.h5py.write  python writes D4RL/Minari files + expected qlearning_dataset output
#   data.h5py.mopo   mopo_unit_data "[h5py]" loads them and writes files back in both dtypes
#   data.h5py.check  python checks keys, dtypes, shapes, compression and values of mopo's files
if(NOT TARGET mopo_unit_data)
  return()
endif()

# The first interpreter that can import h5py and numpy (pyenv shims may shadow Debian's python3).
set(_mopo_py_candidates /usr/bin/python3)
find_program(_mopo_path_python3 NAMES python3)
if(_mopo_path_python3)
  list(APPEND _mopo_py_candidates "${_mopo_path_python3}")
endif()
unset(MOPO_H5PY_PYTHON)
foreach(_py IN LISTS _mopo_py_candidates)
  if(EXISTS "${_py}")
    execute_process(COMMAND "${_py}" -c "import h5py, numpy" RESULT_VARIABLE _rc OUTPUT_QUIET ERROR_QUIET)
    if(_rc EQUAL 0)
      set(MOPO_H5PY_PYTHON "${_py}")
      break()
    endif()
  endif()
endforeach()

if(NOT MOPO_H5PY_PYTHON)
  message(WARNING "mopo: no python3 with h5py found (apt-get install python3-h5py); "
                  "the data.h5py.* client tests are not registered")
  return()
endif()
message(STATUS "mopo: h5py client tests use ${MOPO_H5PY_PYTHON}")

set(_client "${CMAKE_CURRENT_SOURCE_DIR}/data/d4rl_client.py")
set(_dir "${CMAKE_CURRENT_BINARY_DIR}/data_client")
add_test(NAME data.h5py.write COMMAND "${MOPO_H5PY_PYTHON}" "${_client}" write "${_dir}")
set_tests_properties(data.h5py.write PROPERTIES LABELS "unit;data" FIXTURES_SETUP mopo_h5py_files)
add_test(NAME data.h5py.mopo COMMAND mopo_unit_data "[h5py]" --durations no)
set_tests_properties(data.h5py.mopo PROPERTIES LABELS "unit;data" ENVIRONMENT "MOPO_DATA_CLIENT_DIR=${_dir}"
  FIXTURES_REQUIRED mopo_h5py_files FIXTURES_SETUP mopo_h5py_written)
add_test(NAME data.h5py.check COMMAND "${MOPO_H5PY_PYTHON}" "${_client}" check "${_dir}")
set_tests_properties(data.h5py.check PROPERTIES LABELS "unit;data" FIXTURES_REQUIRED "mopo_h5py_files;mopo_h5py_written")

