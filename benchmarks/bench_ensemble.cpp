// Benchmarks of the MOPO dynamics ensemble (include/mopo/models/gaussian_ensemble.hpp), HalfCheetah sizes
// (obs 17, act 6 → in 23, D 18), 7 members, 4×200 swish, two heads:
//
//  * BM_Sgemm: torch::mm 2048² — the machine's sgemm peak measured in this run (the reference figure).
//  * BM_Predict*: the rollout workload, 7 members × 50 000 rows. Forward FLOP floor: 2·(23·200 + 3·200² +
//    200·36) = 0.2636 MFLOP per row per member ⇒ 92.3 GFLOP per call. Counters: GFLOP/s and pct_sgemm
//    (percent of BM_Sgemm at the same thread count). Target ≥ 60 %.
//      - Reference = plain LibTorch module path (one unchunked forward, fresh [7, 50 000, 200] temporaries).
//      - Fast      = GaussianEnsemble::predict_into (chunked, preallocated workspace, *_out ops, in-place
//                    swish, no autograd).
//    Each is run first with glibc's default malloc (the page-fault pitfall: blocks > 32 MB are mmap'd and
//    unmapped on every call) and then after mopo::configure_process() has tuned malloc, to show that the
//    fast path does not depend on the allocator settings. This is why this program calls
//    configure_process() only half-way (all other programs call it first thing).
//  * BM_TrainEpoch/<step>/<threads>: fit() throughput, one epoch of 40 minibatches of 256 per member (7
//    members) plus the holdout evaluations on 256 rows: transitions per second per member, ms per optimiser
//    step, and GFLOP/s at ≈3× the forward FLOPs (forward + backward; Adam and the evaluations not counted).
//    step 0 = autograd (EnsembleTrainOptions::step = "autograd"; `threads` intra-op threads), 1 = fused
//    (ensemble_fused_step.hpp; EnsembleTrainOptions::threads = `threads`, one intra-op thread).
//    x_floor_1core = time / (FLOPs at the one-thread sgemm rate); issue 11's targets: pct_sgemm ≥ 80 on
//    one thread, x_floor_1core ≤ 0.65 on two.
//
// Run: build-dir/benchmarks/bench_ensemble   (add --benchmark_filter=... to select)
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>

#include "mopo/core/normalizer.hpp"
#include "mopo/core/random.hpp"
#include "mopo/core/runtime.hpp"
#include "mopo/models/gaussian_ensemble.hpp"

namespace {

constexpr int64_t kObs = 17;
constexpr int64_t kAct = 6;
constexpr int64_t kMembers = 7;
constexpr int64_t kRows = 50000;
constexpr double kForwardFlopPerRow = 2.0 * (23 * 200 + 3 * 200 * 200 + 200 * 36);  // per member

std::map<int64_t, double>& sgemm_gflops() {  // threads → measured sgemm GFLOP/s
  static std::map<int64_t, double> m;
  return m;
}

bool& malloc_tuned() {
  static bool tuned = false;
  return tuned;
}

void tune_malloc_once() {
  if (malloc_tuned()) return;
  mopo::ProcessOptions opts;
  opts.intra_op_threads = 0;  // leave the thread count to each benchmark
  mopo::configure_process(opts);
  malloc_tuned() = true;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void report(benchmark::State& state, double flop, double seconds, int64_t threads) {
  const double gflops = flop / seconds / 1e9;
  state.counters["GFLOP/s"] = gflops;
  const auto it = sgemm_gflops().find(threads);
  if (it != sgemm_gflops().end()) state.counters["pct_sgemm"] = 100.0 * gflops / it->second;
}

mopo::models::GaussianEnsemble& model_with_chunk(int64_t chunk, bool parallel_chunks) {
  static std::map<std::pair<int64_t, bool>, std::unique_ptr<mopo::models::GaussianEnsemble>> models;
  auto& m = models[{chunk, parallel_chunks}];
  if (!m) {
    mopo::seed_global(1);
    mopo::models::EnsembleOptions options;
    options.inference_chunk_rows = chunk;
    options.parallel_chunks = parallel_chunks;
    m = std::make_unique<mopo::models::GaussianEnsemble>(kObs, kAct, options);
    m->set_input_normalizer(mopo::Normalizer(torch::zeros({kObs + kAct}), torch::ones({kObs + kAct})));
  }
  return *m;
}

struct Batch {
  torch::Tensor obs, act;
};
const Batch& rollout_batch() {
  static const Batch b = [] {
    mopo::RandomState rng(2);
    return Batch{torch::randn({kRows, kObs}, rng.generator()), torch::randn({kRows, kAct}, rng.generator())};
  }();
  return b;
}

std::string blas_label() {
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  return std::string("OPENBLAS_CORETYPE=") + (core ? core : "(unset)");
}

void BM_Sgemm(benchmark::State& state) {
  const int64_t threads = state.range(0);
  at::set_num_threads(static_cast<int>(threads));
  const auto a = torch::randn({2048, 2048});
  const auto b = torch::randn({2048, 2048});
  auto c = torch::empty({2048, 2048});
  torch::mm_out(c, a, b);  // warm-up
  double seconds = 0.0;
  int64_t n = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    torch::mm_out(c, a, b);
    seconds += seconds_since(t0);
    ++n;
  }
  const double gflops = 2.0 * 2048.0 * 2048.0 * 2048.0 * static_cast<double>(n) / seconds / 1e9;
  sgemm_gflops()[threads] = gflops;
  state.counters["GFLOP/s"] = gflops;
  state.SetLabel(blas_label());
}

void predict_bench(benchmark::State& state, bool fast, bool tuned) {
  const int64_t threads = state.range(0);
  const int64_t chunk = state.range(1);
  if (tuned) {
    tune_malloc_once();
  } else if (malloc_tuned()) {
    state.SkipWithError("malloc already tuned in this process; run the glibc benchmarks first");
    return;
  }
  at::set_num_threads(static_cast<int>(threads));
  const bool parallel_chunks = state.range(2) != 0;
  auto& model = model_with_chunk(chunk > 0 ? chunk : 4096, parallel_chunks);  // reference ignores both
  const auto& batch = rollout_batch();
  mopo::models::EnsemblePrediction out;
  if (fast) model.predict_into(batch.obs, batch.act, out);  // first call sizes the buffers
  double seconds = 0.0;
  int64_t n = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if (fast) {
      model.predict_into(batch.obs, batch.act, out);
      benchmark::DoNotOptimize(out.mean.data_ptr<float>());
    } else {
      auto pred = model.predict_reference(batch.obs, batch.act);
      benchmark::DoNotOptimize(pred.mean.data_ptr<float>());
    }
    seconds += seconds_since(t0);
    ++n;
  }
  report(state, kForwardFlopPerRow * kMembers * kRows * static_cast<double>(n), seconds, threads);
  state.SetLabel(blas_label());
  state.counters["rows/s"] = static_cast<double>(kRows * n) / seconds;
}

