// Tests of the dynamics ensemble: EnsembleLinear, GaussianEnsemble training/selection/prediction,
// spectral normalisation, save/load and input checks. Small networks and fixed seeds keep it fast.
#include <torch/torch.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "mopo/config/json_config.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/models/ensemble_linear.hpp"
#include "mopo/models/ensemble_prediction.hpp"
#include "mopo/models/gaussian_ensemble.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using mopo::models::EnsembleOptions;
using mopo::models::EnsembleTrainOptions;
using mopo::models::GaussianEnsemble;

namespace {

constexpr int64_t kObs = 3;
constexpr int64_t kAct = 2;

/// Synthetic heteroscedastic dynamics: s' = s + A s + B a + σ(s)·ε, r = s₁ − ½a₀ + σ(s)·ε_r with
/// σ(s) = 0.05·(1 + |s₀|), s, a ~ U(−1, 1) in-distribution.
struct Synthetic {
  torch::Tensor obs, act, next_obs, rew;
};

torch::Tensor true_sigma(const torch::Tensor& obs) { return 0.05 * (1.0 + obs.select(1, 0).abs()); }

torch::Tensor mean_delta(const torch::Tensor& obs, const torch::Tensor& act) {
  const auto a_mat = torch::tensor({{0.1, -0.2, 0.0}, {0.3, 0.1, -0.1}, {0.0, 0.2, 0.2}});
  const auto b_mat = torch::tensor({{0.5, 0.0}, {-0.3, 0.2}, {0.1, 0.4}});
  return torch::matmul(obs, a_mat.t()) + torch::matmul(act, b_mat.t());
}

Synthetic make_data(int64_t n, uint64_t seed, double scale = 1.0) {
  mopo::RandomState rng(seed);
  auto& g = rng.generator();
  Synthetic d;
  d.obs = (torch::rand({n, kObs}, g) * 2 - 1) * scale;
  d.act = torch::rand({n, kAct}, g) * 2 - 1;
  const auto sigma = true_sigma(d.obs).unsqueeze(1);
  d.next_obs = d.obs + mean_delta(d.obs, d.act) + sigma * torch::randn({n, kObs}, g);
  d.rew = d.obs.select(1, 1) - 0.5 * d.act.select(1, 0) + sigma.squeeze(1) * torch::randn({n}, g);
  return d;
}

EnsembleOptions small_options() {
  EnsembleOptions o;
  o.hidden = {64, 64};
  o.weight_decay = {2.5e-5, 5e-5, 1e-4};
  return o;
}

fs::path temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("mopo_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("EnsembleLinear equals N separate torch::nn::Linear layers", "[unit][models]") {
  mopo::seed_global(1);
  mopo::models::EnsembleLinear layer(mopo::models::EnsembleLinearOptions(4, 5, 3).weight_decay(0.5));
  {
    torch::NoGradGuard g;
    layer->bias.copy_(torch::randn({4, 1, 3}));
  }
  const auto x = torch::randn({4, 10, 5});
  const auto y = layer(x);
  REQUIRE(y.sizes() == torch::IntArrayRef({4, 10, 3}));
  double decay = 0.0;
  for (int64_t i = 0; i < 4; ++i) {
    torch::nn::Linear lin(5, 3);
    torch::NoGradGuard g;
    lin->weight.copy_(layer->weight[i].t());
    lin->bias.copy_(layer->bias[i][0]);
    CHECK(torch::allclose(lin(x[i]), y[i], 1e-5, 1e-6));
    decay += 0.5 * 0.5 * lin->weight.pow(2).sum().item<double>();
  }
  CHECK(layer->decay_loss().item<double>() == Approx(decay).epsilon(1e-5));
  // Initialisation: truncated normal, std 1/(2·sqrt(in)), cut at 2 std; biases start at zero.
  mopo::models::EnsembleLinear big(mopo::models::EnsembleLinearOptions(7, 100, 200));
  const double s = 1.0 / (2.0 * std::sqrt(100.0));
  CHECK(big->weight.abs().max().item<double>() <= 2 * s + 1e-7);
  // Variance of N(0, s²) truncated at ±2s is s²·0.7737.
  CHECK(big->weight.std().item<double>() == Approx(s * std::sqrt(0.7737)).epsilon(0.02));
  CHECK(big->bias.abs().max().item<double>() == 0.0);
  CHECK_THROWS_AS(layer(torch::randn({3, 10, 5})), mopo::ShapeError);
  CHECK_THROWS_AS(layer(torch::randn({4, 10, 6})), mopo::ShapeError);
}

TEST_CASE("GaussianEnsemble learns heteroscedastic noise; uncertainty grows out of distribution",
          "[unit][models]") {
  mopo::seed_global(7);
  const auto data = make_data(20000, 11);
  GaussianEnsemble model(kObs, kAct, small_options());
  // A fixed budget of 25 epochs (≈1 900 Adam steps) without holdout: with only 20 000 rows the mean-MSE
  // early stopping (tested below) fires before the variance head has converged; on D4RL-sized data one
  // epoch is ~3 900 steps.
  EnsembleTrainOptions train;
  train.holdout_ratio = 0.0;
  train.max_epochs = 25;
  train.seed = 3;
  const auto report = model.fit(data.obs, data.act, data.next_obs, data.rew, train);
  CHECK(report.stop_reason == "max_epochs");
  CHECK(report.holdout_size == 0);
  CHECK(report.train_size == 20000);
  REQUIRE(model.elites().size() == 5);

  // In distribution: the elites' mean σ is within 10 % of the true σ (averaged over test points).
  const auto test = make_data(4000, 12);
  const auto pred = model.predict(test.obs, test.act);
  REQUIRE(pred.mean.sizes() == torch::IntArrayRef({7, 4000, kObs + 1}));
  const auto elites = torch::tensor(model.elites(), torch::kLong);
  const auto sigma_hat = pred.std.index_select(0, elites).mean(0);  // [B, D]
  const auto sigma = true_sigma(test.obs).unsqueeze(1).expand({4000, kObs + 1});
  const double rel_err = ((sigma_hat - sigma).abs() / sigma).mean().item<double>();
  INFO("mean relative error of learned std: " << rel_err);
  CHECK(rel_err < 0.10);
  // The mean is right too: next_obs ≈ obs + Δobs(s, a).
  const auto expected_next = test.obs + mean_delta(test.obs, test.act);
  const double mean_err =
      (pred.next_obs_mean().index_select(0, elites).mean(0) - expected_next).abs().mean().item<double>();
  INFO("mean abs error of next_obs mean: " << mean_err);
  CHECK(mean_err < 0.02);

  // Far outside the data (|s| up to 10): disagreement and learned std are clearly larger.
  const auto far = make_data(4000, 13, 10.0);
  const auto pred_far = model.predict(far.obs, far.act);
  const double disagree_in = pred.mean.std(0).norm(2, 1).mean().item<double>();
  const double disagree_out = pred_far.mean.std(0).norm(2, 1).mean().item<double>();
  const double std_in = std::get<0>(pred.std.norm(2, 2).max(0)).mean().item<double>();
  const double std_out = std::get<0>(pred_far.std.norm(2, 2).max(0)).mean().item<double>();
  INFO("disagreement in " << disagree_in << " out " << disagree_out << "; max std in " << std_in << " out "
                          << std_out);
  CHECK(disagree_out > 5.0 * disagree_in);
  CHECK(std_out > 1.3 * std_in);

  // sample(): one elite per row, raw units, shapes [B, O] and [B].
  mopo::RandomState rng(5);
  const auto s = model.sample(test.obs, test.act, rng.generator());
  CHECK(s.next_obs.sizes() == torch::IntArrayRef({4000, kObs}));
  CHECK(s.reward.sizes() == torch::IntArrayRef({4000}));
  const auto residual = (s.next_obs - expected_next) / true_sigma(test.obs).unsqueeze(1);
  CHECK(residual.std().item<double>() == Approx(1.0).margin(0.1));
}

TEST_CASE("GaussianEnsemble early stopping restores the best snapshot; elites have the lowest holdout MSE",
          "[unit][models]") {
  mopo::seed_global(21);
  const auto data = make_data(600, 22);  // small: the holdout MSE stalls quickly
  GaussianEnsemble model(kObs, kAct, small_options());
  EnsembleTrainOptions train;
  train.max_epochs = 400;
  train.seed = 4;
  const auto report = model.fit(data.obs, data.act, data.next_obs, data.rew, train);
  REQUIRE(report.stop_reason == "early_stopping");
  CHECK(report.epochs() < 400);
  CHECK(report.holdout_size == 120);  // min(0.2·600, 1000)
  // The last 6 epochs had no improvement (original rule: stop when epochs_since_update > 5).
  REQUIRE(report.epochs() > 6);
  for (int64_t k = report.epochs() - 6; k < report.epochs(); ++k) {
    CHECK(report.history[static_cast<std::size_t>(k)].improved.empty());
  }
  CHECK(report.history.back().epochs_since_update == 6);

  // Each member holds the weights of the epoch it last improved.
  const auto hold = model.last_holdout_indices();
  REQUIRE(hold.numel() == 120);
  const auto mse = model.evaluate_mse(data.obs.index_select(0, hold), data.act.index_select(0, hold),
                                      data.next_obs.index_select(0, hold), data.rew.index_select(0, hold));
  bool restore_changed_something = false;
  for (int64_t i = 0; i < 7; ++i) {
    double snapshot_value = -1.0;
    for (const auto& ep : report.history) {
      if (std::find(ep.improved.begin(), ep.improved.end(), i) != ep.improved.end()) {
        snapshot_value = ep.holdout_mse[static_cast<std::size_t>(i)];
      }
    }
    INFO("member " << i);
    CHECK(report.best_holdout_mse[static_cast<std::size_t>(i)] == Approx(snapshot_value).epsilon(1e-4));
    CHECK(mse[i].item<double>() == Approx(snapshot_value).epsilon(1e-4));
    if (std::abs(report.history.back().holdout_mse[static_cast<std::size_t>(i)] - snapshot_value) >
        1e-4 * snapshot_value) {
      restore_changed_something = true;
    }
  }
  CHECK(restore_changed_something);

  // Elites: the 5 lowest best-holdout members, best first.
  auto order = std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6};
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return report.best_holdout_mse[static_cast<std::size_t>(a)] <
           report.best_holdout_mse[static_cast<std::size_t>(b)];
  });
  order.resize(5);
  CHECK(model.elites() == order);
  CHECK(report.elites == order);

  // Metrics rows for CSV/JSONL writers.
  const auto m = report.history.front().to_metrics();
  CHECK(m.contains("train_loss"));
  CHECK(m.contains("holdout_mse/6"));

  // A dataset with D4RL field names trains the same way as the tensors.
  struct Dataset {
    torch::Tensor observations, actions, next_observations, rewards;
  } ds{data.obs, data.act, data.next_obs, data.rew};
  mopo::seed_global(21);
  GaussianEnsemble from_dataset(kObs, kAct, small_options());
  CHECK(from_dataset.fit(ds, train).best_holdout_mse == report.best_holdout_mse);
  ds.next_observations = torch::Tensor();
  CHECK_THROWS_WITH(from_dataset.fit(ds, train), Contains("next_observations"));

  // Same seeds → same training (bit-for-bit on one thread count).
  mopo::seed_global(21);
  GaussianEnsemble again(kObs, kAct, small_options());
  const auto report2 = again.fit(data.obs, data.act, data.next_obs, data.rew, train);
  CHECK(report2.epochs() == report.epochs());
  CHECK(report2.best_holdout_mse == report.best_holdout_mse);
}

