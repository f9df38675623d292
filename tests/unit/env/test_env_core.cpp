// Environment pieces that need no MuJoCo: termination functions, task names and D4RL scores, the OOD
// relabelling arithmetic, the HIV model, and the registry without MuJoCo.
#include <torch/torch.h>  // before Catch: glog's CHECK must not replace Catch's
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>

#include "mopo/core/error.hpp"
#include "mopo/env/hiv.hpp"
#include "mopo/env/ood.hpp"
#include "mopo/env/registry.hpp"
#include "mopo/env/scores.hpp"
#include "mopo/env/termination.hpp"

using Catch::Matchers::Contains;

namespace {
torch::Tensor rows(std::initializer_list<std::initializer_list<double>> r, int64_t dim) {
  auto t = torch::zeros({static_cast<int64_t>(r.size()), dim}, torch::kFloat32);
  int64_t i = 0;
  for (const auto& row : r) {
    int64_t j = 0;
    for (double v : row) t[i][j++] = v;
    ++i;
  }
  return t;
}
std::vector<bool> to_bools(const torch::Tensor& t) {
  REQUIRE(t.scalar_type() == torch::kBool);
  std::vector<bool> out;
  for (int64_t i = 0; i < t.size(0); ++i) out.push_back(t[i].item<bool>());
  return out;
}
}  // namespace

TEST_CASE("Hopper termination: thresholds and the fixed abs bug", "[unit][env]") {
  const float eps = 1e-4f;
  // Rows: healthy; height at 0.7 (strict); angle at ±0.2 (strict); just inside; slot 5 at −150
  // (only the corrected two-sided check catches it); slot 7 at +100; NaN.
  auto next = rows({{1.25, 0.0},
                    {0.7, 0.0},
                    {1.0, 0.2},
                    {1.0, -0.2},
                    {0.7 + eps, 0.2 - eps},
                    {1.0, 0.0, 0.0, 0.0, 0.0, -150.0},
                    {1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 100.0}},
                   11);
  next[6][10] = 0.0f;
  auto with_nan = torch::cat({next, rows({{1.0, 0.0}}, 11)});
  with_nan[7][3] = std::numeric_limits<float>::quiet_NaN();
  const auto done = to_bools(mopo::env::hopper_termination(with_nan));
  CHECK(done == std::vector<bool>{false, true, true, true, false, true, true, true});
  const auto parity =
      to_bools(mopo::env::hopper_termination(with_nan, mopo::env::HopperTermination::kOriginalOneSided));
  CHECK(parity == std::vector<bool>{false, true, true, true, false, false, true, true});
  // Through the name lookup (dataset names resolve to their task).
  const auto fn = mopo::env::termination_fn("hopper-medium-replay-v2");
  CHECK(to_bools(fn(with_nan, torch::zeros({8, 3}), with_nan)) == done);
}

TEST_CASE("Walker2d, Ant and never-terminating tasks", "[unit][env]") {
  const float eps = 1e-4f;
  auto w = rows({{1.25, 0.0},
                 {0.8, 0.0},
                 {0.8 + eps, 0.0},
                 {2.0, 0.0},
                 {2.0 - eps, 0.0},
                 {1.0, 1.0},
                 {1.0, -1.0},
                 {1.0, 1.0 - eps},
                 {1.0, 0.0, 500.0}},
                17);
  CHECK(to_bools(mopo::env::walker2d_termination(w)) ==
        std::vector<bool>{false, true, false, true, false, true, true, false, false});
  auto a = rows({{0.5}, {0.2}, {1.0}, {0.2 - eps}, {1.0 + eps}, {0.5}}, 111);
  a[5][40] = std::numeric_limits<float>::infinity();
  CHECK(to_bools(mopo::env::ant_termination(a)) == std::vector<bool>{false, false, false, true, true, true});
  CHECK(to_bools(mopo::env::termination_fn("ant-angle-45")(a, torch::zeros({6, 8}), a)) ==
        to_bools(mopo::env::ant_termination(a)));
  auto c = torch::full({4, 17}, 1e6);
  CHECK(to_bools(mopo::env::termination_fn("halfcheetah")(c, torch::zeros({4, 6}), c)) ==
        std::vector<bool>(4, false));
  CHECK(to_bools(mopo::env::termination_fn("hiv")(c, torch::zeros({4, 2}), c)) ==
        std::vector<bool>(4, false));
  CHECK_THROWS_AS(mopo::env::hopper_termination(torch::zeros({11})), mopo::ShapeError);
  CHECK_THROWS_AS(mopo::env::walker2d_termination(torch::zeros({3, 1})), mopo::ShapeError);
  CHECK_THROWS_AS(mopo::env::termination_fn("cartpole"), mopo::ValueError);
}

