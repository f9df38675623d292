/// @file task.hpp
/// @brief A task as the MOPO trainer needs it beyond the data: how model rollouts end, where the policy is
/// evaluated, how its return becomes a normalised score (no MuJoCo dependency).
///
/// The registry's tasks are ready-made instances (`env::task("hopper-medium-v2")`, and with their MuJoCo
/// evaluation environment `env::make_task` in registry.hpp); a task of one's own is a `Task` filled in by
/// hand (docs/concepts.md#task):
/// @code
/// mopo::env::Task reacher;
/// reacher.name = "point-reacher";
/// reacher.termination = [](const torch::Tensor&, const torch::Tensor&, const torch::Tensor& next_obs) {
///   return next_obs.abs().amax(1) > 2.0;                  // left the arena: done [B] (bool)
/// };
/// reacher.make_env = [] { return std::make_unique<PointReacher>(); };   // optional: evaluation
/// reacher.reference = mopo::env::ReferenceScores{-120.0, -15.0};        // optional: normalised scores
/// mopo::train::MopoTrainer<> trainer(config, dataset, reacher);
/// @endcode
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "mopo/core/error.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/env/scores.hpp"
#include "mopo/env/termination.hpp"

namespace mopo::env {

/// What the trainer knows of a task: the data says the rest (dimensions, rewards).
struct Task {
  /// Recorded in configs and checkpoints (MopoConfig::task) and printed in logs; a checkpoint of another
  /// task's run is not resumed.
  std::string name;
  /// (obs [B, D], action [B, A], next_obs [B, D]) → done [B] (bool): ends model rollouts, the task's
  /// "healthy" rule applied to predicted states (mopo-algorithm.md §6). Required.
  TerminationFn termination;
  /// A new evaluation environment (MopoTrainer::fit without an environment argument evaluates in one); empty
  /// = the caller passes the environment to fit(), or there is no evaluation.
  std::function<std::unique_ptr<Environment>()> make_env;
  /// (random, expert) returns for the D4RL normalised score 100·(R − random)/(expert − random)
  /// (environments.md §10.5); nullopt = report raw returns (the OOD tasks, MOPO Table 2).
  std::optional<ReferenceScores> reference;

  /// @throws ConfigError naming the task and the field at fault.
  void validate() const {
    const std::string who = "task '" + name + "': ";
    if (name.empty()) throw ConfigError("task: the name is empty");
    if (!termination) throw ConfigError(who + "no termination function (Task::termination)");
    if (reference) {
      const double lo = reference->random;
      const double hi = reference->expert;
      if (!std::isfinite(lo) || !std::isfinite(hi) || lo == hi) {
        std::ostringstream os;
        os << who << "reference scores must be finite and differ, got random " << lo << ", expert " << hi;
        throw ConfigError(os.str());
      }
    }
  }

  /// 100 × (R − random)/(expert − random). @throws ValueError without reference scores or for a non-finite R.
  [[nodiscard]] double normalized_score_percent(double episode_return) const {
    if (!reference) {
      throw ValueError("task '" + name + "' has no reference scores (report raw returns)");
    }
    return 100.0 * normalized_score(*reference, episode_return, "task '" + name + "'");
  }
};

/// A task the registry knows, by task or dataset name ("hopper", "hopper-medium-v2", "ant-angle-45"): its
/// termination function and D4RL reference scores; no evaluation environment (that needs MuJoCo:
/// env::make_task in registry.hpp). @throws ValueError for unknown names, listing the known ones.
inline Task task(const std::string& name, HopperTermination hopper_mode = HopperTermination::kCorrected) {
  Task t;
  t.name = name;
  t.termination = termination_fn(name, hopper_mode);  // throws for unknown names
  t.reference = d4rl_reference_scores(name);
  return t;
}

}  // namespace mopo::env
