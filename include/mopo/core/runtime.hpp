/// @file runtime.hpp
/// @brief Process set-up for mopo programs, and run-time facts (which BLAS LibTorch really uses).
///
/// Measured on the project's machines (docs/performance.md):
/// - glibc malloc returns blocks > 32 MB to the OS on free and page-faults them back on the next use,
///   which makes big-batch inference ~10× slower; `configure_process()` keeps them (M_MMAP_MAX = 0,
///   high M_TRIM_THRESHOLD).
/// - One intra-op thread is fastest for batch-256 training; two help only big rollouts.
/// - Without OpenBLAS, LibTorch runs on Debian's reference BLAS, 15–30× slower.
#pragma once

#include <malloc.h>
#include <torch/torch.h>

#include <fstream>
#include <string>
#include <vector>

namespace mopo {

/// What configure_process() does.
struct ProcessOptions {
  int intra_op_threads = 1;  ///< at::set_num_threads; 1 is fastest for batch-256 updates
  bool tune_malloc = true;   ///< keep large blocks instead of mmap/munmap churn
};

/// Process-wide glibc malloc settings for big-batch tensor work: large blocks come from the heap and
/// freed memory stays there (no mmap/munmap churn, no trimming), so re-used blocks are not page-faulted
/// in again. Idempotent. The price: the process keeps its peak heap until exit.
inline void tune_malloc() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
}

/// Call first thing in main() of a program that uses mopo (examples and benchmarks do).
inline void configure_process(const ProcessOptions& options = {}) {
  if (options.tune_malloc) tune_malloc();
  if (options.intra_op_threads > 0) at::set_num_threads(options.intra_op_threads);
}

/// Paths of the shared libraries mapped into this process whose file name contains `needle`.
inline std::vector<std::string> loaded_libraries(const std::string& needle) {
  std::vector<std::string> out;
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const auto base = path.substr(path.rfind('/') + 1);
    if (base.find(needle) == std::string::npos) continue;
    bool seen = false;
    for (const auto& p : out) seen = seen || p == path;
    if (!seen) out.push_back(path);
  }
  return out;
}

/// The BLAS library file LibTorch's matrix products run on (after running one), e.g.
/// "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3", or "" if none is mapped.
inline std::string blas_library() {
  {
    torch::NoGradGuard guard;
    const auto a = torch::ones({8, 8});
    (void)torch::mm(a, a).sum().item<float>();  // make sure the BLAS is loaded and used
  }
  for (const auto& p : loaded_libraries("blas")) {
    if (p.find("libblas") != std::string::npos || p.find("openblas") != std::string::npos) return p;
  }
  return "";
}

/// True when the BLAS in this process is OpenBLAS (the path names it, or libopenblas is mapped).
inline bool blas_is_openblas() {
  const std::string blas = blas_library();
  return blas.find("openblas") != std::string::npos || !loaded_libraries("libopenblas").empty();
}

}  // namespace mopo
