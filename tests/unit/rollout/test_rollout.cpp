// RolloutBuffer and ModelRollout: ring wrap, exactly-k-epochs retention, rollout invariants.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>

#include "mopo/penalty/penalties.hpp"
#include "mopo/rollout/model_rollout.hpp"
#include "mopo/rollout/rollout_buffer.hpp"
#include "support/toy_model.hpp"

using Catch::Matchers::Contains;

namespace {
// Rows whose observation[0] encodes (epoch, index) so retention can be checked exactly.
mopo::Batch tagged_rows(int64_t epoch, int64_t n, int64_t obs_dim = 2, int64_t act_dim = 1) {
  const auto ids = torch::arange(n, torch::kFloat32) + 1000.0 * static_cast<double>(epoch);
  auto obs = torch::zeros({n, obs_dim});
  obs.select(1, 0).copy_(ids);
  return {obs, torch::zeros({n, act_dim}), ids.clone(), obs.clone(), torch::zeros({n})};
}
}  // namespace

TEST_CASE("RolloutBuffer keeps exactly the last k epochs, whatever their lengths", "[unit][rollout]") {
  mopo::rollout::RolloutBuffer buf(/*retain=*/3, /*epoch_capacity=*/10, 2, 1);
  CHECK(buf.capacity() == 30);
  const int64_t lengths[] = {10, 4, 7, 10, 1, 9, 10, 3};
  for (int64_t e = 0; e < 8; ++e) {
    buf.begin_epoch();
    // Add in two pieces to exercise partial adds and ring wrap-around.
    const auto rows = tagged_rows(e, lengths[e]);
    const int64_t half = lengths[e] / 2;
    if (half > 0) {
      buf.add({rows.observations.narrow(0, 0, half), rows.actions.narrow(0, 0, half),
               rows.rewards.narrow(0, 0, half), rows.next_observations.narrow(0, 0, half),
               rows.terminals.narrow(0, 0, half)});
    }
    buf.add({rows.observations.narrow(0, half, lengths[e] - half),
             rows.actions.narrow(0, half, lengths[e] - half), rows.rewards.narrow(0, half, lengths[e] - half),
             rows.next_observations.narrow(0, half, lengths[e] - half),
             rows.terminals.narrow(0, half, lengths[e] - half)});
    // Expected: the rows of epochs max(0, e-2)..e, oldest first.
    std::vector<float> expected;
    for (int64_t k = std::max<int64_t>(0, e - 2); k <= e; ++k) {
      for (int64_t i = 0; i < lengths[k]; ++i) expected.push_back(static_cast<float>(1000 * k + i));
    }
    const auto c = buf.contents();
    REQUIRE(buf.size() == static_cast<int64_t>(expected.size()));
    CHECK(buf.epochs() == std::min<int64_t>(e + 1, 3));
    CHECK(torch::equal(c.rewards, torch::tensor(expected)));
  }
  // Sampling draws only held rows (epochs 5, 6, 7).
  mopo::RandomState rng(3);
  const auto s = buf.sample(5000, rng);
  const auto epoch_of = (s.rewards / 1000).floor();
  CHECK(epoch_of.min().item<float>() == 5.0f);
  CHECK(epoch_of.max().item<float>() == 7.0f);
  // Every held row is reachable.
  CHECK(std::get<0>(at::_unique(s.rewards)).numel() == buf.size());
}

TEST_CASE("RolloutBuffer rejects overfull epochs, bad rows, empty sampling; save/load restores it",
          "[unit][rollout]") {
  mopo::rollout::RolloutBuffer buf(2, 5, 2, 1);
  mopo::RandomState rng(1);
  CHECK_THROWS_WITH(buf.sample(4, rng), Contains("empty"));
  buf.begin_epoch();
  CHECK_THROWS_WITH(buf.add(tagged_rows(0, 6)), Contains("more than epoch_capacity 5"));
  CHECK_THROWS_AS(buf.add(tagged_rows(0, 2, /*obs_dim=*/3)), mopo::ShapeError);
  auto nan_rows = tagged_rows(0, 2);
  nan_rows.rewards[1] = std::nan("");
  CHECK_THROWS_WITH(buf.add(nan_rows), Contains("rewards: contains NaN"));
  CHECK_THROWS_AS(mopo::rollout::RolloutBuffer(0, 5, 2, 1), mopo::ValueError);

  buf.add(tagged_rows(0, 5));
  buf.begin_epoch();
  buf.add(tagged_rows(1, 3));
  buf.begin_epoch();
  buf.add(tagged_rows(2, 4));
  torch::serialize::OutputArchive out;
  buf.save(out);
  std::stringstream ss;
  out.save_to(ss);
  torch::serialize::InputArchive in;
  in.load_from(ss);
  mopo::rollout::RolloutBuffer back(2, 5, 2, 1);
  back.load(in);
  CHECK(back.size() == 7);
  CHECK(back.epochs() == 2);
  CHECK(torch::equal(back.contents().rewards, buf.contents().rewards));
  back.begin_epoch();  // drops epoch 1 in both
  buf.begin_epoch();
  CHECK(torch::equal(back.contents().rewards, buf.contents().rewards));
}