namespace {

double max_weight_difference(GaussianEnsemble& a, GaussianEnsemble& b) {
  const auto pa = a.network()->parameters(), pb = b.network()->parameters();
  REQUIRE(pa.size() == pb.size());
  double worst = 0;
  for (std::size_t i = 0; i < pa.size(); ++i)
    worst = std::max(worst, (pa[i] - pb[i]).abs().max().item<double>());
  return worst;
}

}  // namespace

TEST_CASE("the fused ensemble training step computes the autograd step", "[unit][models]") {
  // Same initial weights and data, same bootstrap and shuffles: the hand-written forward/backward and flat
  // Adam against LibTorch autograd and torch::optim::Adam, over 3 epochs of 4 minibatches (a ragged last
  // one), weight decay on every layer, three hidden layers of different widths.
  const auto data = make_data(460, 71);
  auto options = small_options();
  options.hidden = {32, 48, 24};
  options.weight_decay = {2.5e-5, 5e-5, 7.5e-5, 1e-4};
  options.ensemble_size = 5;
  options.num_elites = 3;
  EnsembleTrainOptions train;
  train.max_epochs = 3;
  train.batch_size = 100;
  train.max_holdout = 60;
  mopo::seed_global(72);
  GaussianEnsemble reference(kObs, kAct, options);
  mopo::seed_global(72);
  GaussianEnsemble fused(kObs, kAct, options);
  REQUIRE(max_weight_difference(reference, fused) == 0.0);
  auto autograd = train;
  autograd.step = "autograd";
  const auto ra = reference.fit(data.obs, data.act, data.next_obs, data.rew, autograd);
  const auto rf = fused.fit(data.obs, data.act, data.next_obs, data.rew, train);
  REQUIRE(ra.history.size() == rf.history.size());
  for (std::size_t i = 0; i < ra.history.size(); ++i) {
    CHECK(rf.history[i].train_loss == Approx(ra.history[i].train_loss).epsilon(1e-4));
    for (std::size_t m = 0; m < ra.history[i].holdout_mse.size(); ++m)
      CHECK(rf.history[i].holdout_mse[m] == Approx(ra.history[i].holdout_mse[m]).epsilon(1e-3));
  }
  const double diff = max_weight_difference(reference, fused);
  INFO("max weight difference after 3 epochs: " << diff);
  CHECK(diff < 1e-4);
  CHECK(ra.elites == rf.elites);

  SECTION("two threads give the one-thread result bit for bit") {
    auto one = train;
    one.threads = 1;
    auto two = train;
    two.threads = 2;
    mopo::seed_global(73);
    GaussianEnsemble a(kObs, kAct, options);
    mopo::seed_global(73);
    GaussianEnsemble b(kObs, kAct, options);
    const auto r1 = a.fit(data.obs, data.act, data.next_obs, data.rew, one);
    const auto r2 = b.fit(data.obs, data.act, data.next_obs, data.rew, two);
    CHECK(max_weight_difference(a, b) == 0.0);
    CHECK(r1.history.back().train_loss == r2.history.back().train_loss);
  }
  SECTION("bad step options are rejected") {
    auto bad = train;
    bad.step = "fast";
    CHECK_THROWS_WITH(fused.fit(data.obs, data.act, data.next_obs, data.rew, bad), Contains("step"));
    bad = train;
    bad.threads = 0;
    CHECK_THROWS_WITH(fused.fit(data.obs, data.act, data.next_obs, data.rew, bad), Contains("threads"));
  }
}

