// Benchmarks of the LibTorch-free deploy runtime (include/mopo/deploy, issue 15) beside the LibTorch paths,
// HalfCheetah sizes (obs 17, act 6), one thread for both. Built with -march=native (Eigen needs it;
// performance-notes.md §1), set in benchmarks/CMakeLists.txt for this program only.
//
//  * BM_Sgemm_{Torch,Eigen}: 1024² sgemm through LibTorch (OpenBLAS) and Eigen — this run's FLOP rate. The
//    floors below use the faster of the two.
//  * BM_Act_*: one observation → one action, actor 17 → 256 → 256 → 12 (ReLU): 2·(17·256 + 256² + 256·12)
//    = 0.146 MFLOP. Deploy (Policy::act) vs the agent's lean LibTorch path SACAgent::act(std::vector<double>)
//    (8.7 / 10.6 µs in performance-notes.md §5). Target: deterministic deploy ≤ 3 µs. Counter x_floor =
//    time / (FLOP / sgemm rate); a matrix-vector product streams its 0.29 MB of weights once per call, so
//    the sgemm floor is not reachable here — it is reported for scale only.
//  * BM_Predict50k_*: 7 members × 50 000 rows, 23 → 200⁴ → 2 × 18 swish: 2·(23·200 + 3·200² + 200·36)
//    = 0.2636 MFLOP per row per member ⇒ 92.3 GFLOP per call. Deploy (DynamicsEnsemble::predict) vs
//    GaussianEnsemble::predict_into (the trainer's fast path). Counters GFLOP/s and x_floor.
//
// Run (machine otherwise idle): flock /tmp/mopo-heavy.lock build/benchmarks/bench_deploy
// With a trained actor: MOPO_BENCH_ZOO_POLICY=data/zoo/policies/halfcheetah/policy_150000.pt (same command).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <Eigen/Core>

#include <unistd.h>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "mopo/agents/policy_file.hpp"
#include "mopo/agents/sac_agent.hpp"
#include "mopo/core/normalizer.hpp"
#include "mopo/core/random.hpp"
#include "mopo/core/runtime.hpp"
#include "mopo/deploy/deploy.hpp"
#include "mopo/deploy/export.hpp"
#include "mopo/models/gaussian_ensemble.hpp"

namespace {

constexpr int64_t kObs = 17;
constexpr int64_t kAct = 6;
constexpr int64_t kRows = 50000;
constexpr int64_t kMembers = 7;
constexpr double kActFlop = 2.0 * (17 * 256 + 256 * 256 + 256 * 12);
constexpr double kPredictFlop = 2.0 * (23 * 200 + 3 * 200 * 200 + 200 * 36) * kMembers * kRows;

double& sgemm_rate() {  // best measured sgemm FLOP/s in this run
  static double rate = 0.0;
  return rate;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void report(benchmark::State& state, double flop, double seconds, int64_t n) {
  const double per_call = seconds / static_cast<double>(std::max<int64_t>(n, 1));
  state.counters["GFLOP/s"] = flop / per_call / 1e9;
  if (sgemm_rate() > 0.0) state.counters["x_floor"] = per_call / (flop / sgemm_rate());
}

std::filesystem::path temp_file(const std::string& name) {
  return std::filesystem::temp_directory_path() / ("mopo_bench_" + name + "_" + std::to_string(::getpid()));
}

/// The HalfCheetah actor: freshly initialised, or a trained zoo policy when MOPO_BENCH_ZOO_POLICY names
/// one (e.g. data/zoo/policies/halfcheetah/policy_150000.pt). A trained ReLU net has its own share of
/// zero activations, which Policy::act skips.
mopo::agents::SACAgent& agent() {
  static mopo::agents::SACAgent a = [] {
    mopo::agents::SACAgent out(kObs, kAct, {}, 1);
    if (const char* file = std::getenv("MOPO_BENCH_ZOO_POLICY")) mopo::agents::load_policy(out, file);
    return out;
  }();
  return a;
}

mopo::deploy::Policy& policy() {
  static mopo::deploy::Policy p = [] {
    const auto file = temp_file("policy");
    mopo::deploy::export_policy(agent(), file);
    auto loaded = mopo::deploy::Policy::load(file);
    std::filesystem::remove(file);
    return loaded;
  }();
  return p;
}

mopo::models::GaussianEnsemble& ensemble() {
  static mopo::models::GaussianEnsemble m = [] {
    mopo::seed_global(1);
    mopo::models::GaussianEnsemble e(kObs, kAct);  // 7 members, 4 × 200, chunk 4096
    e.set_input_normalizer(mopo::Normalizer(torch::zeros({kObs + kAct}), torch::ones({kObs + kAct})));
    return e;
  }();
  return m;
}

struct Rows {
  torch::Tensor obs, act;
  mopo::deploy::RowMatrixXf obs_e, act_e;
};
const Rows& rows() {
  static const Rows r = [] {
    mopo::RandomState rng(2);
    Rows out{
        torch::randn({kRows, kObs}, rng.generator()), torch::randn({kRows, kAct}, rng.generator()), {}, {}};
    out.obs_e = Eigen::Map<const mopo::deploy::RowMatrixXf>(out.obs.data_ptr<float>(), kRows, kObs);
    out.act_e = Eigen::Map<const mopo::deploy::RowMatrixXf>(out.act.data_ptr<float>(), kRows, kAct);
    return out;
  }();
  return r;
}

void BM_Sgemm_Torch(benchmark::State& state) {
  const auto a = torch::randn({1024, 1024});
  const auto b = torch::randn({1024, 1024});
  auto c = torch::empty({1024, 1024});
  torch::mm_out(c, a, b);
  double seconds = 0.0;
  int64_t n = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    torch::mm_out(c, a, b);
    seconds += seconds_since(t0);
    ++n;
  }
  const double rate = 2.0 * 1024.0 * 1024.0 * 1024.0 * static_cast<double>(n) / seconds;
  sgemm_rate() = std::max(sgemm_rate(), rate);
  state.counters["GFLOP/s"] = rate / 1e9;
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  state.SetLabel(std::string("OPENBLAS_CORETYPE=") + (core ? core : "(unset)"));
}

void BM_Sgemm_Eigen(benchmark::State& state) {
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(1024, 1024);
  const Eigen::MatrixXf b = Eigen::MatrixXf::Random(1024, 1024);
  Eigen::MatrixXf c(1024, 1024);
  c.noalias() = a * b;
  double seconds = 0.0;
  int64_t n = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    seconds += seconds_since(t0);
    ++n;
  }
  const double rate = 2.0 * 1024.0 * 1024.0 * 1024.0 * static_cast<double>(n) / seconds;
  sgemm_rate() = std::max(sgemm_rate(), rate);
  state.counters["GFLOP/s"] = rate / 1e9;
}

