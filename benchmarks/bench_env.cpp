// Benchmarks of the simulated tasks (include/mopo/env/), one core unless stated:
//
//  * BM_MjStep<Task>: raw mj_step on the task's model — the floor: an env step cannot be cheaper than
//    frame_skip × this (HalfCheetah: 5 × ~5.3 µs ≈ 26 µs ⇒ ≤ ~38 000 env steps/s, performance-notes.md).
//  * BM_EnvStep<Task>: MujocoEnv::step with random actions in [−1, 1] (action check, clip, frame_skip ×
//    mj_step, reward, termination, observation vector), resetting on episode end. Counter: steps/s.
//    Target: HalfCheetah ≥ 30 000 env steps/s.
//  * BM_TrueStep<Task>/B: the batched oracle true_step on B rows (restore state from observation,
//    mj_forward, one env step, observation) — what the TrueError penalty calls. Counter: rows/s; the
//    argument pair is (rows, intra-op threads).
//  * BM_HivStep: one HIV day (adaptive Dormand–Prince, rtol = atol = 1e-8).
//
// Run: build-dir/benchmarks/bench_env   (add --benchmark_filter=... to select)
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdint>
#include <random>
#include <vector>

#include "mopo/core/runtime.hpp"
#include "mopo/env/hiv.hpp"
#include "mopo/env/mujoco/tasks/ant.hpp"
#include "mopo/env/mujoco/tasks/half_cheetah.hpp"
#include "mopo/env/mujoco/tasks/hopper.hpp"
#include "mopo/env/mujoco/tasks/walker2d.hpp"

namespace {

template <class Env>
void BM_MjStep(benchmark::State& state) {
  Env env;
  env.reset(0);
  auto data = mopo::env::mujoco::make_data(env.model());
  mj_forward(env.model(), data.get());
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  int64_t n = 0;
  for (auto _ : state) {
    for (int i = 0; i < env.model()->nu; ++i) data->ctrl[i] = u(rng);
    mj_step(env.model(), data.get());
    if (++n % 1000 == 0) mj_resetData(env.model(), data.get());
  }
  state.counters["steps/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

template <class Env>
void BM_EnvStep(benchmark::State& state) {
  Env env;
  env.reset(0);
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  mopo::env::Vector a(static_cast<std::size_t>(env.action_dim()));
  uint64_t episode = 0;
  for (auto _ : state) {
    for (auto& x : a) x = u(rng);
    const auto r = env.step(a);
    benchmark::DoNotOptimize(r.reward);
    if (r.terminated || r.truncated) env.reset(++episode);
  }
  state.counters["steps/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

template <class Env>
void BM_TrueStep(benchmark::State& state) {
  const int64_t rows = state.range(0);
  at::set_num_threads(static_cast<int>(state.range(1)));
  Env env;
  // Realistic inputs: observations from a random-action rollout.
  std::vector<float> obs;
  auto o = env.reset(0);
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  mopo::env::Vector a(static_cast<std::size_t>(env.action_dim()));
  for (int64_t i = 0; i < rows; ++i) {
    obs.insert(obs.end(), o.begin(), o.end());
    for (auto& x : a) x = u(rng);
    const auto r = env.step(a);
    o = (r.terminated || r.truncated) ? env.reset(static_cast<uint64_t>(i)) : r.observation;
  }
  const auto tobs = torch::from_blob(obs.data(), {rows, env.observation_dim()}, torch::kFloat32).clone();
  const auto tact = torch::rand({rows, env.action_dim()}) * 2 - 1;
  for (auto _ : state) {
    auto res = env.true_step(tobs, tact);
    benchmark::DoNotOptimize(res.rewards.template data_ptr<float>());
  }
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * rows), benchmark::Counter::kIsRate);
  at::set_num_threads(1);
}

void BM_HivStep(benchmark::State& state) {
  mopo::env::Hiv env;
  env.reset(0);
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (auto _ : state) {
    const auto r = env.step({u(rng), u(rng)});
    benchmark::DoNotOptimize(r.reward);
    if (r.truncated) env.reset(0);
  }
  state.counters["steps/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

using mopo::env::Ant;
using mopo::env::HalfCheetah;
using mopo::env::Hopper;
using mopo::env::Walker2d;

}  // namespace

BENCHMARK_TEMPLATE(BM_MjStep, HalfCheetah);
BENCHMARK_TEMPLATE(BM_MjStep, Hopper);
BENCHMARK_TEMPLATE(BM_MjStep, Walker2d);
BENCHMARK_TEMPLATE(BM_MjStep, Ant);
BENCHMARK_TEMPLATE(BM_EnvStep, HalfCheetah);
BENCHMARK_TEMPLATE(BM_EnvStep, Hopper);
BENCHMARK_TEMPLATE(BM_EnvStep, Walker2d);
BENCHMARK_TEMPLATE(BM_EnvStep, Ant);
BENCHMARK_TEMPLATE(BM_TrueStep, HalfCheetah)->Args({1024, 1})->Args({1024, 2})->UseRealTime();
BENCHMARK_TEMPLATE(BM_TrueStep, Hopper)->Args({1024, 1})->Args({1024, 2})->UseRealTime();
BENCHMARK_TEMPLATE(BM_TrueStep, Walker2d)->Args({1024, 1})->UseRealTime();
BENCHMARK_TEMPLATE(BM_TrueStep, Ant)->Args({1024, 1})->Args({1024, 2})->UseRealTime();
BENCHMARK(BM_HivStep);

int main(int argc, char** argv) {
  mopo::configure_process();  // first thing (glibc malloc pitfall), 1 intra-op thread
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