TEST_CASE("ModelRollout: lengths <= h, terminated rows stop, r~ = r - lambda*u", "[unit][rollout]") {
  mopo::testing::ToyModel model;  // MaxStd penalty = max_i ||sigma_i|| = 0.3 * sqrt(D)
  const int64_t b = 64, o = 2, a = 1, h = 4;
  mopo::rollout::RolloutOptions opts;
  opts.rollout_batch = b;
  opts.horizon = h;
  const double lambda = 2.0;
  mopo::rollout::ModelRollout<mopo::penalty::MaxStd> rollout(
      mopo::penalty::PenaltyPolicy<mopo::penalty::MaxStd>(lambda), opts);
  mopo::rollout::RolloutBuffer buf(1, b * h, o, a);
  buf.begin_epoch();
  mopo::RandomState rng(11);
  // start states: obs[:,0] in [0, 1); policy pushes +1 per step (next = obs + 0.1); terminate when > 1.15
  const auto start = torch::rand({b, o}, rng.generator());
  auto policy = [&](const torch::Tensor& s) { return torch::ones({s.size(0), a}); };
  auto terminal = [](const torch::Tensor&, const torch::Tensor&, const torch::Tensor& next) {
    return next.select(1, 0) > 1.15;
  };
  auto no_truth = [](const torch::Tensor&, const torch::Tensor&) { return mopo::penalty::GroundTruth{}; };
  const auto stats = rollout.run(model, start, policy, terminal, no_truth, buf, rng);

  const auto c = buf.contents();
  CHECK(stats.starts == b);
  CHECK(stats.transitions == buf.size());
  CHECK(stats.mean_length <= static_cast<double>(h));
  CHECK(stats.nonfinite == 0);
  const double u = 0.3 * std::sqrt(3.0);
  CHECK(stats.mean_penalty == Approx(u).epsilon(1e-5));
  // Reward of the toy model is obs[:,0] of the *state*, sampled with noise from an elite: r~ = r^ - λu
  // is checked on the means: E[r~] over rows = mean(obs0) - λu within sampling noise (σ ≤ 0.2).
  CHECK(stats.mean_reward == Approx(stats.mean_raw_reward - lambda * u).margin(1e-4));
  // A row is stored after its terminal step only if it was alive: every terminal row has next_obs0 > 1.15
  const auto term = c.terminals > 0.5;
  CHECK((c.next_observations.select(1, 0).masked_select(term) > 1.15).all().item<bool>());
  CHECK((c.next_observations.select(1, 0).masked_select(term.logical_not()) <= 1.15).all().item<bool>());
  CHECK(stats.terminated == term.sum().item<int64_t>());
  // Number of stored rows equals the sum over start rows of their lengths: rows alive at step k
  // are those not terminated before, so transitions = b + (alive after step 1) + ...
  CHECK(stats.transitions < b * h);  // some rows terminated early (start + 0.4 > 1.15 for most)
  CHECK(stats.transitions >= b);
}

TEST_CASE("ModelRollout's short forms (strategy named once, no oracle) equal the long form",
          "[unit][rollout]") {
  mopo::testing::ToyModel model;
  mopo::rollout::RolloutOptions opts;
  opts.rollout_batch = 32;
  opts.horizon = 3;
  const mopo::rollout::ModelRollout<mopo::penalty::MaxStd> long_form(
      mopo::penalty::PenaltyPolicy<mopo::penalty::MaxStd>(0.7), opts);
  const mopo::rollout::ModelRollout<mopo::penalty::MaxStd> short_form(0.7, opts);
  CHECK(short_form.penalty().lambda() == 0.7);
  auto policy = [](const torch::Tensor& s) { return torch::tanh(s.narrow(1, 0, 1)); };
  auto terminal = [](const torch::Tensor&, const torch::Tensor&, const torch::Tensor& next) {
    return next.select(1, 0) > 1.15;
  };
  auto truth = [](const torch::Tensor&, const torch::Tensor&) { return mopo::penalty::GroundTruth{}; };
  mopo::RandomState start_rng(5);
  const auto start = torch::rand({32, 2}, start_rng.generator());
  mopo::rollout::RolloutBuffer a(1, 96, 2, 1), b(1, 96, 2, 1);
  a.begin_epoch();
  b.begin_epoch();
  mopo::RandomState rng_a(9), rng_b(9);
  const auto sa = long_form.run(model, start, policy, terminal, truth, a, rng_a);
  const auto sb = short_form.run(model, start, policy, terminal, b, rng_b);
  CHECK(sa.transitions == sb.transitions);
  CHECK(sa.mean_reward == sb.mean_reward);
  CHECK(a.contents().next_observations.equal(b.contents().next_observations));
  CHECK(a.contents().rewards.equal(b.contents().rewards));
}