TEST_CASE("GaussianEnsemble fast predict equals the plain module path; predict_into reuses buffers",
          "[unit][models]") {
  mopo::seed_global(31);
  const auto data = make_data(500, 32);
  auto options = small_options();
  options.inference_chunk_rows = 37;  // several chunks and a ragged tail
  options.parallel_chunks = true;     // exercised below with two threads
  GaussianEnsemble model(kObs, kAct, options);
  EnsembleTrainOptions train;
  train.max_epochs = 3;
  model.fit(data.obs, data.act, data.next_obs, data.rew, train);
  const auto fast = model.predict(data.obs, data.act);
  const auto ref = model.predict_reference(data.obs, data.act);
  CHECK(torch::allclose(fast.mean, ref.mean, 1e-5, 1e-5));
  CHECK(torch::allclose(fast.std, ref.std, 1e-5, 1e-6));
  CHECK_FALSE(fast.mean.requires_grad());
  // Two threads: whole chunks run in parallel, one workspace slot per thread; same numbers.
  const int threads_before = at::get_num_threads();
  at::set_num_threads(2);
  const auto parallel = model.predict(data.obs, data.act);
  at::set_num_threads(threads_before);
  CHECK(torch::allclose(parallel.mean, ref.mean, 1e-5, 1e-5));
  CHECK(torch::allclose(parallel.std, ref.std, 1e-5, 1e-6));
  // std stays within the soft-clamped bounds.
  CHECK(fast.std.max().item<double>() <=
        std::exp(0.5 * model.network()->max_logvar.max().item<double>()) + 1e-6);

  mopo::models::EnsemblePrediction out;
  model.predict_into(data.obs, data.act, out);
  const auto* ptr = out.mean.data_ptr<float>();
  model.predict_into(data.obs, data.act, out);
  CHECK(out.mean.data_ptr<float>() == ptr);
  CHECK(torch::equal(out.mean, fast.mean));
  // Float64 inputs are accepted (converted to the model's dtype).
  CHECK(torch::allclose(model.predict(data.obs.to(torch::kFloat64), data.act.to(torch::kFloat64)).mean,
                        fast.mean));
  // Empty batch.
  CHECK(model.predict(torch::zeros({0, kObs}), torch::zeros({0, kAct})).mean.size(1) == 0);
}

