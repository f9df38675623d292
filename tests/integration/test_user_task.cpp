// A task the registry does not know, defined here, run through MopoTrainer end to end (issue 14 item 1):
// data collected in the test's own environment, the ensemble trained, rollouts ended by the task's own
// termination function, SAC updated, the policy evaluated in an environment the task makes and its
// return normalised with the task's own reference scores; checkpoint and resume keep the task.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "mopo/env/environment.hpp"
#include "mopo/env/task.hpp"
#include "mopo/train/mopo_trainer.hpp"
#include "support/tiny_mopo_config.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

// A point in the square [-1.5, 1.5]² moved by its action (velocity in [-1, 1]², 0.1 per step); reward
// −‖p − goal‖; the episode ends (terminal) when it leaves the square, and is cut after 40 steps.
class PointReacher final : public mopo::env::Environment {
 public:
  static constexpr double kHalfWidth = 1.5;
  [[nodiscard]] int64_t observation_dim() const override { return 2; }
  [[nodiscard]] int64_t action_dim() const override { return 2; }
  [[nodiscard]] mopo::env::Box action_space() const override { return {{-1.0, -1.0}, {1.0, 1.0}}; }
  [[nodiscard]] int64_t max_episode_steps() const override { return 40; }
  [[nodiscard]] std::string name() const override { return "point-reacher"; }
  mopo::env::Vector reset(uint64_t seed) override {
    rng_.seed(seed);
    std::uniform_real_distribution<double> u(-1.4, 1.4);
    p_ = {u(rng_), u(rng_)};
    t_ = 0;
    return p_;
  }
  mopo::env::StepResult step(const mopo::env::Vector& a) override {
    for (int i = 0; i < 2; ++i) p_[static_cast<std::size_t>(i)] += 0.1 * std::clamp(a.at(i), -1.0, 1.0);
    ++t_;
    mopo::env::StepResult r;
    r.observation = p_;
    r.reward = -std::hypot(p_[0] - 0.5, p_[1] - 0.5);
    r.terminated = std::max(std::abs(p_[0]), std::abs(p_[1])) > kHalfWidth;
    r.truncated = !r.terminated && t_ >= max_episode_steps();
    return r;
  }

 private:
  std::mt19937_64 rng_;
  mopo::env::Vector p_{0.0, 0.0};
  int64_t t_ = 0;
};

std::atomic<int64_t> g_termination_rows{0};

mopo::env::Task point_reacher_task() {
  mopo::env::Task t;
  t.name = "point-reacher";
  t.termination = [](const torch::Tensor&, const torch::Tensor&, const torch::Tensor& next_obs) {
    g_termination_rows += next_obs.size(0);
    return next_obs.abs().amax(1) > PointReacher::kHalfWidth;  // the environment's own rule
  };
  t.make_env = [] { return std::make_unique<PointReacher>(); };
  t.reference = mopo::env::ReferenceScores{-60.0, -10.0};
  return t;
}

// Random-action episodes in PointReacher.
mopo::data::TransitionDataset reacher_dataset(int64_t episodes, uint64_t seed) {
  PointReacher env;
  mopo::RandomState rng(seed);
  std::vector<torch::Tensor> obs, act, rew, next, term, tout;
  for (int64_t e = 0; e < episodes; ++e) {
    auto o = env.reset(rng.next_seed());
    for (;;) {
      const torch::Tensor a = torch::rand({2}, rng.generator(), torch::kFloat64) * 2 - 1;
      const auto r = env.step({a[0].item<double>(), a[1].item<double>()});
      obs.push_back(torch::tensor(o, torch::kFloat64).to(torch::kFloat32));
      act.push_back(a.to(torch::kFloat32));
      rew.push_back(torch::tensor(r.reward, torch::kFloat32));
      next.push_back(torch::tensor(r.observation, torch::kFloat64).to(torch::kFloat32));
      term.push_back(torch::tensor(r.terminated));
      tout.push_back(torch::tensor(r.truncated));
      o = r.observation;
      if (r.terminated || r.truncated) break;
    }
  }
  mopo::data::TransitionDataset d;
  d.observations = torch::stack(obs);
  d.actions = torch::stack(act);
  d.rewards = torch::stack(rew);
  d.next_observations = torch::stack(next);
  d.terminals = torch::stack(term);
  d.timeouts = torch::stack(tout);
  return d;
}

mopo::train::MopoConfig tiny_config() {
  auto c = mopo::testing::tiny_mopo_config();
  c.task = "not-used";  // replaced by the Task's name
  c.rollout.horizon = 5;
  c.rollout_freq = 25;
  c.epochs = 3;
  c.steps_per_epoch = 50;
  c.eval_episodes = 2;
  c.seed = 11;
  c.model_training.max_epochs = 5;
  return c;
}

fs::path fresh_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / ("mopo_ut_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

}  // namespace

