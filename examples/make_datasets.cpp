// make_datasets: the local dataset zoo (mopo/data/zoo.hpp) for one MuJoCo task: random, medium, mixed
// (D4RL medium-replay), expert and medium-expert datasets in D4RL's HDF5 layout, each with a JSON card.
//
//   make_datasets --task hopper --out data/zoo       (default recipe: 100k rows, 300k SAC steps)
//   make_datasets --task hopper --size 2000 --sac-steps 5000 --out /tmp/zoo     (a quick small build)
//   make_datasets --task hopper --medium-policy m.pt --expert-policy e.pt      (reuse policies, no SAC)
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <vector>

#include "mopo/core/json_config.hpp"
#include "mopo/core/runtime.hpp"
#include "mopo/data/zoo.hpp"
#include "mopo/env/mujoco/tasks/ant.hpp"
#include "mopo/env/mujoco/tasks/half_cheetah.hpp"
#include "mopo/env/mujoco/tasks/hopper.hpp"
#include "mopo/env/mujoco/tasks/walker2d.hpp"

namespace {
template <class EnvT>
nlohmann::json build(const std::string& task, const mopo::zoo::ZooOptions& o, const std::string& out,
                     const mopo::zoo::ReferenceReturns& ref, const mopo::zoo::PretrainedPolicies& pre) {
  EnvT env;
  EnvT eval_env;
  return mopo::zoo::build_task(task, env, eval_env, o, out, ref, pre,
                               [](const std::string& msg) { std::cerr << "make_datasets: " << msg << "\n"; });
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
  app.add_option("--task", task, "halfcheetah, hopper, walker2d or ant")->capture_default_str();
  app.add_option("--out", out, "output directory")->capture_default_str();
  auto* size_opt = app.add_option("--size", size, "transitions per dataset (default 100000; D4RL 1e6)");
  auto* steps_opt = app.add_option("--sac-steps", sac_steps, "behaviour SAC budget in env steps");
  auto* seed_opt = app.add_option("--seed", seed, "seed");
  app.add_option("--config", config_file, "JSON file with ZooOptions");
  app.add_option("--set", overrides, "override one option, e.g. --set eval_every=5000 (repeatable)");
  app.add_option("--medium-policy", pre.medium, "medium policy file (zoo::save_policy; skips the SAC run)");
  app.add_option("--expert-policy", pre.expert, "expert policy file (zoo::save_policy; skips the SAC run)");
  CLI11_PARSE(app, argc, argv);
  try {
    mopo::zoo::ZooOptions o;
    if (!config_file.empty()) o = mopo::config::load_file<mopo::zoo::ZooOptions>(config_file);
    for (const auto& s : overrides) mopo::config::apply_override(o, s);
    if (size_opt->count() > 0) o.size = size;
    if (steps_opt->count() > 0) o.sac_steps = sac_steps;
    if (seed_opt->count() > 0) o.seed = seed;
    o.validate();
    // D4RL REF_MIN_SCORE / REF_MAX_SCORE (d4rl/infos.py; environments.md §10.5).
    nlohmann::json summary;
    if (task == "halfcheetah") {
      summary = build<mopo::env::HalfCheetah>(task, o, out, {-280.178953, 12135.0}, pre);
    } else if (task == "hopper") {
      summary = build<mopo::env::Hopper>(task, o, out, {-20.272305, 3234.3}, pre);
    } else if (task == "walker2d") {
      summary = build<mopo::env::Walker2d>(task, o, out, {1.629008, 4592.3}, pre);
    } else if (task == "ant") {
      summary = build<mopo::env::Ant>(task, o, out, {-325.6, 3879.7}, pre);
    } else {
      throw mopo::ValueError("--task: unknown task '" + task + "' (halfcheetah, hopper, walker2d, ant)");
    }
    for (const auto& [kind, card] : summary["datasets"].items()) {
      std::cout << task << "-" << kind << ": " << card["transitions"] << " transitions, "
                << card["episodes"]["complete"] << " episodes, mean/max return "
                << card["episodes"]["mean_return"] << " / " << card["episodes"]["max_return"] << "\n";
    }
    return 0;
  } catch (const mopo::Error& e) {
    std::cerr << "make_datasets: error: " << e.what() << "\n";
    return 1;
  }
}
