// compose_mopo: MOPO (Yu et al. 2020, Algorithm 2) written from the library's blocks, without
// MopoTrainer: train a GaussianEnsemble, roll it out with the MaxStd penalty into a RolloutBuffer, mix real
// and model rows, update a SACAgent, evaluate in the real task. docs/mopo.md walks through it.
//   compose_mopo --dataset data/halfcheetah-random.hdf5 --task halfcheetah [--epochs 5 --lambda 0.5 ...]
#include <CLI/CLI.hpp>
#include <iostream>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/core/runtime.hpp"
#include "mopo/data/d4rl_hdf5.hpp"
#include "mopo/env/registry.hpp"
#include "mopo/env/scores.hpp"
#include "mopo/env/termination.hpp"
#include "mopo/models/gaussian_ensemble.hpp"
#include "mopo/penalty/max_std.hpp"
#include "mopo/rollout/model_rollout.hpp"
#include "mopo/rollout/replay_buffer.hpp"
#include "mopo/train/evaluate.hpp"

int main(int argc, char** argv) {
  mopo::configure_process();  // glibc malloc tuning for big-batch inference, one intra-op thread
  CLI::App app{"MOPO composed from GaussianEnsemble, ModelRollout<MaxStd>, RolloutBuffer and SACAgent"};
  std::string dataset, task = "halfcheetah";
  int64_t epochs = 5, steps = 1000, model_epochs = 5, starts = 5000, horizon = 5, retain = 5;
  double lambda = 1.0, real_ratio = 0.05;
  uint64_t seed = 0;
  app.add_option("--dataset", dataset, "D4RL-layout HDF5 file")->required();
  app.add_option("--task", task, "registry task (termination function, evaluation)")->capture_default_str();
  app.add_option("--epochs", epochs, "epochs of SAC updates")->capture_default_str();
  app.add_option("--steps", steps, "SAC updates per epoch (one rollout each)")->capture_default_str();
  app.add_option("--model-epochs", model_epochs, "ensemble epoch cap")->capture_default_str();
  app.add_option("--rollout-batch", starts, "rollout start states")->capture_default_str();
  app.add_option("--horizon", horizon, "rollout length h")->capture_default_str();
  app.add_option("--lambda", lambda, "penalty coefficient (Eq. 5)")->capture_default_str();
  app.add_option("--seed", seed, "seed")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    // D_env: (s, a, r, s', d) transitions by D4RL's qlearning_dataset rules.
    const auto data = mopo::data::qlearning_dataset(mopo::data::load_d4rl_hdf5(dataset));
    const int64_t obs_dim = data.observation_dim(), act_dim = data.action_dim();
    mopo::RandomState rng(seed);

    // Line 1: the probabilistic ensemble on (s, a) → [Δs, r], elites picked on the holdout set.
    mopo::models::GaussianEnsemble model(obs_dim, act_dim);
    mopo::models::EnsembleTrainOptions fit_options;
    fit_options.max_epochs = model_epochs;
    const auto report = model.fit(data, fit_options, &rng);
    std::cout << "model: " << report.epochs() << " epochs (" << report.stop_reason
              << "), best elite's holdout MSE "
              << report.best_holdout_mse[static_cast<std::size_t>(report.elites.front())] << "\n";

    // Lines 3-8 pieces: the penalised rollout (r̃ = r̂ − λ·max_i‖σ_i‖) and D_model keeping `retain` epochs.
    mopo::rollout::RolloutOptions rollout_options;
    rollout_options.rollout_batch = starts;
    rollout_options.horizon = horizon;
    const mopo::rollout::ModelRollout<mopo::penalty::MaxStd> rollout(lambda, rollout_options);
    mopo::rollout::RolloutBuffer model_data(retain, starts * horizon, obs_dim, act_dim);
    const auto terminal = mopo::env::termination_fn(task);

    mopo::agents::SACAgent agent(obs_dim, act_dim, mopo::agents::SACOptions{}, seed);
    auto policy = [&](const torch::Tensor& obs) { return agent.act(obs, /*deterministic=*/false); };
    auto eval_env = mopo::env::make(task);
    const bool scored = mopo::env::d4rl_reference_scores(task).has_value();

    for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
      // One rollout from dataset states with the current policy, into a new epoch of D_model.
      const auto start = data.observations.index_select(0, rng.randint(data.size(), starts));
      model_data.begin_epoch();
      const auto stats = rollout.run(model, start, policy, terminal, model_data, rng);
      // Line 9: SAC on batches of 5 % D_env and 95 % D_model rows.
      for (int64_t i = 0; i < steps; ++i)
        agent.update(mopo::rollout::sample_mixed(data, model_data, 256, real_ratio, rng));
      const auto ev = mopo::train::evaluate(*eval_env, agent, 5, rng);
      std::cout << "epoch " << epoch << ": rollout " << stats.transitions << " rows, mean penalty "
                << stats.mean_penalty << "; return " << ev.return_mean;
      if (scored) std::cout << ", D4RL score " << mopo::env::normalized_score_percent(task, ev.return_mean);
      std::cout << "\n";
    }
    return 0;
  } catch (const mopo::Error& e) {
    std::cerr << "compose_mopo: " << e.what() << "\n";
    return 2;
  }
}
