// The OOD tasks against the simulator (relabelling = simulator reward) and the registry with MuJoCo.
#include <torch/torch.h>  // before Catch: glog's CHECK must not replace Catch's
#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/env/ood.hpp"
#include "mopo/env/registry.hpp"
#include "mopo/env/termination.hpp"
#include "support/task_shapes.hpp"

using Catch::Matchers::Contains;
using mopo::env::Vector;

namespace {
struct Transitions {
  torch::Tensor obs, act, next_obs, rewards, terminals;
};

/// Random-action transitions from `env` (episodes restart on termination), float64 tensors.
template <class Env>
Transitions collect(Env& env, uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  const int64_t od = env.observation_dim(), ad = env.action_dim();
  Transitions t{torch::empty({n, od}, torch::kFloat64), torch::empty({n, ad}, torch::kFloat64),
                torch::empty({n, od}, torch::kFloat64), torch::empty({n}, torch::kFloat64),
                torch::empty({n}, torch::kBool)};
  auto obs = env.reset(seed);
  for (int i = 0; i < n; ++i) {
    Vector a(static_cast<std::size_t>(ad));
    for (auto& x : a) x = u(rng);
    const auto r = env.step(a);
    for (int64_t j = 0; j < od; ++j) {
      t.obs[i][j] = obs[static_cast<std::size_t>(j)];
      t.next_obs[i][j] = r.observation[static_cast<std::size_t>(j)];
    }
    for (int64_t j = 0; j < ad; ++j) t.act[i][j] = a[static_cast<std::size_t>(j)];
    t.rewards[i] = r.reward;
    t.terminals[i] = r.terminated;
    obs = r.observation;
    if (r.terminated || r.truncated) obs = env.reset(seed + static_cast<uint64_t>(i) + 1);
  }
  return t;
}
}  // namespace

TEST_CASE("halfcheetah-jump: relabelled behaviour data equals the simulator's test reward",
          "[mujoco][env][ood]") {
  auto behaviour = mopo::env::make_halfcheetah_jump(mopo::env::JumpReward::kBehaviour);
  auto test = mopo::env::make_halfcheetah_jump(mopo::env::JumpReward::kTest);
  CHECK(behaviour.name() == "halfcheetah-jump-behaviour");
  CHECK(test.name() == "halfcheetah-jump");
  const auto b = collect(behaviour, 3, 400);
  const auto t = collect(test, 3, 400);  // same seed, same actions → same states
  REQUIRE(torch::equal(b.next_obs, t.next_obs));
  const auto relabelled = mopo::env::halfcheetah_jump_relabel(b.next_obs, b.rewards);
  CHECK(torch::allclose(relabelled, t.rewards, 1e-12, 1e-9));
  // The behaviour reward caps v_x at 3; plain HalfCheetah rewards convert to it.
  mopo::env::HalfCheetah plain;
  const auto p = collect(plain, 3, 400);
  REQUIRE(torch::equal(p.next_obs, b.next_obs));
  CHECK(torch::allclose(mopo::env::halfcheetah_jump_behaviour_from_standard(p.rewards, p.act), b.rewards,
                        1e-12, 1e-9));
  // The bonus is not trivial: heights vary over the data.
  CHECK((t.rewards - b.rewards).abs().max().item<double>() > 0.1);
}

TEST_CASE("ant-angle: relabelling from (obs, action, next_obs) equals the simulator reward",
          "[mujoco][env][ood]") {
  for (double deg : {30.0, 45.0, 60.0, 90.0}) {
    auto env = mopo::env::make_ant_angle(deg);
    const auto t = collect(env, 17, 200);
    const auto relabelled = mopo::env::ant_angle_relabel(t.obs, t.act, t.next_obs, deg);
    INFO("angle " << deg);
    CHECK(torch::allclose(relabelled, t.rewards, 1e-12, 1e-9));
    // Termination of the model-rollout function agrees with the simulator on real transitions.
    CHECK(torch::equal(mopo::env::ant_termination(t.next_obs), t.terminals));
  }
  // Gymnasium v4 with contact forces: the contact cost comes from slots 27–110.
  mopo::env::MujocoOptions v4;
  v4.semantics = mopo::env::Semantics::kGymnasiumV4;
  v4.use_contact_forces = true;
  auto env = mopo::env::make_ant_angle(45.0, v4);
  const auto t = collect(env, 5, 100);
  CHECK(t.next_obs.slice(1, 27).abs().sum().item<double>() > 0.0);
  CHECK(
      torch::allclose(mopo::env::ant_angle_relabel(t.obs, t.act, t.next_obs, 45.0), t.rewards, 1e-12, 1e-9));
  CHECK_THROWS_AS(mopo::env::make_ant_angle(std::nan("")), mopo::ValueError);
}

