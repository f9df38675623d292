// Penalty strategies and PenaltyPolicy: hand-computed values, invariants, the concept checks.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>

#include "mopo/core/random.hpp"
#include "mopo/penalty/penalties.hpp"

using mopo::models::EnsemblePrediction;
using mopo::models::EnsembleSample;
namespace penalty = mopo::penalty;
using Catch::Matchers::Contains;

namespace {
// E = 2 members, B = 2 rows, D = 3 (obs_dim 2 + reward).
EnsemblePrediction hand_prediction() {
  EnsemblePrediction p;
  p.mean = torch::tensor({{{1.0f, 2.0f, 0.5f}, {0.0f, 0.0f, 1.0f}},  //
                          {{3.0f, 2.0f, 0.7f}, {0.0f, 4.0f, 1.0f}}});
  p.std = torch::tensor({{{3.0f, 4.0f, 0.0f}, {1.0f, 0.0f, 0.0f}},  //
                         {{1.0f, 1.0f, 1.0f}, {2.0f, 2.0f, 1.0f}}});
  return p;
}
EnsemblePrediction random_prediction(int64_t e, int64_t b, int64_t d, uint64_t seed) {
  mopo::RandomState rng(seed);
  EnsemblePrediction p;
  p.mean = torch::randn({e, b, d}, rng.generator());
  p.std = torch::rand({e, b, d}, rng.generator()) + 0.01;
  return p;
}
}  // namespace

TEST_CASE("MaxStd = max_i ||sigma_i||_2 over all dims (reward included)", "[unit][penalty]") {
  const auto u = penalty::MaxStd{}(hand_prediction());
  // row 0: member norms 5 and sqrt(3) -> 5; row 1: 1 and 3 -> 3
  CHECK(u[0].item<float>() == Approx(5.0f));
  CHECK(u[1].item<float>() == Approx(3.0f));
}

TEST_CASE("MaxCovNorm = max_i ||sigma_i^2||_2 (the paper's Frobenius form)", "[unit][penalty]") {
  const auto u = penalty::MaxCovNorm{}(hand_prediction());
  CHECK(u[0].item<float>() == Approx(std::sqrt(81.0f + 256.0f)));
  CHECK(u[1].item<float>() == Approx(std::sqrt(16.0f + 16.0f + 1.0f)));
}

TEST_CASE("MeanStd = mean_i ||sigma_i||_2", "[unit][penalty]") {
  const auto u = penalty::MeanStd{}(hand_prediction());
  CHECK(u[0].item<float>() == Approx((5.0f + std::sqrt(3.0f)) / 2));
  CHECK(u[1].item<float>() == Approx((1.0f + 3.0f) / 2));
}

TEST_CASE("Disagreement = max_i ||mu_i^obs - mean mu^obs|| over obs dims only", "[unit][penalty]") {
  const auto u = penalty::Disagreement{}(hand_prediction());
  // row 0: obs means (1,2),(3,2): centre (2,2), distances 1 -> 1 (reward 0.5 vs 0.7 ignored)
  // row 1: (0,0),(0,4): centre (0,2), distances 2
  CHECK(u[0].item<float>() == Approx(1.0f));
  CHECK(u[1].item<float>() == Approx(2.0f));
}

TEST_CASE("TrueError = ||[s'_model, r_model] - [s'_true, r_true]||, zero when the model is the simulator",
          "[unit][penalty]") {
  const auto pred = hand_prediction();
  EnsembleSample used{torch::tensor({{1.0f, 2.0f}, {0.0f, 0.0f}}), torch::tensor({0.5f, 1.0f}),
                      torch::zeros({2})};
  penalty::GroundTruth truth{torch::tensor({{1.0f, 5.0f}, {0.0f, 0.0f}}), torch::tensor({4.5f, 1.0f})};
  const auto u = penalty::TrueError{}(pred, used, truth);
  CHECK(u[0].item<float>() == Approx(5.0f));  // (0, 3, 4)
  CHECK(u[1].item<float>() == Approx(0.0f));
  CHECK(penalty::TrueError{false}(pred, used, truth)[0].item<float>() == Approx(3.0f));

  penalty::GroundTruth exact{used.next_obs.clone(), used.reward.clone()};
  const penalty::PenaltyPolicy<penalty::TrueError> policy(2.0);
  const auto r = policy.apply(pred, used, &exact);
  CHECK(r.penalty.abs().max().item<float>() == 0.0f);
  CHECK(torch::equal(r.reward, used.reward));
  CHECK_THROWS_WITH(policy.apply(pred, used), Contains("true_error needs the simulator's ground truth"));
}

