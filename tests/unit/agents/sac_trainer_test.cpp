// Tests of mopo::train::train_sac_online on small deterministic tasks written here (no MuJoCo):
// time-outs are stored as non-terminals, files are written, and SAC learns a 1-D point mass.
#include <torch/torch.h>  // before Catch: glog's CHECK must not replace Catch's
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "mopo/config/json_config.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/train/sac_trainer.hpp"

namespace {

/// 1-D point mass: x' = clip(x + 0.1·a, −1.5, 1.5), a ∈ [−2, 2], r = −x'², start x ~ U(−1, 1),
/// terminated when |x'| ≥ 1.5 (fell off), truncated after 20 steps. Records every step's flags.
struct PointMass {
  double x = 0;
  int64_t t = 0;
  std::mt19937_64 rng;
  std::vector<std::pair<bool, bool>> flags;  // (terminated, truncated) per step

  int64_t observation_dim() const { return 1; }
  int64_t action_dim() const { return 1; }
  mopo::env::Box action_space() const { return {{-2.0}, {2.0}}; }
  mopo::env::Vector reset(uint64_t seed) {
    rng.seed(seed);
    x = std::uniform_real_distribution<double>(-1.0, 1.0)(rng);
    t = 0;
    return {x};
  }
  mopo::env::StepResult step(const mopo::env::Vector& a) {
    REQUIRE(a.size() == 1);
    REQUIRE(std::abs(a[0]) <= 2.0 + 1e-9);  // the trainer maps [−1, 1] to the box
    x = std::clamp(x + 0.1 * a[0], -1.5, 1.5);
    ++t;
    mopo::env::StepResult r{{x}, -x * x, std::abs(x) >= 1.5, t >= 20};
    flags.emplace_back(r.terminated, r.truncated);
    return r;
  }
};
static_assert(mopo::env::is_environment_v<PointMass>);

mopo::train::SACTrainerOptions small_options() {
  mopo::train::SACTrainerOptions o;
  o.sac.hidden = {64, 64};
  o.sac.batch_size = 64;
  o.sac.actor_lr = o.sac.critic_lr = o.sac.alpha_lr = 1e-3;
  o.progress = false;
  o.eval_episodes = 5;
  o.log_every = 500;
  o.buffer_capacity = 100'000;
  return o;
}

}  // namespace

TEST_CASE("the trainer stores time-outs as non-terminals and terminals as terminals",
          "[unit][agents][trainer]") {
  PointMass env, eval_env;
  auto o = small_options();
  o.total_steps = 600;
  o.warmup_steps = 600;  // random actions only: big pushes reach |x| = 1.5 sometimes
  o.eval_every = 0;
  mopo::agents::SACAgent agent(1, 1, o.sac, 1);
  mopo::rollout::ReplayBuffer buffer(1000, 1, 1);
  const auto result = mopo::train::train_sac_online(env, eval_env, agent, buffer, o);
  CHECK(result.updates == 0);
  REQUIRE(buffer.size() == 600);
  REQUIRE(env.flags.size() == 600);
  const auto d = buffer.stored().terminals;
  int64_t truncations = 0, terminals = 0;
  for (int64_t i = 0; i < 600; ++i) {
    const auto [terminated, truncated] = env.flags[static_cast<std::size_t>(i)];
    CHECK(d[i].item<float>() == (terminated ? 1.0f : 0.0f));
    truncations += (truncated && !terminated) ? 1 : 0;
    terminals += terminated ? 1 : 0;
  }
  CHECK(truncations > 5);
  CHECK(terminals > 0);
  CHECK(result.episodes == truncations + terminals);
  REQUIRE(result.evaluations.size() == 1);  // the final evaluation
}

