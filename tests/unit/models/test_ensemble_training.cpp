// Tests of the training part of the dynamics ensemble (models/ensemble_training.hpp): learning
// heteroscedastic noise, early stopping and elite selection, the two fit() overloads, the fused step
// against autograd, and input/option checks.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "mopo/config/json_config.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/models/gaussian_ensemble.hpp"
#include "support/synthetic_dynamics.hpp"

using Catch::Matchers::Contains;
using mopo::models::EnsembleOptions;
using mopo::models::EnsembleTrainOptions;
using mopo::models::GaussianEnsemble;
using namespace mopo::testing;  // kObs, kAct, make_data, small_ensemble_options, …

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

TEST_CASE("GaussianEnsemble learns heteroscedastic noise; uncertainty grows out of distribution",
          "[unit][models]") {
  mopo::seed_global(7);
  const auto data = make_data(20000, 11);
  GaussianEnsemble model(kObs, kAct, small_ensemble_options());
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
  GaussianEnsemble model(kObs, kAct, small_ensemble_options());
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
  GaussianEnsemble from_dataset(kObs, kAct, small_ensemble_options());
  CHECK(from_dataset.fit(ds, train).best_holdout_mse == report.best_holdout_mse);
  ds.next_observations = torch::Tensor();
  CHECK_THROWS_WITH(from_dataset.fit(ds, train), Contains("next_observations"));

  // Same seeds → same training (bit-for-bit on one thread count).
  mopo::seed_global(21);
  GaussianEnsemble again(kObs, kAct, small_ensemble_options());
  const auto report2 = again.fit(data.obs, data.act, data.next_obs, data.rew, train);
  CHECK(report2.epochs() == report.epochs());
  CHECK(report2.best_holdout_mse == report.best_holdout_mse);
}

TEST_CASE("the two fit overloads (tensors, dataset) train the same parameters from the same data and seed",
          "[unit][models]") {
  const auto data = make_data(300, 81);
  struct Dataset {
    torch::Tensor observations, actions, next_observations, rewards;
  } const ds{data.obs, data.act, data.next_obs, data.rew};
  EnsembleTrainOptions train;
  train.max_epochs = 3;
  train.seed = 6;
  const auto fresh = [] {
    mopo::seed_global(82);  // the same initial weights for every model below
    return GaussianEnsemble(kObs, kAct, small_ensemble_options());
  };
  const auto same = [](GaussianEnsemble& a, GaussianEnsemble& b) {
    CHECK(max_weight_difference(a, b) == 0.0);
    CHECK(a.elites() == b.elites());
    CHECK(torch::equal(a.input_normalizer().mean(), b.input_normalizer().mean()));
    CHECK(torch::equal(a.input_normalizer().std(), b.input_normalizer().std()));
    CHECK(torch::equal(a.last_holdout_indices(), b.last_holdout_indices()));
  };

  // Tensors and dataset, each with a RandomState and a callback.
  auto from_tensors = fresh();
  mopo::RandomState rng_t(train.seed);
  std::vector<int64_t> epochs_t;
  const auto rt =
      from_tensors.fit(data.obs, data.act, data.next_obs, data.rew, train, &rng_t,
                       [&](const mopo::models::EnsembleEpoch& e) { epochs_t.push_back(e.epoch); });
  auto from_dataset = fresh();
  mopo::RandomState rng_d(train.seed);
  std::vector<int64_t> epochs_d;
  const auto rd = from_dataset.fit(
      ds, train, &rng_d, [&](const mopo::models::EnsembleEpoch& e) { epochs_d.push_back(e.epoch); });
  same(from_tensors, from_dataset);
  CHECK(rt.best_holdout_mse == rd.best_holdout_mse);
  CHECK((epochs_t == std::vector<int64_t>{1, 2, 3}));
  CHECK(epochs_d == epochs_t);
  // Both drew from the generator they were given, equally.
  CHECK(torch::equal(torch::rand({4}, rng_t.generator()), torch::rand({4}, rng_d.generator())));

  // Without a RandomState both seed one from options.seed: the same result again.
  auto seeded_tensors = fresh();
  seeded_tensors.fit(data.obs, data.act, data.next_obs, data.rew, train);
  auto seeded_dataset = fresh();
  seeded_dataset.fit(ds, train);
  same(from_tensors, seeded_tensors);
  same(from_tensors, seeded_dataset);

  // Another seed gives another model (the generator is really used).
  auto other = fresh();
  mopo::RandomState rng_o(train.seed + 1);
  other.fit(ds, train, &rng_o);
  CHECK(max_weight_difference(from_tensors, other) > 0.0);
}

TEST_CASE("the fused ensemble training step computes the autograd step", "[unit][models]") {
  // Same initial weights and data, same bootstrap and shuffles: the hand-written forward/backward and flat
  // Adam against LibTorch autograd and torch::optim::Adam, over 3 epochs of 4 minibatches (a ragged last
  // one), weight decay on every layer, three hidden layers of different widths.
  const auto data = make_data(460, 71);
  auto options = small_ensemble_options();
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

TEST_CASE("GaussianEnsemble rejects bad input and bad options with clear errors", "[unit][models]") {
  mopo::seed_global(61);
  GaussianEnsemble model(kObs, kAct, small_ensemble_options());
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

  EnsembleOptions o = small_ensemble_options();
  o.num_elites = 8;
  CHECK_THROWS_WITH(GaussianEnsemble(kObs, kAct, o), Contains("num_elites"));
  o = small_ensemble_options();
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