void BM_Act_Deploy(benchmark::State& state) {
  const bool deterministic = state.range(0) != 0;
  auto& p = policy();
  Eigen::VectorXf obs = rows().obs_e.row(0).transpose();
  Eigen::VectorXf action(kAct);
  std::mt19937_64 rng(3);
  double seconds = 0.0;
  int64_t n = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    if (deterministic) {
      p.act(obs, action);
    } else {
      p.act(obs, action, rng);
    }
    benchmark::DoNotOptimize(action.data());
    seconds += seconds_since(t0);
    ++n;
  }
  report(state, kActFlop, seconds, n);
  if (deterministic) {  // parity of this build with the agent on 256 observations
    double err = 0.0;
    for (int64_t r = 0; r < 256; ++r) {
      const Eigen::VectorXf o = rows().obs_e.row(r).transpose();
      const auto ref = agent().act(std::vector<double>(o.data(), o.data() + o.size()), true);
      p.act(o, action);
      for (int64_t j = 0; j < kAct; ++j)
        err = std::max(err, std::abs(static_cast<double>(action[j]) - ref[static_cast<std::size_t>(j)]));
    }
    state.counters["max_abs_vs_torch"] = err;
  }
  state.SetLabel(std::string(deterministic ? "deterministic" : "stochastic") +
                 (std::getenv("MOPO_BENCH_ZOO_POLICY") ? ", trained zoo policy" : ", initial weights"));
}

void BM_Act_TorchLean(benchmark::State& state) {
  const bool deterministic = state.range(0) != 0;
  auto& a = agent();
  const Eigen::VectorXf o = rows().obs_e.row(0).transpose();
  const std::vector<double> obs(o.data(), o.data() + o.size());
  double seconds = 0.0;
  int64_t n = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    auto action = a.act(obs, deterministic);
    benchmark::DoNotOptimize(action.data());
    seconds += seconds_since(t0);
    ++n;
  }
  report(state, kActFlop, seconds, n);
  state.SetLabel(deterministic ? "deterministic" : "stochastic");
}

void BM_Predict50k_Deploy(benchmark::State& state) {
  static mopo::deploy::DynamicsEnsemble model = [] {
    const auto file = temp_file("dynamics");
    mopo::deploy::export_dynamics(ensemble(), file);
    auto loaded = mopo::deploy::DynamicsEnsemble::load(file);
    std::filesystem::remove(file);
    return loaded;
  }();
  model.set_block_rows(state.range(0));
  mopo::deploy::Prediction pred;
  model.predict(rows().obs_e, rows().act_e, pred);  // allocates the output once
  double seconds = 0.0;
  int64_t n = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    model.predict(rows().obs_e, rows().act_e, pred);
    benchmark::DoNotOptimize(pred.mean.data());
    seconds += seconds_since(t0);
    ++n;
  }
  report(state, kPredictFlop, seconds, n);
  // Parity of this -march=native build with the LibTorch model on the same 50 000 rows.
  const auto ref = ensemble().predict(rows().obs, rows().act);
  const auto ref_mean = ref.mean.contiguous();
  const auto ref_std = ref.std.contiguous();
  using Map = Eigen::Map<const mopo::deploy::RowMatrixXf>;
  state.counters["max_abs_mean"] =
      (pred.mean - Map(ref_mean.data_ptr<float>(), pred.mean.rows(), pred.mean.cols())).cwiseAbs().maxCoeff();
  state.counters["max_abs_std"] =
      (pred.std - Map(ref_std.data_ptr<float>(), pred.std.rows(), pred.std.cols())).cwiseAbs().maxCoeff();
  state.SetLabel("block_rows " + std::to_string(state.range(0)));
}

void BM_Predict50k_Torch(benchmark::State& state) {
  auto& model = ensemble();
  mopo::models::EnsemblePrediction pred;
  model.predict_into(rows().obs, rows().act, pred);
  double seconds = 0.0;
  int64_t n = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    model.predict_into(rows().obs, rows().act, pred);
    seconds += seconds_since(t0);
    ++n;
  }
  report(state, kPredictFlop, seconds, n);
  state.SetLabel("GaussianEnsemble::predict_into, chunk 4096");
}

}  // namespace

BENCHMARK(BM_Sgemm_Torch)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Sgemm_Eigen)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Act_Deploy)->Arg(1)->Arg(0)->Repetitions(3)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Act_TorchLean)->Arg(1)->Arg(0)->Repetitions(3)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Predict50k_Deploy)
    ->Arg(64)
    ->Arg(256)
    ->Arg(1024)
    ->Iterations(3)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Predict50k_Torch)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
  mopo::configure_process();  // one intra-op thread, malloc tuned (performance-notes.md §1)
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
