// MuJoCo locomotion tasks: model facts vs environments.md, rewards/terminations recomputed by hand,
// determinism, the batched true_step oracle, and bad input.
#include <torch/torch.h>  // before Catch: glog's CHECK must not replace Catch's
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/env/mujoco/tasks/ant.hpp"
#include "mopo/env/mujoco/tasks/half_cheetah.hpp"
#include "mopo/env/mujoco/tasks/hopper.hpp"
#include "mopo/env/mujoco/tasks/walker2d.hpp"

using mopo::env::Vector;

namespace {

double total_mass(const mjModel* m) {
  double s = 0.0;
  for (int b = 0; b < m->nbody; ++b) s += m->body_mass[b];
  return s;
}

Vector random_action(std::mt19937_64& rng, int n, double scale = 1.0) {
  std::uniform_real_distribution<double> u(-scale, scale);
  Vector a(static_cast<std::size_t>(n));
  for (auto& x : a) x = u(rng);
  return a;
}

double sum_sq_clipped(const Vector& a) {
  double s = 0.0;
  for (double x : a) {
    const double c = std::clamp(x, -1.0, 1.0);
    s += c * c;
  }
  return s;
}

template <class Env>
void check_model(Env& env, int64_t obs_dim, int nu, int nq, int nv, int nbody, double timestep, double dt,
                 double mass, const Vector& qpos0) {
  const mjModel* m = env.model();
  CHECK(env.observation_dim() == obs_dim);
  CHECK(env.action_dim() == nu);
  CHECK(m->nq == nq);
  CHECK(m->nv == nv);
  CHECK(m->nbody == nbody);
  CHECK(m->opt.timestep == Approx(timestep));
  CHECK(env.dt() == Approx(dt));
  CHECK(total_mass(m) == Approx(mass).margin(1e-4));
  CHECK(env.max_episode_steps() == 1000);
  const auto box = env.action_space();
  REQUIRE(box.size() == static_cast<std::size_t>(nu));
  for (std::size_t i = 0; i < box.size(); ++i) {
    CHECK(box.low[i] == -1.0);
    CHECK(box.high[i] == 1.0);
  }
  REQUIRE(qpos0.size() == static_cast<std::size_t>(nq));
  for (int i = 0; i < nq; ++i) CHECK(m->qpos0[i] == Approx(qpos0[static_cast<std::size_t>(i)]).margin(1e-12));
  const auto obs = env.reset(0);
  CHECK(static_cast<int64_t>(obs.size()) == obs_dim);
}

double body_mass(const mjModel* m, const char* name) {
  const int id = mj_name2id(m, mjOBJ_BODY, name);
  REQUIRE(id >= 0);
  return m->body_mass[id];
}

/// Steps `env` with random actions (some outside [−1, 1] to exercise clipping) and checks every reward,
/// termination flag and observation against a recomputation from (qpos, qvel) before and after.
template <class Env, class RewardFn, class DoneFn, class ObsFn>
int check_rollout(Env& env, uint64_t seed, int steps, RewardFn expected_reward, DoneFn expected_done,
                  ObsFn expected_obs) {
  std::mt19937_64 rng(seed);
  env.reset(seed);
  int checked = 0;
  for (int t = 0; t < steps; ++t) {
    const Vector qpos_before = env.qpos();
    const Vector a = random_action(rng, static_cast<int>(env.action_dim()), 1.3);
    const auto r = env.step(a);
    const Vector qpos = env.qpos();
    const Vector qvel = env.qvel();
    CHECK(r.reward == Approx(expected_reward(qpos_before, qpos, a, env)).epsilon(1e-12).margin(1e-12));
    CHECK(r.terminated == expected_done(qpos, qvel));
    const Vector obs = expected_obs(qpos, qvel);
    REQUIRE(obs.size() == r.observation.size());
    for (std::size_t i = 0; i < obs.size(); ++i) CHECK(r.observation[i] == obs[i]);
    ++checked;
    if (r.terminated || r.truncated) env.reset(seed + static_cast<uint64_t>(t) + 1);
  }
  return checked;
}

Vector planar_obs(const Vector& qpos, const Vector& qvel, double clip) {
  Vector o(qpos.begin() + 1, qpos.end());
  for (double v : qvel) o.push_back(clip > 0 ? std::clamp(v, -clip, clip) : v);
  return o;
}

template <class Env>
void check_determinism(Env& a, Env& b) {
  std::mt19937_64 rng(7);
  auto oa = a.reset(123);
  auto ob = b.reset(123);
  CHECK(oa == ob);
  for (int t = 0; t < 50; ++t) {
    const auto act = random_action(rng, static_cast<int>(a.action_dim()));
    const auto ra = a.step(act);
    const auto rb = b.step(act);
    REQUIRE(ra.observation == rb.observation);  // bit-identical
    REQUIRE(ra.reward == rb.reward);
    if (ra.terminated) break;
  }
  const auto o1 = a.reset(1);
  const auto o2 = b.reset(2);
  CHECK(o1 != o2);
}

/// true_step on observations from a rollout equals set_state(state_from_observation(obs)) + step().
template <class Env>
void check_true_step(Env& env, uint64_t seed, int rows) {
  std::mt19937_64 rng(seed);
  std::vector<Vector> observations;
  std::vector<Vector> actions;
  auto obs = env.reset(seed);
  while (static_cast<int>(observations.size()) < rows) {
    const auto a = random_action(rng, static_cast<int>(env.action_dim()), 1.2);
    observations.push_back(obs);
    actions.push_back(a);
    const auto r = env.step(a);
    obs = r.observation;
    if (r.terminated || r.truncated) obs = env.reset(seed + observations.size());
  }
  const int64_t od = env.observation_dim();
  const int64_t ad = env.action_dim();
  auto tobs = torch::empty({rows, od}, torch::kFloat64);
  auto tact = torch::empty({rows, ad}, torch::kFloat64);
  for (int i = 0; i < rows; ++i) {
    for (int64_t j = 0; j < od; ++j)
      tobs[i][j] = observations[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
    for (int64_t j = 0; j < ad; ++j)
      tact[i][j] = actions[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
  }
  const auto res = env.true_step(tobs, tact);
  REQUIRE(res.next_observations.sizes() == torch::IntArrayRef({rows, od}));
  REQUIRE(res.rewards.sizes() == torch::IntArrayRef({rows}));
  REQUIRE(res.next_observations.scalar_type() == torch::kFloat32);
  REQUIRE(res.rewards.scalar_type() == torch::kFloat32);
  for (int i = 0; i < rows; ++i) {
    env.reset(0);
    const auto [qpos, qvel] = env.state_from_observation(observations[static_cast<std::size_t>(i)]);
    env.set_state(qpos, qvel);
    const auto r = env.step(actions[static_cast<std::size_t>(i)]);
    CHECK(res.rewards[i].template item<float>() == static_cast<float>(r.reward));
    CHECK(res.terminals[i].template item<bool>() == r.terminated);
    for (int64_t j = 0; j < od; ++j) {
      CHECK(res.next_observations[i][j].template item<float>() ==
            static_cast<float>(r.observation[static_cast<std::size_t>(j)]));
    }
  }
}

template <class Env>
void check_bad_input(Env& env) {
  CHECK_THROWS_AS(env.step(Vector(static_cast<std::size_t>(env.action_dim()), 0.0)),
                  mopo::ValueError);  // no reset
  env.reset(0);
  CHECK_THROWS_AS(env.step(Vector(static_cast<std::size_t>(env.action_dim() + 1), 0.0)), mopo::ShapeError);
  CHECK_THROWS_WITH(env.step(Vector(1, 0.0)), Catch::Contains("length 1") && Catch::Contains("expected"));
  Vector nan_action(static_cast<std::size_t>(env.action_dim()), 0.0);
  nan_action[0] = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(env.step(nan_action), mopo::ValueError);
  Vector inf_action(static_cast<std::size_t>(env.action_dim()), 0.0);
  inf_action.back() = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH(env.step(inf_action), Catch::Contains("not finite"));
  CHECK_THROWS_AS(
      env.true_step(torch::zeros({3, env.observation_dim() + 1}), torch::zeros({3, env.action_dim()})),
      mopo::ShapeError);
  CHECK_THROWS_AS(
      env.true_step(torch::zeros({3, env.observation_dim()}), torch::zeros({2, env.action_dim()})),
      mopo::ShapeError);
  auto bad = torch::zeros({2, env.action_dim()});
  bad[1][0] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(env.true_step(torch::zeros({2, env.observation_dim()}), bad), mopo::ValueError);
  CHECK_THROWS_AS(env.set_state(Vector(2, 0.0), env.qvel()), mopo::ShapeError);
  // The environment is still usable after rejected input.
  CHECK_NOTHROW(env.step(Vector(static_cast<std::size_t>(env.action_dim()), 0.0)));
}

}  // namespace

static_assert(mopo::env::mujoco::is_mujoco_task_v<mopo::env::mujoco::HopperTask>, "Hopper task concept");
static_assert(mopo::env::mujoco::is_mujoco_task_v<mopo::env::mujoco::AntTask>, "Ant task concept");
static_assert(!mopo::env::mujoco::is_mujoco_task_v<int>, "the task concept rejects non-tasks");
static_assert(!mopo::env::mujoco::is_mujoco_task_v<mopo::env::mujoco::HalfCheetahBase>,
              "a task without reward() and name() is rejected");
static_assert(mopo::env::is_environment_v<mopo::env::HalfCheetah>, "HalfCheetah satisfies the concept");
static_assert(mopo::env::is_environment_v<mopo::env::Hopper>, "Hopper satisfies the concept");
static_assert(mopo::env::is_environment_v<mopo::env::Walker2d>, "Walker2d satisfies the concept");
static_assert(mopo::env::is_environment_v<mopo::env::Ant>, "Ant satisfies the concept");

TEST_CASE("HalfCheetah model matches the reference table", "[mujoco][env]") {
  mopo::env::HalfCheetah env;
  check_model(env, 17, 6, 9, 9, 8, 0.01, 0.05, 14.0, Vector(9, 0.0));
  const mjModel* m = env.model();
  CHECK(m->opt.integrator == mjINT_EULER);
  CHECK(body_mass(m, "torso") == Approx(6.250209).margin(1e-5));
  CHECK(body_mass(m, "bthigh") == Approx(1.543515).margin(1e-5));
  CHECK(body_mass(m, "bshin") == Approx(1.587448).margin(1e-5));
  CHECK(body_mass(m, "bfoot") == Approx(1.095397).margin(1e-5));
  CHECK(body_mass(m, "fthigh") == Approx(1.438075).margin(1e-5));
  CHECK(body_mass(m, "fshin") == Approx(1.200837).margin(1e-5));
  CHECK(body_mass(m, "ffoot") == Approx(0.884519).margin(1e-5));
  const double gears[] = {120, 90, 60, 120, 60, 30};
  for (int i = 0; i < 6; ++i) CHECK(m->actuator_gear[6 * i] == gears[i]);
}

TEST_CASE("Hopper and Walker2d models match the reference table", "[mujoco][env]") {
  mopo::env::Hopper hopper;
  check_model(hopper, 11, 3, 6, 6, 5, 0.002, 0.008, 15.820013, Vector{0, 1.25, 0, 0, 0, 0});
  CHECK(hopper.model()->opt.integrator == mjINT_RK4);
  CHECK(body_mass(hopper.model(), "torso") == Approx(3.665191).margin(1e-5));
  CHECK(body_mass(hopper.model(), "thigh") == Approx(4.057891).margin(1e-5));
  CHECK(body_mass(hopper.model(), "leg") == Approx(2.781357).margin(1e-5));
  CHECK(body_mass(hopper.model(), "foot") == Approx(5.315575).margin(1e-5));
  for (int i = 0; i < 3; ++i) CHECK(hopper.model()->actuator_gear[6 * i] == 200.0);

  mopo::env::Walker2d walker;
  check_model(walker, 17, 6, 9, 9, 8, 0.002, 0.008, 23.677137, Vector{0, 1.25, 0, 0, 0, 0, 0, 0, 0});
  CHECK(walker.model()->opt.integrator == mjINT_RK4);
  CHECK(body_mass(walker.model(), "foot") == Approx(3.166725).margin(1e-5));
  CHECK(body_mass(walker.model(), "foot_left") == Approx(3.166725).margin(1e-5));
  for (int i = 0; i < 6; ++i) CHECK(walker.model()->actuator_gear[6 * i] == 100.0);
  const int left = mj_name2id(walker.model(), mjOBJ_GEOM, "foot_left_geom");
  const int right = mj_name2id(walker.model(), mjOBJ_GEOM, "foot_geom");
  CHECK(walker.model()->geom_friction[3 * left] == 1.9);
  CHECK(walker.model()->geom_friction[3 * right] == 0.9);
}

TEST_CASE("HalfCheetah reward and observation recomputed from qpos/qvel", "[mujoco][env]") {
  mopo::env::HalfCheetah env;
  const int n = check_rollout(
      env, 11, 300,
      [](const Vector& before, const Vector& after, const Vector& a, const mopo::env::HalfCheetah& e) {
        return (after[0] - before[0]) / e.dt() - 0.1 * sum_sq_clipped(a);
      },
      [](const Vector&, const Vector&) { return false; },
      [](const Vector& qpos, const Vector& qvel) { return planar_obs(qpos, qvel, 0.0); });
  CHECK(n == 300);
}

TEST_CASE("HalfCheetah without clipping charges the raw action", "[mujoco][env]") {
  mopo::env::MujocoOptions options;
  options.clip_actions = false;
  mopo::env::HalfCheetah env(options);
  env.reset(3);
  const Vector a{2.0, 0, 0, 0, 0, 0};
  const double x0 = env.qpos()[0];
  const auto r = env.step(a);
  CHECK(r.reward == Approx((env.qpos()[0] - x0) / 0.05 - 0.1 * 4.0).margin(1e-12));
}

TEST_CASE("Hopper reward, termination and observation recomputed from qpos/qvel", "[mujoco][env]") {
  mopo::env::Hopper env;
  int terminations = 0;
  const int n = check_rollout(
      env, 5, 600,
      [](const Vector& before, const Vector& after, const Vector& a, const mopo::env::Hopper& e) {
        return (after[0] - before[0]) / e.dt() + 1.0 - 1e-3 * sum_sq_clipped(a);
      },
      [&terminations](const Vector& qpos, const Vector& qvel) {
        bool ok = true;
        for (std::size_t i = 2; i < qpos.size(); ++i)
          ok = ok && std::isfinite(qpos[i]) && std::abs(qpos[i]) < 100;
        for (double v : qvel) ok = ok && std::isfinite(v) && std::abs(v) < 100;
        ok = ok && qpos[1] > 0.7 && std::abs(qpos[2]) < 0.2;
        terminations += ok ? 0 : 1;
        return !ok;
      },
      [](const Vector& qpos, const Vector& qvel) { return planar_obs(qpos, qvel, 10.0); });
  CHECK(n == 600);
  CHECK(terminations > 0);  // random actions make the hopper fall within 600 steps
}

TEST_CASE("Walker2d reward, termination and observation recomputed from qpos/qvel", "[mujoco][env]") {
  mopo::env::Walker2d env;
  int terminations = 0;
  const int n = check_rollout(
      env, 9, 600,
      [](const Vector& before, const Vector& after, const Vector& a, const mopo::env::Walker2d& e) {
        return (after[0] - before[0]) / e.dt() + 1.0 - 1e-3 * sum_sq_clipped(a);
      },
      [&terminations](const Vector& qpos, const Vector&) {
        const bool ok = qpos[1] > 0.8 && qpos[1] < 2.0 && qpos[2] > -1.0 && qpos[2] < 1.0;
        terminations += ok ? 0 : 1;
        return !ok;
      },
      [](const Vector& qpos, const Vector& qvel) { return planar_obs(qpos, qvel, 10.0); });
  CHECK(n == 600);
  CHECK(terminations > 0);
}

TEST_CASE("Hopper and Walker2d terminate exactly at the reference thresholds", "[mujoco][env]") {
  using mopo::env::mujoco::hopper_unhealthy;
  using mopo::env::mujoco::walker2d_unhealthy;
  mopo::env::Hopper hopper;
  auto hd = mopo::env::mujoco::make_data(hopper.model());
  const mjModel* hm = hopper.model();
  auto hopper_state = [&](double height, double angle, double joint, double vel) {
    mj_resetData(hm, hd.get());
    hd->qpos[1] = height;
    hd->qpos[2] = angle;
    hd->qpos[3] = joint;
    hd->qvel[4] = vel;
    return hopper_unhealthy(hm, hd.get());
  };
  const double eps = 1e-9;
  CHECK_FALSE(hopper_state(1.25, 0.0, 0.0, 0.0));
  CHECK_FALSE(hopper_state(0.7 + eps, 0.0, 0.0, 0.0));
  CHECK(hopper_state(0.7, 0.0, 0.0, 0.0));  // strict: height > 0.7
  CHECK_FALSE(hopper_state(1.0, 0.2 - eps, 0.0, 0.0));
  CHECK(hopper_state(1.0, 0.2, 0.0, 0.0));  // strict: |angle| < 0.2
  CHECK_FALSE(hopper_state(1.0, -0.2 + eps, 0.0, 0.0));
  CHECK(hopper_state(1.0, -0.2, 0.0, 0.0));
  CHECK_FALSE(hopper_state(1.0, 0.0, 0.0, 100.0 - eps));
  CHECK(hopper_state(1.0, 0.0, 0.0, 100.0));  // |s[2:]| < 100, two-sided
  CHECK(hopper_state(1.0, 0.0, 0.0, -100.0));
  CHECK(hopper_state(1.0, 0.0, 0.0, std::numeric_limits<double>::quiet_NaN()));
  CHECK(hopper_state(1.0, 0.0, std::numeric_limits<double>::infinity(), 0.0));
  // The rootx slot (s[0]) and the height are not bounded by the |s| < 100 rule.
  mj_resetData(hm, hd.get());
  hd->qpos[0] = 500.0;
  CHECK_FALSE(hopper_unhealthy(hm, hd.get()));

  mopo::env::Walker2d walker;
  auto wd = mopo::env::mujoco::make_data(walker.model());
  const mjModel* wm = walker.model();
  auto walker_state = [&](double height, double angle) {
    mj_resetData(wm, wd.get());
    wd->qpos[1] = height;
    wd->qpos[2] = angle;
    wd->qvel[3] = 1e6;  // no bound on velocities in Walker2d-v2
    return walker2d_unhealthy(wm, wd.get());
  };
  CHECK_FALSE(walker_state(1.25, 0.0));
  CHECK_FALSE(walker_state(0.8 + eps, 0.0));
  CHECK(walker_state(0.8, 0.0));
  CHECK_FALSE(walker_state(2.0 - eps, 0.0));
  CHECK(walker_state(2.0, 0.0));
  CHECK_FALSE(walker_state(1.0, 1.0 - eps));
  CHECK(walker_state(1.0, 1.0));
  CHECK_FALSE(walker_state(1.0, -1.0 + eps));
  CHECK(walker_state(1.0, -1.0));
}

TEST_CASE("A terminating step reports terminated and still pays the healthy bonus", "[mujoco][env]") {
  mopo::env::Hopper env;
  env.reset(0);
  auto qpos = env.qpos();
  qpos[2] = 0.3;  // tilted beyond the healthy angle: the next step terminates
  env.set_state(qpos, env.qvel());
  const Vector a{0.0, 0.0, 0.0};
  const double x0 = env.qpos()[0];
  const auto r = env.step(a);
  CHECK(r.terminated);
  CHECK_FALSE(r.truncated);
  CHECK(r.reward == Approx((env.qpos()[0] - x0) / env.dt() + 1.0).margin(1e-12));
  CHECK_THROWS_WITH(env.step(a), Catch::Contains("after the episode ended"));
}

TEST_CASE("Episodes are truncated at max_episode_steps", "[mujoco][env]") {
  mopo::env::MujocoOptions options;
  options.max_episode_steps = 7;
  mopo::env::HalfCheetah env(options);
  env.reset(0);
  const Vector a(6, 0.0);
  for (int t = 1; t <= 7; ++t) {
    const auto r = env.step(a);
    CHECK(r.truncated == (t == 7));
    CHECK_FALSE(r.terminated);
  }
  CHECK_THROWS_AS(env.step(a), mopo::ValueError);
  env.reset(1);
  CHECK_NOTHROW(env.step(a));
}

TEST_CASE("Reset noise follows the reference distributions", "[mujoco][env]") {
  mopo::env::Hopper hopper;
  for (uint64_t s = 0; s < 50; ++s) {
    hopper.reset(s);
    const auto q = hopper.qpos();
    const auto v = hopper.qvel();
    CHECK(std::abs(q[1] - 1.25) <= 0.005);
    for (double x : v) CHECK(std::abs(x) <= 0.005);
  }
  mopo::env::HalfCheetah cheetah;
  double sum_sq = 0.0;
  int count = 0;
  for (uint64_t s = 0; s < 200; ++s) {
    cheetah.reset(s);
    for (double x : cheetah.qpos()) CHECK(std::abs(x) <= 0.1);
    for (double x : cheetah.qvel()) {
      sum_sq += x * x;
      ++count;
    }
  }
  CHECK(std::sqrt(sum_sq / count) == Approx(0.1).epsilon(0.1));  // 0.1·N(0, 1)
}

TEST_CASE("Same seed gives bit-identical trajectories, different seeds differ", "[mujoco][env]") {
  SECTION("halfcheetah") {
    mopo::env::HalfCheetah a, b;
    check_determinism(a, b);
  }
  SECTION("hopper") {
    mopo::env::Hopper a, b;
    check_determinism(a, b);
  }
  SECTION("walker2d") {
    mopo::env::Walker2d a, b;
    check_determinism(a, b);
  }
  SECTION("ant") {
    mopo::env::Ant a, b;
    check_determinism(a, b);
  }
}

TEST_CASE("true_step equals set_state + step row by row", "[mujoco][env]") {
  SECTION("halfcheetah") {
    mopo::env::HalfCheetah env;
    check_true_step(env, 21, 64);
  }
  SECTION("hopper") {
    mopo::env::Hopper env;
    check_true_step(env, 22, 64);
  }
  SECTION("walker2d") {
    mopo::env::Walker2d env;
    check_true_step(env, 23, 64);
  }
  SECTION("ant") {
    mopo::env::Ant env;
    check_true_step(env, 24, 64);
  }
}

TEST_CASE("true_step leaves the episode untouched", "[mujoco][env]") {
  mopo::env::HalfCheetah env;
  const auto obs = env.reset(4);
  const auto before = env.qpos();
  auto tobs = torch::zeros({5, 17});
  env.true_step(tobs, torch::rand({5, 6}));
  CHECK(env.qpos() == before);
  CHECK(env.observation() == obs);
}

TEST_CASE("state_from_observation restores the state up to the dropped coordinates", "[mujoco][env]") {
  mopo::env::Walker2d env;
  env.reset(5);
  const auto obs = env.observation();
  const auto [qpos, qvel] = env.state_from_observation(obs);
  CHECK(qpos[0] == 0.0);
  const auto q = env.qpos();
  for (std::size_t i = 1; i < q.size(); ++i) CHECK(qpos[i] == q[i]);
  CHECK(qvel == env.qvel());
  CHECK_THROWS_AS(env.state_from_observation(Vector(3, 0.0)), mopo::ShapeError);
}

TEST_CASE("Bad input throws mopo errors and leaves the environment usable", "[mujoco][env]") {
  SECTION("halfcheetah") {
    mopo::env::HalfCheetah env;
    check_bad_input(env);
  }
  SECTION("hopper") {
    mopo::env::Hopper env;
    check_bad_input(env);
  }
  SECTION("ant") {
    mopo::env::Ant env;
    check_bad_input(env);
  }
}

TEST_CASE("Ant model matches the reference table", "[mujoco][env]") {
  mopo::env::Ant env;
  Vector qpos0(15, 0.0);
  qpos0[2] = 0.75;
  qpos0[3] = 1.0;
  check_model(env, 111, 8, 15, 14, 14, 0.01, 0.05, 0.910880, qpos0);
  const mjModel* m = env.model();
  CHECK(m->opt.integrator == mjINT_RK4);
  CHECK(m->body_mass[1] == Approx(0.327249).margin(1e-5));
  CHECK(body_mass(m, "aux_1") == Approx(0.039158).margin(1e-5));
  CHECK(body_mass(m, "front_left_leg") == Approx(0.039158).margin(1e-5));
  CHECK(m->body_mass[4] == Approx(0.067592).margin(1e-5));  // ankle-1 body
  // Action order is the XML actuator order, not the qpos order.
  const char* order[] = {"hip_4", "ankle_4", "hip_1", "ankle_1", "hip_2", "ankle_2", "hip_3", "ankle_3"};
  for (int i = 0; i < 8; ++i) {
    CHECK(m->actuator_trnid[2 * i] == mj_name2id(m, mjOBJ_JOINT, order[i]));
    CHECK(m->actuator_gear[6 * i] == 150.0);
  }
}

TEST_CASE("Ant reward, termination and observation recomputed from the simulator state", "[mujoco][env]") {
  mopo::env::Ant env;
  std::mt19937_64 rng(31);
  env.reset(31);
  int terminations = 0;
  for (int t = 0; t < 400; ++t) {
    const double x0 = env.data()->xpos[3];  // torso xpos, lagging one mj_step after a step (pitfall #8)
    const auto a = random_action(rng, 8, 1.3);
    const auto r = env.step(a);
    const double x1 = env.data()->xpos[3];
    CHECK(r.reward == Approx((x1 - x0) / 0.05 - 0.5 * sum_sq_clipped(a) + 1.0).margin(1e-12));
    const auto qpos = env.qpos();
    const auto qvel = env.qvel();
    const bool done = !(qpos[2] >= 0.2 && qpos[2] <= 1.0);
    CHECK(r.terminated == done);
    REQUIRE(r.observation.size() == 111);
    for (int i = 0; i < 13; ++i)
      CHECK(r.observation[static_cast<std::size_t>(i)] == qpos[static_cast<std::size_t>(i + 2)]);
    for (int i = 0; i < 14; ++i)
      CHECK(r.observation[static_cast<std::size_t>(13 + i)] == qvel[static_cast<std::size_t>(i)]);
    for (int i = 27; i < 111; ++i) CHECK(r.observation[static_cast<std::size_t>(i)] == 0.0);  // as in D4RL
    if (r.terminated || r.truncated) {
      ++terminations;
      env.reset(static_cast<uint64_t>(t));
    }
  }
  // The torso xpos really lags qpos after a step (the reason the reward reads xpos, not qpos).
  CHECK(env.data()->xpos[5] != env.qpos()[2]);
}

TEST_CASE("Ant under Gymnasium v4 semantics", "[mujoco][env]") {
  mopo::env::MujocoOptions v4;
  v4.semantics = mopo::env::Semantics::kGymnasiumV4;
  mopo::env::Ant plain(v4);
  CHECK(plain.observation_dim() == 27);
  v4.use_contact_forces = true;
  mopo::env::Ant forces(v4);
  CHECK(forces.observation_dim() == 111);
  forces.reset(0);
  std::mt19937_64 rng(2);
  double contact_sum = 0.0;
  for (int t = 0; t < 30; ++t) {
    const double x0 = forces.data()->xpos[3];
    const auto a = random_action(rng, 8);
    const auto r = forces.step(a);
    double cost = 0.0;
    for (int i = 27; i < 111; ++i) {
      const double f = r.observation[static_cast<std::size_t>(i)];
      CHECK(std::abs(f) <= 1.0);
      contact_sum += std::abs(f);
      cost += f * f;
    }
    const double x1 = forces.data()->xpos[3];
    CHECK(r.reward == Approx((x1 - x0) / 0.05 - 0.5 * sum_sq_clipped(a) - 5e-4 * cost + 1.0).margin(1e-12));
    if (r.terminated) break;
  }
  CHECK(contact_sum > 0.0);  // mj_rnePostConstraint fills cfrc_ext
}