TEST_CASE("MOPO end to end on a task the registry does not know", "[integration][task]") {
  const auto data = reacher_dataset(60, 3);
  REQUIRE(data.size() > 500);
  const auto task = point_reacher_task();
  // The registry really does not know it: by name alone the trainer refuses it.
  {
    auto by_name = tiny_config();
    by_name.task = "point-reacher";
    REQUIRE_THROWS_WITH(mopo::train::Mopo(by_name, data), Contains("unknown task 'point-reacher'"));
  }
  const auto dir = fresh_dir("reacher");
  g_termination_rows = 0;
  std::vector<mopo::train::MopoEpochResult> results;
  {
    mopo::train::MopoTrainer<mopo::penalty::MaxStd> trainer(tiny_config(), data, task);
    CHECK(trainer.config().task == "point-reacher");
    CHECK(trainer.task().name == "point-reacher");
    results = trainer.fit(dir);  // evaluates in task.make_env()
  }
  REQUIRE(results.size() == 3);
  // The task's termination function ended the model rollouts (one call per rollout step) and cut some.
  CHECK(g_termination_rows > 0);
  int64_t terminated = 0;
  for (const auto& r : results) {
    terminated += static_cast<int64_t>(r.metrics.at("rollout/terminated"));
    REQUIRE(r.eval.has_value());  // evaluated in the task's own environment every epoch
    CHECK(r.eval->length_mean <= 40.0);
    CHECK(std::isfinite(r.eval->return_mean));
    // The task's reference scores give the normalised score.
    CHECK(r.normalized_score == Approx(100.0 * (r.eval->return_mean + 60.0) / 50.0));
    CHECK(r.metrics.at("eval/normalized_score") == Approx(r.normalized_score));
  }
  CHECK(terminated > 0);
  CHECK(fs::exists(dir / "metrics.csv"));
  CHECK(fs::exists(dir / "model_metrics.csv"));
  CHECK(fs::exists(dir / "checkpoint" / "latest.json"));

  SECTION("a checkpoint of the user task resumes with it, and not as another task") {
    auto cfg = tiny_config();
    cfg.epochs = 4;
    mopo::train::MopoTrainer<mopo::penalty::MaxStd> resumed(cfg, data, task);
    resumed.load_checkpoint(dir / "checkpoint");
    CHECK(resumed.epoch() == 3);
    const auto more = resumed.fit(dir);
    REQUIRE(more.size() == 1);
    CHECK(more[0].epoch == 4);
    auto other = task;
    other.name = "point-reacher-v2";
    mopo::train::MopoTrainer<mopo::penalty::MaxStd> wrong(cfg, data, other);
    REQUIRE_THROWS_WITH(wrong.load_checkpoint(dir / "checkpoint"),
                        Contains("task = \"point-reacher\"") && Contains("\"point-reacher-v2\""));
  }
  SECTION("without make_env, fit(out_dir) trains and does not evaluate; reference-less scores are NaN") {
    auto bare = task;
    bare.make_env = nullptr;
    bare.reference.reset();
    auto cfg = tiny_config();
    cfg.epochs = 1;
    mopo::train::MopoTrainer<mopo::penalty::MaxStd> trainer(cfg, data, bare);
    const auto r = trainer.fit();
    REQUIRE(r.size() == 1);
    CHECK_FALSE(r[0].eval.has_value());
    PointReacher env;  // the environment passed explicitly instead
    cfg.epochs = 1;
    mopo::train::MopoTrainer<mopo::penalty::MaxStd> with_env(cfg, data, bare);
    const auto e = with_env.fit(&env);
    REQUIRE(e[0].eval.has_value());
    CHECK(std::isnan(e[0].normalized_score));
  }
  fs::remove_all(dir);
}

TEST_CASE("A user task and the config are checked before anything is built", "[integration][task]") {
  const auto data = reacher_dataset(5, 4);
  auto task = point_reacher_task();
  SECTION("no termination function") {
    task.termination = nullptr;
    REQUIRE_THROWS_AS(mopo::train::Mopo(tiny_config(), data, task), mopo::ConfigError);
    REQUIRE_THROWS_WITH(mopo::train::Mopo(tiny_config(), data, task),
                        Contains("task 'point-reacher'") && Contains("termination"));
  }
  SECTION("no name") {
    task.name.clear();
    REQUIRE_THROWS_WITH(mopo::train::Mopo(tiny_config(), data, task), Contains("task: the name is empty"));
  }
  SECTION("reference scores that cannot normalise") {
    task.reference = mopo::env::ReferenceScores{5.0, 5.0};
    REQUIRE_THROWS_WITH(mopo::train::Mopo(tiny_config(), data, task), Contains("must be finite and differ"));
  }
  SECTION("a bad setting is a ConfigError naming its key, not an error of a member built from it") {
    auto cfg = tiny_config();
    cfg.retain_epochs = 0;
    REQUIRE_THROWS_WITH(mopo::train::Mopo(cfg, data, task), Contains("retain_epochs: must be > 0"));
    cfg = tiny_config();
    cfg.rollout.horizon = 0;
    REQUIRE_THROWS_WITH(mopo::train::Mopo(cfg, data, task), Contains("rollout.horizon: must be > 0"));
    cfg = tiny_config();
    cfg.sac.batch_size = 0;
    REQUIRE_THROWS_WITH(mopo::train::Mopo(cfg, data, task), StartsWith("sac."));
  }
}