TEST_CASE("Termination functions agree with the simulators on real transitions", "[mujoco][env]") {
  mopo::env::Hopper hopper;
  const auto h = collect(hopper, 8, 1500);
  CHECK(h.terminals.sum().item<int64_t>() > 0);
  CHECK(torch::equal(mopo::env::hopper_termination(h.next_obs), h.terminals));
  mopo::env::Walker2d walker;
  const auto w = collect(walker, 8, 1500);
  CHECK(w.terminals.sum().item<int64_t>() > 0);
  CHECK(torch::equal(mopo::env::walker2d_termination(w.next_obs), w.terminals));
}

TEST_CASE("Registry makes every task by name", "[mujoco][env]") {
  REQUIRE(mopo::env::kHasMujoco);
  struct Expected {
    const char* name;
    int64_t obs, act;
    const char* task;
  };
  for (const auto& e :
       {Expected{"halfcheetah", 17, 6, "halfcheetah"}, Expected{"hopper", 11, 3, "hopper"},
        Expected{"walker2d", 17, 6, "walker2d"}, Expected{"ant", 111, 8, "ant"},
        Expected{"halfcheetah-jump", 17, 6, "halfcheetah-jump"},
        Expected{"halfcheetah-jump-behaviour", 17, 6, "halfcheetah-jump-behaviour"},
        Expected{"ant-angle", 111, 8, "ant-angle-30"}, Expected{"ant-angle-45", 111, 8, "ant-angle-45"},
        Expected{"ant-angle-90", 111, 8, "ant-angle-90"}, Expected{"hiv", 6, 2, "hiv"},
        Expected{"hopper-medium-replay-v2", 11, 3, "hopper"}}) {
    INFO(e.name);
    auto env = mopo::env::make(e.name);
    REQUIRE(env);
    CHECK(env->observation_dim() == e.obs);
    CHECK(env->action_dim() == e.act);
    CHECK(env->name() == e.task);
    CHECK(mopo::env::as_true_dynamics(*env) != nullptr);
    const auto obs = env->reset(1);
    CHECK(static_cast<int64_t>(obs.size()) == e.obs);
    const auto r = env->step(Vector(static_cast<std::size_t>(e.act), 0.1));
    CHECK(std::isfinite(r.reward));
  }
  for (const auto& name : mopo::env::task_names()) CHECK_NOTHROW(mopo::env::make(name));
  mopo::env::MujocoOptions v4;
  v4.semantics = mopo::env::Semantics::kGymnasiumV4;
  CHECK(mopo::env::make("ant", v4)->observation_dim() == 27);
  CHECK_THROWS_WITH(mopo::env::make("humanoid"), Contains("unknown task 'humanoid'"));
  // A non-numeric suffix is a dataset suffix ("ant-angle-medium"): default angle.
  CHECK(mopo::env::make("ant-angle-medium")->name() == "ant-angle-30");
  CHECK(mopo::env::make("ant-angle-60-medium")->name() == "ant-angle-60");
  CHECK_THROWS_AS(mopo::env::make("ant-angle-45x"), mopo::ValueError);
}

TEST_CASE("The test table of task shapes matches the registry", "[mujoco][env]") {
  for (const auto& s : mopo::testing::registry_task_shapes()) {
    INFO(s.task);
    auto env = mopo::env::make(s.task);
    CHECK(env->observation_dim() == s.obs_dim);
    CHECK(env->action_dim() == s.act_dim);
  }
}