TEST_CASE("PenaltyPolicy: r~ = r - lambda*u, lambda checked", "[unit][penalty]") {
  const auto pred = hand_prediction();
  EnsembleSample used{torch::zeros({2, 2}), torch::tensor({10.0f, 20.0f}), torch::zeros({2})};
  const penalty::PenaltyPolicy<penalty::MaxStd> policy(0.5);
  const auto r = policy.apply(pred, used);
  CHECK(r.reward[0].item<float>() == Approx(10.0f - 0.5f * 5.0f));
  CHECK(r.reward[1].item<float>() == Approx(20.0f - 0.5f * 3.0f));
  CHECK_FALSE(r.halted.any().item<bool>());
  CHECK(policy.name() == "max_std");
  CHECK_THROWS_AS(penalty::PenaltyPolicy<penalty::MaxStd>(-1.0), mopo::ValueError);
  CHECK_THROWS_AS(penalty::PenaltyPolicy<penalty::MaxStd>(std::nan("")), mopo::ValueError);
  // NoPenalty leaves rewards untouched whatever lambda is.
  const auto n = penalty::PenaltyPolicy<penalty::NoPenalty>(5.0).apply(pred, used);
  CHECK(torch::equal(n.reward, used.reward));
}

TEST_CASE("HardThreshold halts exactly above the threshold with the halt reward", "[unit][penalty]") {
  const auto pred = hand_prediction();  // disagreement: row 0 -> 1, row 1 -> 2
  EnsembleSample used{torch::zeros({2, 2}), torch::tensor({10.0f, 20.0f}), torch::zeros({2})};
  penalty::HardThreshold s;
  s.threshold = 1.5;
  s.halt_value = -50;
  const auto r = penalty::PenaltyPolicy<penalty::HardThreshold>(1.0, s).apply(pred, used);
  CHECK_FALSE(r.halted[0].item<bool>());
  CHECK(r.halted[1].item<bool>());
  CHECK(r.reward[0].item<float>() == 10.0f);  // not penalised below the threshold
  CHECK(r.reward[1].item<float>() == -50.0f);
  s.threshold = 2.0;  // u == threshold does not halt ("exceeds")
  CHECK_FALSE(
      penalty::PenaltyPolicy<penalty::HardThreshold>(1.0, s).apply(pred, used).halted.any().item<bool>());
}

TEMPLATE_TEST_CASE("penalties are non-negative, [B]-shaped and carry no gradient", "[unit][penalty]",
                   penalty::MaxStd, penalty::MaxCovNorm, penalty::MeanStd, penalty::Disagreement,
                   penalty::NoPenalty, penalty::HardThreshold) {
  auto pred = random_prediction(7, 33, 18, 5);
  pred.mean.requires_grad_(true);
  pred.std.requires_grad_(true);
  const penalty::PenaltyPolicy<TestType> policy(1.0);
  const auto u = policy.uncertainty(pred);
  CHECK(u.sizes().vec() == std::vector<int64_t>{33});
  CHECK(u.min().template item<float>() >= 0.0f);
  CHECK_FALSE(u.requires_grad());
  CHECK(torch::isfinite(u).all().template item<bool>());
}

TEST_CASE("penalties reject malformed predictions with a named shape error", "[unit][penalty]") {
  EnsemblePrediction p;
  p.mean = torch::zeros({7, 4, 3});
  p.std = torch::zeros({7, 4, 2});
  CHECK_THROWS_WITH(penalty::MaxStd{}(p),
                    Contains("MaxStd prediction std: expected shape [7, 4, 3], got [7, 4, 2]"));
  p.mean = torch::zeros({4, 3});
  CHECK_THROWS_AS(penalty::Disagreement{}(p), mopo::ShapeError);
}

namespace {
struct NotAPenalty {
  int operator()(int) const { return 0; }
};
struct UserPenalty {
  static constexpr std::string_view kName = "user";
  torch::Tensor operator()(const EnsemblePrediction& p) const { return p.std.sum(torch::IntArrayRef{0, 2}); }
};
}  // namespace

TEST_CASE("the penalty concept is checked at compile time", "[unit][penalty]") {
  STATIC_REQUIRE(penalty::is_penalty_v<penalty::MaxStd>);
  STATIC_REQUIRE(penalty::is_penalty_v<penalty::TrueError>);
  STATIC_REQUIRE(penalty::is_penalty_v<UserPenalty>);
  STATIC_REQUIRE_FALSE(penalty::is_penalty_v<NotAPenalty>);
  STATIC_REQUIRE(penalty::needs_ground_truth_v<penalty::TrueError>);
  STATIC_REQUIRE_FALSE(penalty::needs_ground_truth_v<penalty::MaxStd>);
  STATIC_REQUIRE(penalty::is_halting_v<penalty::HardThreshold>);
  STATIC_REQUIRE_FALSE(penalty::is_halting_v<penalty::MeanStd>);
}