void BM_PredictReference_GlibcMalloc(benchmark::State& state) { predict_bench(state, false, false); }
void BM_PredictFast_GlibcMalloc(benchmark::State& state) { predict_bench(state, true, false); }
void BM_PredictReference_TunedMalloc(benchmark::State& state) { predict_bench(state, false, true); }
void BM_PredictFast_TunedMalloc(benchmark::State& state) { predict_bench(state, true, true); }

void BM_TrainEpoch(benchmark::State& state) {
  tune_malloc_once();
  const bool fused = state.range(0) != 0;
  const int64_t threads = state.range(1);
  at::set_num_threads(static_cast<int>(fused ? 1 : threads));
  constexpr int64_t kTrainRows = 256 * 40 + 256;  // 40 minibatches + a 256-row holdout
  mopo::RandomState rng(3);
  const auto obs = torch::randn({kTrainRows, kObs}, rng.generator());
  const auto act = torch::randn({kTrainRows, kAct}, rng.generator());
  const auto next_obs = obs + 0.1 * torch::randn({kTrainRows, kObs}, rng.generator());
  const auto rew = torch::randn({kTrainRows}, rng.generator());
  mopo::models::EnsembleTrainOptions train;
  // A small holdout keeps the two evaluation passes (per epoch, after restore) at ~2 % of the epoch.
  train.holdout_ratio = 256.5 / static_cast<double>(kTrainRows);
  train.max_epochs = 1;
  train.step = fused ? "fused" : "autograd";
  train.threads = threads;
  mopo::seed_global(4);
  mopo::models::GaussianEnsemble model(kObs, kAct);
  model.fit(obs, act, next_obs, rew, train);  // warm-up
  double seconds = 0.0;
  int64_t n = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    model.fit(obs, act, next_obs, rew, train);
    seconds += seconds_since(t0);
    ++n;
  }
  const double rows = static_cast<double>((kTrainRows - 256) * n);
  state.counters["transitions/s/member"] = rows / seconds;
  state.counters["ms/step"] = 1e3 * seconds / (static_cast<double>(n) * 40.0);
  const double flop = 3.0 * kForwardFlopPerRow * kMembers * rows;
  report(state, flop, seconds, threads);
  const auto one = sgemm_gflops().find(1);
  if (one != sgemm_gflops().end()) state.counters["x_floor_1core"] = seconds / (flop / (one->second * 1e9));
  state.SetLabel(std::string(fused ? "fused" : "autograd") + ", " + std::to_string(threads) + " thread(s)");
  at::set_num_threads(1);
}

}  // namespace

// Args: {threads, inference_chunk_rows (0 = n/a), parallel_chunks}.
BENCHMARK(BM_Sgemm)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PredictReference_GlibcMalloc)
    ->Args({1, 0, 0})
    ->Args({2, 0, 0})
    ->Iterations(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PredictFast_GlibcMalloc)
    ->Args({1, 4096, 1})
    ->Args({2, 4096, 1})
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PredictReference_TunedMalloc)
    ->Args({1, 0, 0})
    ->Args({2, 0, 0})
    ->Iterations(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PredictFast_TunedMalloc)
    ->Args({1, 1024, 1})
    ->Args({1, 4096, 1})
    ->Args({1, 16384, 1})
    ->Args({2, 4096, 0})
    ->Args({2, 4096, 1})
    ->Args({2, 16384, 0})
    ->Args({2, 16384, 1})
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TrainEpoch)
    ->Args({0, 1})
    ->Args({0, 2})
    ->Args({1, 1})
    ->Args({1, 2})
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  // Deliberately no configure_process() here: see the header comment.
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
