// bench_mopo_epoch: one MOPO epoch on HalfCheetah shapes (obs 17, act 6): 1 000 SAC updates at batch
// 256 (12 real + 244 model rows) plus one rollout of 50 000 starts × h = 5 through a 7-member 4×200
// ensemble with the MaxStd penalty — MopoTrainer::train_epoch() exactly as training runs it.
//
// FLOP floor (docs/performance.md): SAC ≈ 0.66 GFLOP/update × 1 000 + rollout ≈ 92 GFLOP/step × 5 ≈
// 1.12 TFLOP per epoch, plus the 50 000-row policy forward per step (≈ 0.05 TFLOP over h = 5).
// Reported: wall time, floor at the sgemm rate measured in this run (1 thread), and the ratio.
// No environment variables. The library leaves the allocator alone (issue 14: no process-wide setting
// from a constructor); programs call mopo::configure_process() or mopo::tune_malloc() first thing, as the
// examples do. The fourth argument says whether this case runs after mopo::tune_malloc() (1) or with
// glibc's defaults (0; these cases run first, as a process cannot untune). Arguments:
// MopoConfig::rollout_threads, the threads of the rollout (1: one thread throughout; 2: the library default),
// whether the ensemble runs whole inference chunks per thread (EnsembleOptions::parallel_chunks) instead of
// threaded GEMMs, and SACOptions::update_threads (the fused SAC update on 1 or 2 threads). x_floor_2core =
// wall time / (floor at 2 × the one-thread sgemm rate); issue 11's target is ≤ 1.3. Dataset: random rows of
// the right shapes (timing does not depend on the values); the model is trained for 2 epochs so its
// normaliser and elites exist.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>

#include <mopo/train/mopo_trainer.hpp>

namespace {

constexpr double kSacFlopsPerUpdate = 0.66e9;
constexpr double kRolloutFlopsPerStep = 7 * 50'000 * 0.27e6;
constexpr double kPolicyFlopsPerStep = 50'000 * 2.0 * (17 * 256 + 256 * 256 + 256 * 12);

double sgemm_gflops() {
  static double rate = [] {
    torch::NoGradGuard g;
    const auto a = torch::randn({2048, 2048}), b = torch::randn({2048, 2048});
    auto c = torch::mm(a, b);
    double best = 0;
    for (int i = 0; i < 5; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      torch::mm_out(c, a, b);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, 2.0 * 2048.0 * 2048.0 * 2048.0 / s / 1e9);
    }
    return best;
  }();
  return rate;
}

mopo::data::TransitionDataset random_dataset(int64_t n) {
  mopo::RandomState rng(0);
  mopo::data::TransitionDataset d;
  d.observations = torch::randn({n, 17}, rng.generator());
  d.actions = torch::rand({n, 6}, rng.generator()) * 2 - 1;
  d.rewards = torch::randn({n}, rng.generator());
  d.next_observations = d.observations + 0.1 * torch::randn({n, 17}, rng.generator());
  d.terminals = torch::zeros({n}, torch::kBool);
  return d;
}

void BM_MopoEpoch(benchmark::State& state) {
  static bool tuned = false;
  if (state.range(3) != 0) {
    mopo::tune_malloc();  // what mopo::configure_process() does in every example program
    tuned = true;
  } else if (tuned) {
    state.SkipWithError("malloc already tuned in this process; run the glibc cases first");
    return;
  }
  at::set_num_threads(1);
  mopo::train::MopoConfig cfg;
  cfg.rollout_threads = state.range(0);
  cfg.ensemble.parallel_chunks = state.range(1) != 0;  // whole inference chunks per thread
  cfg.sac.update_threads = state.range(2);
  cfg.task = "halfcheetah";
  cfg.rollout.rollout_batch = 50'000;
  cfg.rollout.horizon = 5;
  cfg.model_training.max_epochs = 2;
  mopo::train::Mopo trainer(cfg, random_dataset(20'000));
  trainer.train_model();
  (void)trainer.train_epoch();  // warm-up: allocates buffers, fills the model buffer once
  double rollout_s = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) {
    const auto m = trainer.train_epoch();
    rollout_s += m.at("rollout/seconds");
  }
  const double epoch_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                         static_cast<double>(state.iterations());
  const double floor_s =
      (kSacFlopsPerUpdate * 1000 + (kRolloutFlopsPerStep + kPolicyFlopsPerStep) * 5) / (sgemm_gflops() * 1e9);
  state.counters["sgemm_gflops_1thr"] = sgemm_gflops();
  state.counters["floor_s_1thr"] = floor_s;
  state.counters["x_floor_2core"] = epoch_s / (floor_s / 2);
  state.counters["update_threads"] = static_cast<double>(state.range(2));
  state.counters["rollout_s"] = rollout_s / static_cast<double>(state.iterations());
  state.counters["rollout_threads"] = static_cast<double>(cfg.rollout_threads);
  state.counters["parallel_chunks"] = static_cast<double>(state.range(1));
  state.counters["malloc_tuned"] = static_cast<double>(state.range(3));
}
BENCHMARK(BM_MopoEpoch)
    ->Args({2, 0, 2, 0})  // glibc malloc defaults: what a program that never tunes it gets
    ->Args({1, 0, 1, 1})
    ->Args({2, 0, 1, 1})
    ->Args({2, 0, 2, 1})
    ->Args({2, 1, 2, 1})
    ->Iterations(3)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