TEST_CASE("sample_prediction draws only elites, uniformly, from their Gaussians", "[unit][models]") {
  const int64_t e = 4, b = 20000;
  auto mean = torch::zeros({e, b, 3});
  for (int64_t i = 0; i < e; ++i) mean[i].fill_(static_cast<double>(i));
  mopo::models::EnsemblePrediction pred{mean, torch::zeros({e, b, 3})};
  mopo::RandomState rng(9);
  const auto s = mopo::models::sample_prediction(pred, {1, 3}, rng.generator());
  CHECK(torch::equal(s.next_obs.select(1, 0), s.member.to(torch::kFloat)));
  CHECK(torch::equal(s.reward, s.member.to(torch::kFloat)));
  const double frac3 = (s.member == 3).to(torch::kDouble).mean().item<double>();
  CHECK(((s.member == 1) | (s.member == 3)).all().item<bool>());
  CHECK(frac3 == Approx(0.5).margin(0.02));
  // With noise: draws have the member's std.
  pred.std = torch::full({e, b, 3}, 0.5);
  const auto noisy = mopo::models::sample_prediction(pred, {2}, rng.generator());
  CHECK((noisy.next_obs - 2.0).std().item<double>() == Approx(0.5).epsilon(0.03));
  const auto det = mopo::models::sample_prediction(pred, {2}, rng.generator(), /*deterministic=*/true);
  CHECK(torch::all(det.next_obs == 2.0).item<bool>());
  CHECK_THROWS_AS(mopo::models::sample_prediction(pred, {}, rng.generator()), mopo::ValueError);
  CHECK_THROWS_AS(mopo::models::sample_prediction(pred, {4}, rng.generator()), mopo::ValueError);
}

