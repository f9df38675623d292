// train_sac: online Soft Actor-Critic on a task by name (e.g. HalfCheetah, Hopper), with deterministic
// evaluation, CSV/JSONL curves, checkpoints and a progress bar. Everything else lives in
// mopo/train/sac_trainer.hpp; this file only maps the command line onto SACTrainerOptions.
//
//   train_sac --task halfcheetah --steps 150000 --seed 0 --out runs/sac-halfcheetah-s0
//   train_sac --task hopper --config my_sac.json --set sac.target_entropy=-3 --set eval_every=10000
#include <CLI/CLI.hpp>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "mopo/config/json_config.hpp"
#include "mopo/core/random.hpp"
#include "mopo/core/runtime.hpp"
#include "mopo/env/registry.hpp"
#include "mopo/train/sac_trainer.hpp"

#include "common/cli.hpp"

int main(int argc, char** argv) {
  mopo::configure_process();  // malloc settings + 1 intra-op thread (fastest for batch-256 updates)
  CLI::App app{"Online SAC on a mopo task; writes config.json, train.csv, eval.csv, metrics.jsonl, agent.pt"};
  std::string task = "halfcheetah", config_file, out;
  int64_t steps = 0;
  uint64_t seed = 0;
  std::vector<std::string> overrides;
  app.add_option("--task", task, "task name (halfcheetah, hopper, walker2d, ant, ...)")
      ->capture_default_str();
  auto* steps_opt = app.add_option("--steps", steps, "environment steps (overrides total_steps)");
  auto* seed_opt = app.add_option("--seed", seed, "seed (overrides the config's seed)")
                       ->check(mopo::examples::kNonNegative);
  app.add_option("--out", out, "output directory (default runs/sac-<task>-s<seed>)");
  app.add_option("--config", config_file, "JSON file with SACTrainerOptions (keys absent keep defaults)");
  app.add_option("--set", overrides, "override one option, e.g. --set sac.actor_lr=1e-4 (repeatable)");
  return mopo::examples::run_cli("train_sac", app, argc, argv, [&] {
    mopo::train::SACTrainerOptions options;
    if (!config_file.empty()) options = mopo::config::load_file<mopo::train::SACTrainerOptions>(config_file);
    for (const auto& o : overrides) mopo::config::apply_override(options, o);
    if (steps_opt->count() > 0) options.total_steps = steps;
    if (seed_opt->count() > 0) options.seed = seed;
    options.out_dir =
        out.empty() ? (options.out_dir.empty() ? "runs/sac-" + task + "-s" + std::to_string(options.seed)
                                               : options.out_dir)
                    : out;
    options.validate();

    auto env = mopo::env::make(task);
    auto eval_env = mopo::env::make(task);
    const int64_t obs_dim = env->observation_dim(), act_dim = env->action_dim();
    mopo::agents::SACAgent agent(obs_dim, act_dim, options.sac, mopo::splitmix64(options.seed ^ 0xA6E27ull));
    mopo::rollout::ReplayBuffer buffer(std::min(options.buffer_capacity, options.total_steps), obs_dim,
                                       act_dim);
    std::cerr << "train_sac: " << env->name() << " (obs " << obs_dim << ", act " << act_dim << "), "
              << options.total_steps << " steps, seed " << options.seed << ", target entropy "
              << agent.target_entropy() << ", out " << options.out_dir << "\n";

    const auto result = mopo::train::train_sac_online(*env, *eval_env, agent, buffer, options);
    std::cout << "best eval return " << result.best_return << ", final " << result.final_return << " after "
              << result.env_steps << " steps / " << result.updates << " updates in " << result.seconds
              << " s\n";
    return 0;
  });
}
