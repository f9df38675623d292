/// @file mopo_config.hpp
/// @brief MopoConfig: every setting of MopoTrainer, with the original code's defaults, and its validation.
///
/// Loaded from JSON with `mopo::config::load_file` (key-path errors, unknown keys rejected) or filled in
/// by hand; `validate()` checks it all, nested option groups included, before MopoTrainer builds anything.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/core/error.hpp"
#include "mopo/models/ensemble_options.hpp"
#include "mopo/rollout/model_rollout.hpp"

namespace mopo::train {

/// Every MOPO setting, with the original code's defaults (mopo-algorithm.md §5.1, §8, §9).
struct MopoConfig {
  std::string task = "halfcheetah";  ///< task name: termination function, evaluation, normalised score
  double lambda = 1.0;               ///< λ of r̃ = r̂ − λ·u (per dataset, Table 6)
  rollout::RolloutOptions rollout;   ///< rollout_batch 50 000, horizon h (per dataset), random_actions
  int64_t retain_epochs = 5;         ///< model_retain_epochs: rollouts kept in D_model
  int64_t rollout_freq = 1000;       ///< SAC steps between rollouts (original model_train_freq)
  /// Intra-op threads while a rollout runs (big-batch inference gains from 2, batch-256 SAC updates do
  /// not: performance-notes.md §1); capped by the hardware's threads, restored afterwards; 0 = unchanged.
  int64_t rollout_threads = 2;
  double real_ratio = 0.05;        ///< share of D_env rows in each SAC batch (12 of 256)
  int64_t epochs = 1000;           ///< policy epochs
  int64_t steps_per_epoch = 1000;  ///< SAC updates per epoch (original epoch_length)
  int64_t eval_episodes = 10;      ///< deterministic evaluation episodes per epoch (0 = none)
  int64_t eval_every = 1;          ///< evaluate every k epochs (and after the last)
  int64_t checkpoint_every = 1;    ///< checkpoint every k epochs when an output dir is set (0 = never)
  uint64_t seed = 0;               ///< seeds everything (agent, model training, rollouts, batches)
  bool real_only = false;          ///< offline SAC baseline: no model, batches from D_env only
  bool behavior_cloning = false;   ///< BC baseline: actor regresses D_env actions, no model, no critic
  bool hopper_original_termination = false;  ///< parity switch: the original one-sided Hopper check
  /// What a rollout does with rows the model predicts as NaN/Inf: "stop" throws DivergenceError naming
  /// the epoch and the count; "drop" leaves them out of D_model (counted in rollout/nonfinite). A NaN/Inf
  /// SAC loss, Q-value or α always stops training (DivergenceError): the update has already changed the
  /// networks, and undoing it would cost a copy of every parameter per step.
  std::string nonfinite_model_rows = "stop";
  models::EnsembleOptions ensemble;  ///< 7 members, 5 elites, 4×200 swish
  models::EnsembleTrainOptions model_training;
  agents::SACOptions sac;

  template <class V>
  void visit(V&& v) {
    v("task", task);
    v("lambda", lambda);
    v("rollout", rollout);
    v("retain_epochs", retain_epochs);
    v("rollout_freq", rollout_freq);
    v("rollout_threads", rollout_threads);
    v("real_ratio", real_ratio);
    v("epochs", epochs);
    v("steps_per_epoch", steps_per_epoch);
    v("eval_episodes", eval_episodes);
    v("eval_every", eval_every);
    v("checkpoint_every", checkpoint_every);
    v("seed", seed);
    v("real_only", real_only);
    v("behavior_cloning", behavior_cloning);
    v("hopper_original_termination", hopper_original_termination);
    v("nonfinite_model_rows", nonfinite_model_rows);
    v("ensemble", ensemble);
    v("model_training", model_training);
    v("sac", sac);
  }
  /// Checks every setting, the nested option groups too (errors name the key path, e.g.
  /// "rollout.horizon: must be > 0"). MopoTrainer calls it before it builds anything.
  void validate() const {
    auto nested = [](const char* key, const auto& options) {
      try {
        options.validate();
      } catch (const ConfigError& e) {
        throw ConfigError(std::string(key) + "." + e.what());
      }
    };
    nested("rollout", rollout);
    nested("ensemble", ensemble);
    nested("model_training", model_training);
    nested("sac", sac);
    if (task.empty()) throw ConfigError("task: must not be empty");
    auto positive = [](const char* key, int64_t value, bool zero_ok) {
      if (value < 0 || (!zero_ok && value == 0)) {
        throw ConfigError(std::string(key) + ": must be " + (zero_ok ? ">= 0" : "> 0") + ", got " +
                          std::to_string(value));
      }
    };
    if (!std::isfinite(lambda) || lambda < 0)
      throw ConfigError("lambda: must be >= 0, got " + std::to_string(lambda));
    if (!(real_ratio >= 0 && real_ratio <= 1)) {
      throw ConfigError("real_ratio: must be in [0, 1], got " + std::to_string(real_ratio));
    }
    positive("retain_epochs", retain_epochs, false);
    positive("rollout_freq", rollout_freq, false);
    positive("rollout_threads", rollout_threads, true);
    positive("epochs", epochs, true);
    positive("steps_per_epoch", steps_per_epoch, false);
    positive("eval_episodes", eval_episodes, true);
    positive("eval_every", eval_every, false);
    positive("checkpoint_every", checkpoint_every, true);
    if (real_only && behavior_cloning)
      throw ConfigError("real_only and behavior_cloning: choose one baseline, not both");
    if (nonfinite_model_rows != "stop" && nonfinite_model_rows != "drop") {
      throw ConfigError("nonfinite_model_rows: expected \"stop\" or \"drop\", got \"" + nonfinite_model_rows +
                        "\"");
    }
  }
  /// Whether this configuration trains and rolls out a dynamics model (false for the model-free baselines).
  [[nodiscard]] bool uses_model() const { return !real_only && !behavior_cloning; }
};

}  // namespace mopo::train