TEST_CASE("Task names and D4RL normalised scores", "[unit][env]") {
  using mopo::env::base_task;
  CHECK(base_task("hopper") == "hopper");
  CHECK(base_task("walker2d-medium-expert-v2") == "walker2d");
  CHECK(base_task("halfcheetah-jump") == "halfcheetah-jump");
  CHECK(base_task("halfcheetah-medium-v0") == "halfcheetah");
  CHECK(base_task("ant-angle-45") == "ant-angle");
  CHECK(base_task("ant-random-v2") == "ant");
  CHECK_THROWS_WITH(base_task("hopperx"), Contains("unknown task 'hopperx'") && Contains("walker2d"));
  CHECK_THROWS_AS(base_task(""), mopo::ValueError);
  // d4rl/infos.py references: random → 0, expert → 1.
  CHECK(mopo::env::normalized_score("hopper-medium-v2", -20.272305) == Approx(0.0).margin(1e-12));
  CHECK(mopo::env::normalized_score("hopper", 3234.3) == Approx(1.0));
  CHECK(mopo::env::normalized_score_percent("halfcheetah", 12135.0) == Approx(100.0));
  CHECK(mopo::env::normalized_score("walker2d", (1.629008 + 4592.3) / 2) == Approx(0.5));
  CHECK(mopo::env::normalized_score("ant", -325.6 + 0.25 * (3879.7 + 325.6)) == Approx(0.25));
  CHECK_FALSE(mopo::env::d4rl_reference_scores("halfcheetah-jump").has_value());
  CHECK_THROWS_WITH(mopo::env::normalized_score("hiv", 1.0), Contains("no D4RL reference"));
  CHECK_THROWS_AS(mopo::env::normalized_score("hopper", std::nan("")), mopo::ValueError);
}

TEST_CASE("OOD relabelling arithmetic", "[unit][env]") {
  // halfcheetah-jump: r = r_b + 15·z (slot 0 of next_obs).
  auto next = torch::zeros({3, 17}, torch::kFloat64);
  next[0][0] = 0.1;
  next[1][0] = -0.05;
  auto rb = torch::tensor({1.0, 2.0, 3.0}, torch::kFloat64);
  const auto r = mopo::env::halfcheetah_jump_relabel(next, rb);
  CHECK(r[0].item<double>() == Approx(2.5));
  CHECK(r[1].item<double>() == Approx(1.25));
  CHECK(r[2].item<double>() == Approx(3.0));
  // Behaviour reward from the standard HalfCheetah reward: the velocity is capped at 3.
  auto act = torch::full({2, 6}, 0.5, torch::kFloat64);  // 0.1·Σa² = 0.15
  auto std_r = torch::tensor({5.0 - 0.15, 1.0 - 0.15}, torch::kFloat64);
  const auto b = mopo::env::halfcheetah_jump_behaviour_from_standard(std_r, act);
  CHECK(b[0].item<double>() == Approx(3.0 - 0.15));
  CHECK(b[1].item<double>() == Approx(1.0 - 0.15));
  // ant-angle: projection of (v_x, v_y) = slots 13, 14.
  auto obs = torch::zeros({1, 111}, torch::kFloat64);
  auto nobs = torch::zeros({1, 111}, torch::kFloat64);
  nobs[0][13] = 2.0;
  nobs[0][14] = 1.0;
  nobs[0][30] = 0.5;
  auto a8 = torch::full({1, 8}, 0.5, torch::kFloat64);  // 0.5·Σa² = 1
  const double expected = 2.0 * std::cos(M_PI / 4) + std::sin(M_PI / 4) - 1.0 + 1.0 - 5e-4 * 0.25;
  CHECK(mopo::env::ant_angle_relabel(obs, a8, nobs, 45.0)[0].item<double>() == Approx(expected));
  CHECK(mopo::env::ant_angle_relabel(obs, a8, nobs, 90.0)[0].item<double>() ==
        Approx(1.0 - 5e-4 * 0.25).margin(1e-12));
  CHECK_THROWS_AS(mopo::env::ant_angle_relabel(obs, a8, torch::zeros({1, 30}, torch::kFloat64)),
                  mopo::ShapeError);
  CHECK_THROWS_AS(mopo::env::halfcheetah_jump_relabel(next, torch::zeros({2})), mopo::ShapeError);
}

TEST_CASE("HIV: uncontrolled trajectory matches a tight-step RK4 reference", "[unit][env][hiv]") {
  using mopo::env::HivState;
  // Reference: RK4 at h = 1e-3 day, checked against h = 2e-3 day so the reference itself is converged.
  HivState fine = mopo::env::kHivInitialState;
  HivState coarse = mopo::env::kHivInitialState;
  mopo::env::Hiv env;
  env.reset(0);
  int day = 0;
  for (int target : {1, 10, 100}) {
    const int days = target - day;
    fine = mopo::env::hiv_integrate_rk4(fine, 0.0, 0.0, days, days * 1000);
    coarse = mopo::env::hiv_integrate_rk4(coarse, 0.0, 0.0, days, days * 500);
    mopo::env::StepResult r;
    for (; day < target; ++day) r = env.step({-1.0, -1.0});  // −1 ↦ ε = 0: no treatment
    for (std::size_t i = 0; i < 6; ++i) {
      INFO("day " << target << " state " << i << ": env " << env.state()[i] << " reference " << fine[i]);
      CHECK(std::abs(coarse[i] - fine[i]) <= 1e-7 * std::abs(fine[i]));
      CHECK(std::abs(env.state()[i] - fine[i]) <= 1e-4 * std::abs(fine[i]));
      CHECK(r.observation[i] == Approx(std::log10(env.state()[i])));
    }
    CHECK(r.reward == Approx(1000.0 * env.state()[5] - 0.1 * env.state()[4]));
  }
  // The untreated infection progresses: the viral load grows by orders of magnitude in 100 days.
  CHECK(fine[4] > 1e3);
}

