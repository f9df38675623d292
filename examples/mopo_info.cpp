// mopo_info: prints what a mopo program runs on (version, BLAS, threads, MuJoCo) and measures the
// single-thread sgemm rate that the benchmarks compare against. A quick check of an installation.
#include <chrono>
#include <iostream>

#include <mopo/mopo.hpp>
#ifdef MOPO_HAS_MUJOCO
#include <mujoco/mujoco.h>
#endif

int main() {
  mopo::configure_process();
  std::cout << "mopo " << mopo::kVersion << "\n"
            << "  LibTorch:         " << TORCH_VERSION << "\n"
            << "  BLAS:             " << mopo::blas_library()
            << (mopo::blas_is_openblas() ? "" : "  (NOT OpenBLAS: expect 15-30x slower training)") << "\n"
            << "  intra-op threads: " << at::get_num_threads() << "\n";
#ifdef MOPO_HAS_MUJOCO
  std::cout << "  MuJoCo:           " << mj_versionString() << "\n";
#endif
  torch::NoGradGuard guard;
  const int64_t n = 1024;
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  auto c = torch::mm(a, b);
  const int reps = 10;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) torch::mm_out(c, a, b);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "  sgemm 1024^2:     " << 2.0 * n * n * n * reps / s / 1e9 << " GFLOP/s (1 thread)\n";
  return 0;
}