TEST_CASE("the trainer's hooks see every step, replace the evaluation, and change nothing else",
          "[unit][agents][trainer]") {
  auto o = small_options();
  o.total_steps = 300;
  o.warmup_steps = 100;
  o.eval_every = 100;
  o.eval_episodes = 2;
  auto run = [&](bool hooked, std::vector<double>* evals) {
    PointMass env, eval_env;
    mopo::agents::SACAgent agent(1, 1, o.sac, 3);
    mopo::rollout::ReplayBuffer buffer(1000, 1, 1);
    mopo::train::SACTrainerCallbacks cb;
    int64_t before = 0, seen = 0, ends = 0;
    if (hooked) {
      cb.before_step = [&](int64_t step, const mopo::env::Vector& obs) {
        CHECK(step == before + 1);
        CHECK(obs[0] == env.x);  // called before env.step: the state the action is chosen in
        ++before;
      };
      cb.on_transition = [&](const mopo::train::OnlineTransition& t) {
        CHECK(t.step == before);
        CHECK(t.env_action->at(0) == Approx(2.0 * t.action->at(0)));  // [−1, 1] -> [−2, 2]
        CHECK(t.result->observation[0] == env.x);
        CHECK(t.time_limit == t.result->truncated);
        ends += t.episode_end() ? 1 : 0;
        ++seen;
      };
      cb.evaluate = [&](int64_t step) {
        mopo::train::EvalResult r;
        r.return_mean = -static_cast<double>(step);
        return r;
      };
    }
    cb.on_eval = [&](const mopo::train::EvalResult& ev) {
      if (evals) evals->push_back(ev.return_mean);
    };
    const auto result = mopo::train::train_sac_online(env, eval_env, agent, buffer, o, cb);
    if (hooked) {
      CHECK(before == 300);
      CHECK(seen == 300);
      CHECK(ends == result.episodes);
    }
    return buffer.stored().observations.clone();
  };
  std::vector<double> plain_evals, hooked_evals;
  const auto plain = run(false, &plain_evals);
  const auto hooked = run(true, &hooked_evals);
  CHECK(torch::equal(plain, hooked));  // evaluation draws no training randomness; hooks change nothing
  CHECK(hooked_evals == std::vector<double>{-100.0, -200.0, -300.0});
  REQUIRE(plain_evals.size() == 3);
  CHECK(plain_evals[0] != -100.0);
}

TEST_CASE("SAC learns the point mass and writes its files", "[unit][agents][trainer]") {
  PointMass env, eval_env;
  auto o = small_options();
  o.total_steps = 3000;
  o.warmup_steps = 500;
  o.eval_every = 1000;
  o.seed = 3;
  const auto dir =
      std::filesystem::temp_directory_path() / ("mopo_sac_trainer_" + std::to_string(::getpid()));
  o.out_dir = dir.string();
  mopo::agents::SACAgent agent(1, 1, o.sac, 4);
  mopo::rollout::ReplayBuffer buffer(o.buffer_capacity, 1, 1);
  std::vector<mopo::train::EvalResult> seen;
  mopo::train::SACTrainerCallbacks cb;
  cb.on_eval = [&](const mopo::train::EvalResult& e) { seen.push_back(e); };
  const auto result = mopo::train::train_sac_online(env, eval_env, agent, buffer, o, cb);
  CHECK(result.updates == 2500);
  REQUIRE(seen.size() == 3);
  CHECK(seen.back().step == 3000);
  // Doing nothing scores −20·E[x²] ≈ −6.7; moving to 0 at full speed ≈ −0.35.
  INFO("final return " << result.final_return);
  CHECK(result.final_return > -1.0);
  CHECK(seen.back().length_mean == 20.0);
  for (const char* f : {"config.json", "train.csv", "eval.csv", "metrics.jsonl", "agent.pt", "result.json"}) {
    CHECK(std::filesystem::exists(dir / f));
  }
  const auto cfg = mopo::config::load_file<mopo::train::SACTrainerOptions>(dir / "config.json");
  CHECK(cfg.total_steps == 3000);
  CHECK(cfg.sac.hidden == std::vector<int64_t>({64, 64}));
  mopo::agents::SACAgent reloaded(1, 1, o.sac, 99);
  reloaded.load(dir / "agent.pt");
  CHECK(reloaded.act(std::vector<double>{0.7}, true) == agent.act(std::vector<double>{0.7}, true));
  std::filesystem::remove_all(dir);
}

TEST_CASE("the trainer rejects bad options and mismatching dims", "[unit][agents][trainer]") {
  PointMass env, eval_env;
  auto o = small_options();
  mopo::agents::SACAgent agent(1, 1, o.sac);
  mopo::rollout::ReplayBuffer buffer(100, 1, 1);
  o.total_steps = 0;
  CHECK_THROWS_WITH(mopo::train::train_sac_online(env, eval_env, agent, buffer, o),
                    Catch::Contains("total_steps"));
  o = small_options();
  o.sac.gamma = 2;
  CHECK_THROWS_WITH(mopo::train::train_sac_online(env, eval_env, agent, buffer, o),
                    Catch::Contains("sac.gamma"));
  o = small_options();
  mopo::agents::SACAgent wide(2, 1, o.sac);
  CHECK_THROWS_AS(mopo::train::train_sac_online(env, eval_env, wide, buffer, o), mopo::ShapeError);
}