TEST_CASE("ModelRollout: random-action mode ignores the policy; non-finite predictions are dropped",
          "[unit][rollout]") {
  mopo::testing::ToyModel model;
  mopo::rollout::RolloutOptions opts;
  opts.horizon = 3;
  opts.random_actions = true;
  mopo::rollout::ModelRollout<mopo::penalty::NoPenalty> rollout(
      mopo::penalty::PenaltyPolicy<mopo::penalty::NoPenalty>(0.0), opts);
  mopo::rollout::RolloutBuffer buf(1, 100 * 3, 2, 1);
  buf.begin_epoch();
  mopo::RandomState rng(2);
  auto policy = [](const torch::Tensor&) -> torch::Tensor {
    throw std::logic_error("policy must not be called");
  };
  auto never = [](const torch::Tensor& s, const torch::Tensor&, const torch::Tensor&) {
    return torch::zeros({s.size(0)}, torch::kBool);
  };
  auto no_truth = [](const torch::Tensor&, const torch::Tensor&) { return mopo::penalty::GroundTruth{}; };
  const auto stats = rollout.run(model, torch::zeros({100, 2}), policy, never, no_truth, buf, rng);
  CHECK(stats.transitions == 300);
  const auto acts = buf.contents().actions;
  CHECK(acts.min().item<float>() >= -1.0f);
  CHECK(acts.max().item<float>() <= 1.0f);
  CHECK(acts.std().item<float>() > 0.4f);  // uniform on [-1, 1]: std ≈ 0.577
  CHECK(stats.mean_penalty == 0.0);

  // A model that diverges on half the rows: those rows are dropped, not stored.
  struct Diverging : mopo::testing::ToyModel {
    [[nodiscard]] mopo::models::EnsemblePrediction predict(const torch::Tensor& obs,
                                                           const torch::Tensor& act) const {
      auto p = ToyModel::predict(obs, act);
      p.mean.narrow(1, 0, obs.size(0) / 2).fill_(std::numeric_limits<float>::infinity());
      return p;
    }
  } diverging;
  mopo::rollout::RolloutBuffer buf2(1, 100 * 3, 2, 1);
  buf2.begin_epoch();
  const auto s2 = rollout.run(diverging, torch::zeros({100, 2}), policy, never, no_truth, buf2, rng);
  CHECK(s2.nonfinite == 50 + 25 + 12);
  CHECK(s2.transitions == 50 + 25 + 13);
  CHECK(torch::isfinite(buf2.contents().next_observations).all().item<bool>());
}

TEST_CASE("ModelRollout with the oracle penalty calls the ground truth", "[unit][rollout]") {
  mopo::testing::ToyModel model;
  model.stds = {0.0, 0.0, 0.0};  // deterministic samples
  mopo::rollout::RolloutOptions opts;
  opts.horizon = 2;
  mopo::rollout::ModelRollout<mopo::penalty::TrueError> rollout(
      mopo::penalty::PenaltyPolicy<mopo::penalty::TrueError>(1.0), opts);
  mopo::rollout::RolloutBuffer buf(1, 20, 2, 1);
  buf.begin_epoch();
  mopo::RandomState rng(4);
  int calls = 0;
  // "Simulator" = the toy model's own mean shifted by 3 in obs[:,1] -> error exactly 3 per row.
  auto truth = [&](const torch::Tensor& s, const torch::Tensor& act) {
    ++calls;
    auto p = model.predict(s, act);
    auto next = p.mean[0].narrow(1, 0, 2).clone();
    next.select(1, 1).add_(3.0);
    return mopo::penalty::GroundTruth{next, p.mean[0].select(1, 2).clone()};
  };
  auto policy = [](const torch::Tensor& s) { return torch::zeros({s.size(0), 1}); };
  auto never = [](const torch::Tensor& s, const torch::Tensor&, const torch::Tensor&) {
    return torch::zeros({s.size(0)}, torch::kBool);
  };
  const auto stats = rollout.run(model, torch::zeros({10, 2}), policy, never, truth, buf, rng);
  CHECK(calls == 2);
  CHECK(stats.mean_penalty == Approx(3.0));
}
