// make_datasets: the local dataset zoo (mopo/zoo/zoo.hpp) for one MuJoCo task: random, medium, mixed
// (D4RL medium-replay), expert and medium-expert datasets in D4RL's HDF5 layout, each with a JSON card.
//
//   make_datasets --task hopper --out data/zoo       (default recipe: 100k rows, 300k SAC steps)
//   make_datasets --task hopper --size 2000 --sac-steps 5000 --out /tmp/zoo     (a quick small build)
//   make_datasets --task hopper --medium-policy m.pt --expert-policy e.pt      (reuse policies, no SAC)
//   make_datasets --task halfcheetah-jump | ant-angle[-<deg>] | hiv --sac-steps 100000   (replay recipe)
//   make_datasets --task ant --with-ant-angle 30   (+ ant-angle-30 from the same forward-task SAC replay)
#include <CLI/CLI.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "mopo/config/json_config.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/json_text.hpp"
#include "mopo/core/runtime.hpp"
#include "mopo/env/hiv.hpp"
#include "mopo/env/mujoco/tasks/ant.hpp"
#include "mopo/env/mujoco/tasks/half_cheetah.hpp"
#include "mopo/env/mujoco/tasks/half_cheetah_jump.hpp"
#include "mopo/env/mujoco/tasks/hopper.hpp"
#include "mopo/env/mujoco/tasks/walker2d.hpp"
#include "mopo/env/ood.hpp"
#include "mopo/env/registry.hpp"
#include "mopo/env/scores.hpp"
#include "mopo/zoo/zoo.hpp"

#include "common/cli.hpp"

namespace {
namespace fs = std::filesystem;
void log_line(const std::string& msg) { std::cerr << "make_datasets: " << msg << "\n"; }

template <class EnvT>
nlohmann::json build(const std::string& task, const mopo::zoo::ZooOptions& o, const std::string& out,
                     const mopo::zoo::PretrainedPolicies& pre,
                     const std::function<void(mopo::zoo::BehaviourRun&)>& on_run = {}) {
  EnvT env;
  EnvT eval_env;
  const auto ref = mopo::env::d4rl_reference_scores(task);  // d4rl/infos.py; none for other tasks
  return mopo::zoo::build_task(task, env, eval_env, o, out, ref, pre, log_line, on_run);
}

std::string ant_angle_name(double deg) {
  std::ostringstream name;
  name << "ant-angle-" << deg;
  return name.str();
}

// MOPO §5.2: the replay of SAC on the forward Ant task, relabelled with the angled reward.
constexpr const char* kAntAngleRecipe = "replay of SAC on ant (forward), ant-angle reward";
std::function<torch::Tensor(const mopo::data::TransitionDataset&)> ant_angle_rewards(double deg) {
  return [deg](const mopo::data::TransitionDataset& d) {
    return mopo::env::ant_angle_relabel(d.observations, d.actions, d.next_observations, deg);
  };
}
}  // namespace

