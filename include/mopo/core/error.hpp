/// @file error.hpp
/// @brief The exception hierarchy every mopo component throws.
///
/// All errors derive from mopo::Error (itself a std::runtime_error), so user code can catch one type.
/// Messages name what is at fault: the file, the JSON key path, the tensor name and shape, or the value.
/// mopo never aborts on user input; it throws one of these.
#pragma once

#include <stdexcept>
#include <string>

namespace mopo {

/// Base of every exception mopo throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A configuration problem: unknown key, wrong type, malformed JSON, out-of-range option.
/// The message starts with the key path, e.g. "sac.actor_lr: expected number, got string".
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// A file could not be opened, read, written or renamed. The message names the file.
class IoError : public Error {
 public:
  using Error::Error;
};

/// A tensor or array has the wrong rank, size, dtype or device. The message names it and its shape.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A value is invalid: NaN/Inf, out of range, empty where data is required, unknown name.
class ValueError : public Error {
 public:
  using Error::Error;
};

/// A dataset file is structurally wrong (missing key, mismatched lengths, truncated, not HDF5).
/// The message names the file and the key.
class DatasetError : public Error {
 public:
  using Error::Error;
};

/// Training diverged: a SAC loss, Q-value, α or a model prediction became NaN/Inf. The message names the
/// epoch, the step and the quantity; the trainer throws before writing the epoch's checkpoint, so the last
/// checkpoint on disk is the last good state.
class DivergenceError : public Error {
 public:
  using Error::Error;
};

}  // namespace mopo