TEST_CASE("Spectral normalisation: largest singular value of each normalised layer is ~1 after warm-up",
          "[unit][models]") {
  mopo::seed_global(41);
  const auto data = make_data(2000, 42);
  auto options = small_options();
  options.spectral_norm = true;
  GaussianEnsemble model(kObs, kAct, options);
  EnsembleTrainOptions train;
  train.max_epochs = 20;
  model.fit(data.obs, data.act, data.next_obs, data.rew, train);
  auto net = model.network();
  std::vector<mopo::models::EnsembleLinear> normalised = net->hidden;
  normalised.push_back(net->mean_head);
  net->eval();
  for (auto& layer : normalised) {
    REQUIRE(layer->options.spectral_norm());
    // Training ran one power iteration per step while the weights moved; warm up on the final weights
    // (the estimate converges at rate (σ₂/σ₁)², slow when the top singular values are close).
    for (int k = 0; k < 500; ++k) layer->power_iteration();
    const auto w = layer->effective_weight().detach();
    const auto sv = torch::linalg::svdvals(w, c10::nullopt);  // [E, min(in, out)]
    const auto top = std::get<0>(sv.max(1));
    INFO("top singular values " << top);
    CHECK(torch::allclose(top, torch::ones_like(top), 0.0, 0.03));
  }
  CHECK_FALSE(net->logvar_head->options.spectral_norm());
  // Prediction works and matches the module path with the normalised weights.
  const auto fast = model.predict(data.obs, data.act);
  const auto ref = model.predict_reference(data.obs, data.act);
  CHECK(torch::allclose(fast.mean, ref.mean, 1e-5, 1e-5));
}

