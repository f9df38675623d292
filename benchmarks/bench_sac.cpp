// Benchmarks of SACAgent (include/mopo/agents/sac_agent.hpp) at the HalfCheetah sizes (obs 17, act 6),
// reference networks (256, 256) ReLU, batch 256, one intra-op thread (mopo::configure_process()).
//
//  * The single-thread 2048² sgemm rate is measured first (best of 7, wall clock) and printed; all floors use
//    it. BM_Sgemm/2048 and BM_Sgemm/256 show the rate again (256² = the size of SAC's hidden layers).
//  * BM_SACUpdate/<path>/<threads>: SACAgent::update on a fixed batch (critic, actor, α, Polyak); path 0 =
//    autograd (SACOptions::update = "autograd", the reference), 1 = fused (sac_fused_update.hpp); threads =
//    SACOptions::update_threads. FLOP count of the work the
//    update must do, per sample (multiply-adds × 2; A = actor MACs = 17·256 + 256² + 256·12, C = one critic
//    = 23·256 + 256² + 256):
//        target:  actor fwd on s' (A) + twin target fwd (2C)
//        critic:  twin fwd (2C) + weight grads (2C) + input grads (2C − 2·23·256)
//        actor:   actor fwd (A) + twin fwd (2C) + input grads through the frozen critics (2C)
//                 + actor weight grads (A) + input grads (A − 17·256)
//        ⇒ 4A + 10C − 2·23·256 − 17·256 = 992 512 MACs = 1.985 MFLOP/sample = 0.508 GFLOP/update.
//    performance-notes.md quotes ≈ 0.66 GFLOP/update for an implementation that also computes the critic
//    weight gradients in the actor step; both floors are printed. Counters: GFLOP/s achieved, floor_ms
//    (0.508 GFLOP at the measured one-thread 2048² sgemm rate: the 1-core floor), x_floor (time / 1-core
//    floor; issue 11's targets: ≤ 1.25 on one thread, ≤ 0.75 on two), and the same against the 0.66 GFLOP
//    reference count (x_ref_floor).
//  * BM_SACUpdateFromBuffer: the same plus ReplayBuffer::sample(256) from a 1 M-row buffer (the online
//    trainer's inner step).
//  * BM_ActOne/{0,1}: SACAgent::act for one observation given as doubles (0 = stochastic, 1 = deterministic);
//    target ≤ 20 µs.
//
// Run: build-dir/benchmarks/bench_sac
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/core/runtime.hpp"
#include "mopo/rollout/replay_buffer.hpp"