int main(int argc, char** argv) {
  mopo::configure_process();
  CLI::App app{"Build D4RL-style offline datasets (random, medium, mixed, expert, medium-expert) for a task"};
  std::string task = "hopper", out = "data/zoo", config_file;
  mopo::zoo::PretrainedPolicies pre;
  std::vector<std::string> overrides;
  int64_t size = 0, sac_steps = 0;
  uint64_t seed = 0;
  app.add_option("--task", task,
                 "halfcheetah, hopper, walker2d, ant, halfcheetah-jump, ant-angle[-<deg>], hiv")
      ->capture_default_str();
  app.add_option("--out", out, "output directory")->capture_default_str();
  auto* size_opt = app.add_option("--size", size, "transitions per dataset (default 100000; D4RL 1e6)");
  auto* steps_opt = app.add_option("--sac-steps", sac_steps, "behaviour SAC budget in env steps");
  auto* seed_opt = app.add_option("--seed", seed, "seed")->check(mopo::examples::kNonNegative);
  app.add_option("--config", config_file, "JSON file with ZooOptions");
  app.add_option("--set", overrides, "override one option, e.g. --set eval_every=5000 (repeatable)");
  app.add_option("--medium-policy", pre.medium,
                 "medium policy file (agents::save_policy; skips the SAC run)");
  app.add_option("--expert-policy", pre.expert,
                 "expert policy file (agents::save_policy; skips the SAC run)");
  double with_angle = 0;
  auto* angle_opt =
      app.add_option("--with-ant-angle", with_angle,
                     "with --task ant: also save ant-angle-<deg> from the same SAC run's replay");
  return mopo::examples::run_cli("make_datasets", app, argc, argv, [&] {
    mopo::zoo::ZooOptions o;
    if (!config_file.empty()) o = mopo::config::load_file<mopo::zoo::ZooOptions>(config_file);
    for (const auto& s : overrides) mopo::config::apply_override(o, s);
    if (size_opt->count() > 0) o.size = size;
    if (steps_opt->count() > 0) o.sac_steps = sac_steps;
    if (seed_opt->count() > 0) o.seed = seed;
    o.validate();
    if (angle_opt->count() > 0 && (task != "ant" || pre.given() || !std::isfinite(with_angle))) {
      throw mopo::ValueError(
          "--with-ant-angle: needs --task ant, a SAC run (no --medium/--expert-policy) and a finite angle");
    }
    nlohmann::json summary;
    const std::string base = mopo::env::base_task(task);  // throws for unknown names, listing the known ones
    if (base == "halfcheetah") {
      summary = build<mopo::env::HalfCheetah>(task, o, out, pre);
    } else if (base == "hopper") {
      summary = build<mopo::env::Hopper>(task, o, out, pre);
    } else if (base == "walker2d") {
      summary = build<mopo::env::Walker2d>(task, o, out, pre);
    } else if (base == "ant") {
      nlohmann::json angle;
      summary = build<mopo::env::Ant>(task, o, out, pre, [&](mopo::zoo::BehaviourRun& run) {
        if (angle_opt->count() > 0) {
          angle = mopo::zoo::save_replay_dataset(ant_angle_name(with_angle), "ant", run, o, out,
                                                 kAntAngleRecipe, ant_angle_rewards(with_angle), log_line);
        }
      });
      if (!angle.is_null()) {
        summary["datasets"][angle["name"].get<std::string>()] = angle;
        mopo::atomic_write(fs::path(out) / "ant-summary.json", mopo::json_text(summary));
      }
    } else if (base == "halfcheetah-jump" || base == "halfcheetah-jump-behaviour") {
      // MOPO §5.2: SAC on the capped-velocity behaviour reward; its replay relabelled with the jump reward.
      auto env = mopo::env::make_halfcheetah_jump(mopo::env::JumpReward::kBehaviour);
      auto eval_env = mopo::env::make_halfcheetah_jump(mopo::env::JumpReward::kBehaviour);
      summary["datasets"]["replay"] = mopo::zoo::build_replay_task(
          "halfcheetah-jump", env, eval_env, o, out,
          "replay of SAC on halfcheetah-jump-behaviour, jump reward",
          [](const mopo::data::TransitionDataset& d) {
            return mopo::env::halfcheetah_jump_relabel(d.next_observations, d.rewards);
          },
          log_line);
    } else if (base == "ant-angle") {
      // MOPO §5.2: SAC on the forward Ant task; its replay relabelled with the angled reward.
      const double deg = mopo::env::ant_angle_degrees(task);
      mopo::env::Ant env;
      mopo::env::Ant eval_env;
      summary["datasets"]["replay"] = mopo::zoo::build_replay_task(
          ant_angle_name(deg), env, eval_env, o, out, kAntAngleRecipe, ant_angle_rewards(deg), log_line);
    } else if (base == "hiv") {
      // MOPO Appendix F: the first steps of an online SAC agent (the observation is the full ODE state).
      mopo::env::Hiv env;
      mopo::env::Hiv eval_env;
      summary["datasets"]["replay"] = mopo::zoo::build_replay_task(
          "hiv", env, eval_env, o, out, "first sac_steps transitions of online SAC on hiv", {}, log_line);
    } else {
      throw mopo::ValueError("--task: no zoo recipe for '" + task + "'");
    }
    for (const auto& [kind, card] : summary["datasets"].items()) {
      std::cout << card["name"].get<std::string>() << ": " << card["transitions"] << " transitions, "
                << card["episodes"]["complete"] << " episodes, mean/max return "
                << card["episodes"]["mean_return"] << " / " << card["episodes"]["max_return"] << "\n";
    }
    return 0;
  });
}
