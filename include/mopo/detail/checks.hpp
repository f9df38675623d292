/// @file checks.hpp
/// @brief Internal argument checks (not API). Throw mopo errors with the offending name and shape.
#pragma once

#include <torch/torch.h>

#include <initializer_list>
#include <sstream>
#include <string>

#include "mopo/core/error.hpp"

namespace mopo::detail {

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