namespace {

constexpr int64_t kObs = 17;
constexpr int64_t kAct = 6;
constexpr int64_t kBatch = 256;
constexpr int64_t kHidden = 256;
constexpr double kActorMacs = kObs * kHidden + kHidden * kHidden + kHidden * 2 * kAct;
constexpr double kCriticMacs = (kObs + kAct) * kHidden + kHidden * kHidden + kHidden;
constexpr double kUpdateFlops =
    2.0 * kBatch * (4 * kActorMacs + 10 * kCriticMacs - 2.0 * (kObs + kAct) * kHidden - kObs * kHidden);
constexpr double kReferenceUpdateFlops = 0.66e9;  // performance-notes.md §3

double& sgemm_gflops() {  // measured 2048² single-thread rate
  static double g = 0;
  return g;
}

void BM_Sgemm(benchmark::State& state) {
  const int64_t n = state.range(0);
  torch::NoGradGuard no_grad;
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  auto c = torch::empty({n, n});
  for (auto _ : state) {
    torch::mm_out(c, a, b);
    benchmark::DoNotOptimize(c.data_ptr<float>());
  }
  const double flops = 2.0 * static_cast<double>(n * n * n);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

/// Best-of-7 wall-clock rate of a 2048² sgemm, measured once before the benchmarks (the floors' reference).
double measure_sgemm_gflops() {
  torch::NoGradGuard no_grad;
  const int64_t n = 2048;
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  auto c = torch::mm(a, b);
  double best = 1e30;
  for (int i = 0; i < 7; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    torch::mm_out(c, a, b);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return 2.0 * static_cast<double>(n * n * n) / best * 1e-9;
}

BENCHMARK(BM_Sgemm)->Arg(2048)->Arg(256)->Unit(benchmark::kMicrosecond)->UseRealTime();

mopo::Batch make_batch(mopo::RandomState& rs) {
  auto& g = rs.generator();
  return {torch::randn({kBatch, kObs}, g), torch::rand({kBatch, kAct}, g) * 2 - 1, torch::randn({kBatch}, g),
          torch::randn({kBatch, kObs}, g), (torch::rand({kBatch}, g) < 0.01).to(torch::kFloat32)};
}

/// Counters from the wall-clock time per update (google-benchmark's rate counters divide by CPU time).
void set_update_counters(benchmark::State& state, double seconds) {
  const double per_update = seconds / static_cast<double>(state.iterations());
  state.counters["GFLOP/s"] = kUpdateFlops / per_update * 1e-9;
  state.counters["updates/s"] = 1.0 / per_update;
  state.counters["floor_ms"] = kUpdateFlops / (sgemm_gflops() * 1e9) * 1e3;
  state.counters["x_floor"] = per_update / (kUpdateFlops / (sgemm_gflops() * 1e9));
  state.counters["x_ref_floor"] = per_update / (kReferenceUpdateFlops / (sgemm_gflops() * 1e9));
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

mopo::agents::SACOptions options_for(const benchmark::State& state) {
  mopo::agents::SACOptions o;
  o.update = state.range(0) == 0 ? "autograd" : "fused";
  o.update_threads = state.range(1);
  return o;
}

void BM_SACUpdate(benchmark::State& state) {
  mopo::agents::SACAgent agent(kObs, kAct, options_for(state), 1);
  state.SetLabel(std::string(state.range(0) == 0 ? "autograd" : "fused") + ", " +
                 std::to_string(state.range(1)) + " thread(s)");
  mopo::RandomState rs(2);
  const auto batch = make_batch(rs);
  for (int i = 0; i < 20; ++i) agent.update(batch);  // warm up allocator and Adam state
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(agent.update(batch));
  set_update_counters(state, seconds_since(t0));
}
BENCHMARK(BM_SACUpdate)
    ->Args({0, 1})
    ->Args({1, 1})
    ->Args({1, 2})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0)
    ->UseRealTime();

void BM_SACUpdateFromBuffer(benchmark::State& state) {
  mopo::agents::SACAgent agent(kObs, kAct, options_for(state), 1);
  mopo::rollout::ReplayBuffer buffer(1'000'000, kObs, kAct);
  mopo::RandomState rs(3);
  for (int i = 0; i < 1'000'000 / kBatch; ++i) buffer.add(make_batch(rs));
  for (int i = 0; i < 20; ++i) agent.update(buffer.sample(kBatch, rs));
  const auto t0 = std::chrono::steady_clock::now();
  for (auto _ : state) benchmark::DoNotOptimize(agent.update(buffer.sample(kBatch, rs)));
  set_update_counters(state, seconds_since(t0));
}
BENCHMARK(BM_SACUpdateFromBuffer)
    ->Args({1, 1})
    ->Args({1, 2})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0)
    ->UseRealTime();

void BM_ActOne(benchmark::State& state) {
  mopo::agents::SACAgent agent(kObs, kAct, {}, 1);
  const bool deterministic = state.range(0) != 0;
  std::vector<double> obs(kObs, 0.1);
  for (auto _ : state) benchmark::DoNotOptimize(agent.act(obs, deterministic));
  state.SetLabel(deterministic ? "deterministic" : "stochastic");
}
BENCHMARK(BM_ActOne)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  mopo::configure_process();  // malloc settings + 1 intra-op thread
  benchmark::Initialize(&argc, argv);
  sgemm_gflops() = measure_sgemm_gflops();
  std::printf(
      "sgemm 2048^2, 1 thread, best of 7: %.1f GFLOP/s; SAC update work: %.3f GFLOP (floor %.2f ms), "
      "reference count %.2f GFLOP (floor %.2f ms)\n",
      sgemm_gflops(), kUpdateFlops * 1e-9, kUpdateFlops / sgemm_gflops() * 1e-6, kReferenceUpdateFlops * 1e-9,
      kReferenceUpdateFlops / sgemm_gflops() * 1e-6);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