TEST_CASE("GaussianEnsemble save -> load gives identical predictions; bad files throw IoError",
          "[unit][models]") {
  const auto dir = temp_dir("ensemble");
  mopo::seed_global(51);
  const auto data = make_data(400, 52);
  auto options = small_options();
  options.spectral_norm = true;  // the persistent u/v vectors round-trip too
  GaussianEnsemble model(kObs, kAct, options);
  EnsembleTrainOptions train;
  train.max_epochs = 2;
  model.fit(data.obs, data.act, data.next_obs, data.rew, train);
  model.set_elites({6, 0, 2, 3, 1});
  const auto file = dir / "sub" / "dynamics.pt";
  model.save(file);
  const auto loaded = GaussianEnsemble::load(file);
  CHECK((loaded.elites() == std::vector<int64_t>{6, 0, 2, 3, 1}));
  CHECK(loaded.options().spectral_norm);
  CHECK(loaded.options().hidden == options.hidden);
  const auto a = model.predict(data.obs, data.act);
  const auto b = loaded.predict(data.obs, data.act);
  CHECK(torch::equal(a.mean, b.mean));
  CHECK(torch::equal(a.std, b.std));
  mopo::RandomState r1(3), r2(3);
  CHECK(torch::equal(model.sample(data.obs, data.act, r1.generator()).next_obs,
                     loaded.sample(data.obs, data.act, r2.generator()).next_obs));
  // No temporary files left behind.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir / "sub")) files += entry.is_regular_file() ? 1 : 0;
  CHECK(files == 1);

  CHECK_THROWS_AS(GaussianEnsemble::load(dir / "missing.pt"), mopo::IoError);
  {
    std::ofstream junk(dir / "junk.pt");
    junk << "not a model";
  }
  CHECK_THROWS_WITH(GaussianEnsemble::load(dir / "junk.pt"), Contains("junk.pt"));
  // A Normalizer file is a torch archive but not an ensemble.
  model.input_normalizer().save(dir / "norm.pt");
  CHECK_THROWS_AS(GaussianEnsemble::load(dir / "norm.pt"), mopo::IoError);
  GaussianEnsemble untrained(kObs, kAct, small_options());
  CHECK_THROWS_AS(untrained.save(dir / "u.pt"), mopo::ValueError);
  fs::remove_all(dir);
}

