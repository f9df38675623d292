/// @file checks.hpp
/// @brief Internal argument checks (not API). Throw mopo errors with the offending name and shape.
#pragma once

#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#if defined(__GLIBC__)
#include <malloc.h>  // malloc_usable_size
#endif

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

/// The bytes allocated behind `storage` if LibTorch's default CPU allocator made them (posix_memalign, so
/// malloc_usable_size knows the block: the exact request under ASan, a few bytes more under glibc), else -1
/// (another allocator, or not glibc: unknown).
inline int64_t allocated_bytes(const c10::Storage& storage) {
  const c10::DataPtr& data = storage.data_ptr();
  if (data.get() == nullptr) return 0;
#if defined(__GLIBC__)
  if (data.get_deleter() == c10::GetDefaultCPUAllocator()->raw_deleter() &&
      data.get_context() == data.get()) {
    return static_cast<int64_t>(malloc_usable_size(data.get()));
  }
#endif
  return -1;
}

/// Throws IoError naming `what` if `t`'s sizes, strides and offset reach past its storage's byte size, as
/// they can in a tensor read from a damaged archive, or if the storage claims more bytes than were
/// allocated for it: LibTorch 1.13 takes a storage's byte size from the pickle and its bytes from the zip
/// record without comparing the two (a trainer.pt whose rng.engine claimed 6379 bytes over a 4352-byte
/// record made mopo read past the buffer; trainer_state fuzz target, campaign of 2026-12-02).
inline void check_storage(const torch::Tensor& t, const std::string& what) {
  if (!t.defined() || t.is_sparse()) return;
  const auto claimed = static_cast<int64_t>(t.storage().nbytes());
  const int64_t allocated = allocated_bytes(t.storage());
  if (allocated >= 0 && claimed > allocated) {
    throw IoError(what + ": tensor storage of " + std::to_string(claimed) + " bytes, but only " +
                  std::to_string(allocated) + " were read from the file (damaged file)");
  }
  if (t.numel() == 0) return;
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
