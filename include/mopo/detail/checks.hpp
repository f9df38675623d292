/// @file checks.hpp
/// @brief Internal argument checks (not API). Throw mopo errors with the offending name and shape.
#pragma once

#include <torch/torch.h>

#include <exception>
#include <initializer_list>
#include <sstream>
#include <string>

#include "mopo/core/error.hpp"

namespace mopo::detail {

/// The message of an exception LibTorch threw while reading a file: c10::Error without its C++ backtrace,
/// else what(). torch::load also throws torch::jit::ErrorReport (a std::exception, not a c10::Error) for a
/// damaged archive, so readers catch std::exception.
inline std::string torch_message(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) return c10_error->what_without_backtrace();
  return e.what();
}

/// Throws IoError naming `what` if `t`'s sizes, strides and offset reach past its storage's byte size, as
/// they can in a tensor read from a damaged archive. (LibTorch 1.13 also takes the storage's byte size from
/// the pickle without comparing it with the record it reads; that case cannot be seen from the tensor:
/// docs/reliability.md#fuzzing.)
inline void check_storage(const torch::Tensor& t, const std::string& what) {
  if (!t.defined() || t.numel() == 0 || t.is_sparse()) return;
  int64_t last = t.storage_offset();
  bool ok = last >= 0;
  for (int64_t i = 0; ok && i < t.dim(); ++i) {
    int64_t extent = 0;
    ok = t.stride(i) >= 0 && !__builtin_mul_overflow(t.size(i) - 1, t.stride(i), &extent) &&
         !__builtin_add_overflow(last, extent, &last);
  }
  int64_t bytes = 0;
  ok = ok && !__builtin_mul_overflow(last + 1, static_cast<int64_t>(t.element_size()), &bytes) &&
       bytes <= static_cast<int64_t>(t.storage().nbytes());
  if (!ok) {
    throw IoError(what + ": tensor of sizes " + c10::str(t.sizes()) + ", strides " + c10::str(t.strides()) +
                  " and offset " + std::to_string(t.storage_offset()) + " reaches past its storage of " +
                  std::to_string(t.storage().nbytes()) + " bytes (damaged file)");
  }
}

/// "[256, 17] float32" style description of a tensor for error messages.
inline std::string describe(const torch::Tensor& t) {
  if (!t.defined()) return "<undefined tensor>";
  std::ostringstream os;
  os << '[';
  for (int64_t i = 0; i < t.dim(); ++i) os << (i ? ", " : "") << t.size(i);
  os << "] " << c10::toString(t.scalar_type());
  return os.str();
}

/// Checks rank and sizes; -1 in `sizes` matches any size. Throws ShapeError naming `what`.
inline void check_shape(const torch::Tensor& t, std::initializer_list<int64_t> sizes,
                        const std::string& what) {
  bool ok = t.defined() && t.dim() == static_cast<int64_t>(sizes.size());
  if (ok) {
    int64_t i = 0;
    for (int64_t s : sizes) {
      if (s >= 0 && t.size(i) != s) ok = false;
      ++i;
    }
  }
  if (!ok) {
    std::ostringstream os;
    os << what << ": expected shape [";
    int64_t i = 0;
    for (int64_t s : sizes) {
      os << (i++ ? ", " : "");
      if (s < 0)
        os << '*';
      else
        os << s;
    }
    os << "], got " << describe(t);
    throw ShapeError(os.str());
  }
}

/// Throws ValueError naming `what` if `t` holds a NaN or an Inf (floating types only).
inline void check_finite(const torch::Tensor& t, const std::string& what) {
  if (!t.defined() || !t.is_floating_point() || t.numel() == 0) return;
  if (!torch::isfinite(t).all().item<bool>()) {
    const auto bad = torch::logical_not(torch::isfinite(t)).nonzero();
    std::ostringstream os;
    const auto first = bad[0].contiguous();
    os << what << ": contains NaN or Inf (" << bad.size(0) << " of " << t.numel()
       << " values; first at index [";
    for (int64_t i = 0; i < first.numel(); ++i) os << (i ? ", " : "") << first[i].item<int64_t>();
    os << "])";
    throw ValueError(os.str());
  }
}

}  // namespace mopo::detail