TEST_CASE("GaussianEnsemble rejects bad input and bad options with clear errors", "[unit][models]") {
  mopo::seed_global(61);
  GaussianEnsemble model(kObs, kAct, small_options());
  const auto data = make_data(100, 62);
  // Not trained yet.
  CHECK_THROWS_WITH(model.predict(data.obs, data.act), Contains("not trained"));
  // Shapes.
  CHECK_THROWS_WITH(model.fit(data.obs.narrow(1, 0, 2), data.act, data.next_obs, data.rew),
                    Contains("obs") && Contains("[100, 2]"));
  CHECK_THROWS_AS(model.fit(data.obs, data.act.narrow(0, 0, 50), data.next_obs, data.rew), mopo::ShapeError);
  CHECK_THROWS_AS(model.fit(data.obs, data.act, data.next_obs, data.rew.narrow(0, 0, 99)), mopo::ShapeError);
  CHECK_THROWS_AS(model.fit(data.obs, data.act, data.next_obs, torch::zeros({100, 2})), mopo::ShapeError);
  // NaN / Inf.
  auto bad = data.next_obs.clone();
  bad[7][1] = std::nan("");
  CHECK_THROWS_WITH(model.fit(data.obs, data.act, bad, data.rew), Contains("next_obs") && Contains("NaN"));
  auto bad_rew = data.rew.clone();
  bad_rew[3] = INFINITY;
  CHECK_THROWS_AS(model.fit(data.obs, data.act, data.next_obs, bad_rew), mopo::ValueError);
  // Options.
  EnsembleTrainOptions train;
  train.batch_size = 0;
  CHECK_THROWS_AS(model.fit(data.obs, data.act, data.next_obs, data.rew, train), mopo::ConfigError);
  EnsembleTrainOptions no_holdout;
  no_holdout.holdout_ratio = 0.0;
  no_holdout.max_epochs = 0;  // no limit at all: early stopping needs holdout rows
  CHECK_THROWS_WITH(model.fit(data.obs, data.act, data.next_obs, data.rew, no_holdout), Contains("holdout"));
  no_holdout.max_epochs = 1;  // allowed with a limit; elites then ranked on the training split
  CHECK(model.fit(data.obs, data.act, data.next_obs, data.rew, no_holdout).stop_reason == "max_epochs");

  // After training: predict checks too.
  CHECK_THROWS_AS(model.predict(data.obs, data.act.narrow(1, 0, 1)), mopo::ShapeError);
  CHECK_THROWS_AS(model.predict(data.obs.narrow(0, 0, 10), data.act), mopo::ShapeError);
  auto nan_obs = data.obs.clone();
  nan_obs[0][0] = std::nan("");
  CHECK_THROWS_WITH(model.predict(nan_obs, data.act), Contains("obs") && Contains("NaN"));
  CHECK_THROWS_AS(model.set_elites({0, 0}), mopo::ValueError);
  CHECK_THROWS_AS(model.set_elites({7}), mopo::ValueError);

  EnsembleOptions o = small_options();
  o.num_elites = 8;
  CHECK_THROWS_WITH(GaussianEnsemble(kObs, kAct, o), Contains("num_elites"));
  o = small_options();
  o.weight_decay = {1e-4};
  CHECK_THROWS_WITH(GaussianEnsemble(kObs, kAct, o), Contains("weight_decay"));
  CHECK_THROWS_AS(GaussianEnsemble(0, kAct), mopo::ValueError);

  // JSON: defaults are MOPO's; unknown keys are rejected with the key path.
  const auto defaults = mopo::config::to_json(EnsembleOptions{});
  CHECK(defaults["ensemble_size"] == 7);
  CHECK(defaults["num_elites"] == 5);
  CHECK((defaults["hidden"] == nlohmann::json::array({200, 200, 200, 200})));
  EnsembleOptions parsed;
  mopo::config::from_json(nlohmann::json{{"hidden", {32}}, {"weight_decay", {1e-5, 1e-4}}}, parsed);
  CHECK(parsed.hidden == std::vector<int64_t>{32});
  CHECK_THROWS_WITH(mopo::config::from_json(nlohmann::json{{"hiden", {32}}}, parsed), Contains("hiden"));
  EnsembleTrainOptions parsed_train;
  CHECK_THROWS_AS(mopo::config::from_json(nlohmann::json{{"lr", -1.0}}, parsed_train), mopo::ConfigError);
}