TEST_CASE("HIV: actions, rewards, horizon, true_step and bad input", "[unit][env][hiv]") {
  mopo::env::Hiv env;
  CHECK(env.observation_dim() == 6);
  CHECK(env.action_dim() == 2);
  CHECK(env.max_episode_steps() == 400);
  const auto [e1, e2] = mopo::env::Hiv::efficacies(1.0, 1.0);
  CHECK(e1 == Approx(0.7));
  CHECK(e2 == Approx(0.3));
  const auto [c1, c2] = mopo::env::Hiv::efficacies(5.0, -3.0);  // clipped
  CHECK(c1 == Approx(0.7));
  CHECK(c2 == 0.0);
  const auto [h1, h2] = mopo::env::Hiv::efficacies(0.0, 0.0);
  CHECK(h1 == Approx(0.35));
  CHECK(h2 == Approx(0.15));
  // Full treatment costs 20000·(0.49 + 0.09) = 11600 per day (whynot README).
  const mopo::env::HivState s{1, 1, 1, 1, 0, 0};
  CHECK(mopo::env::Hiv::reward(s, 0.7, 0.3) == Approx(-11600.0));

  CHECK_THROWS_AS(env.step({0.0, 0.0}), mopo::ValueError);  // before reset
  const auto obs0 = env.reset(0);
  CHECK(obs0[0] == Approx(6.0));
  CHECK(obs0[1] == Approx(-4.0));
  CHECK(env.reset(99) == obs0);  // deterministic reset
  CHECK_THROWS_AS(env.step({0.0}), mopo::ShapeError);
  CHECK_THROWS_WITH(env.step({0.0, std::nan("")}), Contains("not finite"));

  // true_step from observations equals stepping the environment.
  std::vector<mopo::env::Vector> observations{obs0};
  std::vector<mopo::env::Vector> actions;
  std::vector<double> rewards;
  for (int t = 0; t < 20; ++t) {
    const mopo::env::Vector a{std::sin(t * 0.7), std::cos(t * 1.3)};
    const auto r = env.step(a);
    actions.push_back(a);
    rewards.push_back(r.reward);
    observations.push_back(r.observation);
  }
  auto to = torch::empty({20, 6}, torch::kFloat64);
  auto ta = torch::empty({20, 2}, torch::kFloat64);
  for (int i = 0; i < 20; ++i) {
    for (int j = 0; j < 6; ++j)
      to[i][j] = observations[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
    for (int j = 0; j < 2; ++j) ta[i][j] = actions[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
  }
  const auto res = env.true_step(to, ta);
  REQUIRE(res.next_observations.scalar_type() == torch::kFloat32);
  for (int i = 0; i < 20; ++i) {
    CHECK(res.rewards[i].item<double>() == Approx(rewards[static_cast<std::size_t>(i)]).epsilon(1e-5));
    for (int j = 0; j < 6; ++j) {
      CHECK(res.next_observations[i][j].item<double>() ==
            Approx(observations[static_cast<std::size_t>(i + 1)][static_cast<std::size_t>(j)]).epsilon(1e-5));
    }
  }
  CHECK_THROWS_AS(env.true_step(torch::zeros({2, 5}), torch::zeros({2, 2})), mopo::ShapeError);

  // 400-step horizon: truncated, never terminated.
  env.reset(0);
  mopo::env::StepResult r;
  for (int t = 0; t < 400; ++t) {
    r = env.step({-1.0, -1.0});
    REQUIRE_FALSE(r.terminated);
    REQUIRE(r.truncated == (t == 399));
  }
  CHECK_THROWS_AS(env.step({0.0, 0.0}), mopo::ValueError);
}

TEST_CASE("Registry: HIV by name, clear errors otherwise", "[unit][env]") {
  auto hiv = mopo::env::make("hiv");
  REQUIRE(hiv);
  CHECK(hiv->name() == "hiv");
  CHECK(mopo::env::as_true_dynamics(*hiv) != nullptr);
  CHECK_THROWS_WITH(mopo::env::make("pendulum"), Contains("unknown task 'pendulum'"));
  if (!mopo::env::kHasMujoco) {
    CHECK_THROWS_WITH(mopo::env::make("hopper"), Contains("needs MuJoCo"));
  }
}
