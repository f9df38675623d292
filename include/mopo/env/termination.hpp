/// @file termination.hpp
/// @brief Termination functions for model rollouts, batched over tensors (no MuJoCo dependency).
///
/// A model rollout has only predicted observations, so these functions apply each task's "healthy"
/// rule to the predicted next observation (mopo-algorithm.md §6; environments.md §8.1). They are
/// hand-written, task-specific knowledge — the "privileged information" users pointed out
/// (tianheyu927/mopo#4) — exactly as in MOPO/MBPO.
///
/// Every function takes (obs [B, D], action [B, A], next_obs [B, D]) and returns a bool tensor [B]:
/// true = the transition ends the episode (terminal, no bootstrapping).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

#include "mopo/core/error.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/env/scores.hpp"

namespace mopo::env {

/// Signature of a termination function: (obs, action, next_obs) → done [B] (bool).
using TerminationFn = std::function<torch::Tensor(const torch::Tensor& obs, const torch::Tensor& action,
                                                  const torch::Tensor& next_obs)>;

/// Which Hopper check to apply.
enum class HopperTermination {
  /// |next_obs[:, 1:]| < 100, two-sided, as the real environment checks |s[2:]| < 100 (default).
  kCorrected,
  /// Parity with MOPO/MBPO/OfflineRL-Kit: `np.abs(next_obs[:,1:] < 100)` takes abs of the *boolean*,
  /// so only next_obs[:, 1:] < 100 is checked (one-sided). Use only to reproduce their numbers.
  kOriginalOneSided,
};

namespace detail {
inline void check_next_obs(const torch::Tensor& next_obs, int64_t min_dim, const char* task) {
  if (!next_obs.defined() || next_obs.dim() != 2 || next_obs.size(1) < min_dim ||
      !next_obs.is_floating_point()) {
    throw ShapeError(std::string(task) + " termination: next_obs must be a floating [B, >=" +
                     std::to_string(min_dim) + "] tensor, got " + mopo::detail::describe(next_obs));
  }
}
}  // namespace detail

/// Hopper (obs 11): done = not (all finite and |next_obs[:,1:]| < 100 and height > 0.7 and |angle| < 0.2),
/// height = slot 0, angle = slot 1.
/// Fix: the original `np.abs(next_obs[:,1:] < 100)` applied abs to the comparison result, making the
/// check one-sided; the default here is the intended two-sided check (as mbrl-lib#113 fixed it).
inline torch::Tensor hopper_termination(const torch::Tensor& next_obs,
                                        HopperTermination mode = HopperTermination::kCorrected) {
  detail::check_next_obs(next_obs, 2, "hopper");
  const auto height = next_obs.select(1, 0);
  const auto angle = next_obs.select(1, 1);
  const auto rest = next_obs.slice(1, 1);
  const auto bounded =
      mode == HopperTermination::kCorrected ? (rest.abs() < 100.0).all(1) : (rest < 100.0).all(1);
  const auto healthy = torch::isfinite(next_obs).all(1) & bounded & (height > 0.7) & (angle.abs() < 0.2);
  return healthy.logical_not();
}

/// Walker2d (obs 17): done = not (0.8 < height < 2.0 and −1 < angle < 1); no finiteness check (as the
/// env). A NaN height or angle fails the comparisons and so terminates.
inline torch::Tensor walker2d_termination(const torch::Tensor& next_obs) {
  detail::check_next_obs(next_obs, 2, "walker2d");
  const auto height = next_obs.select(1, 0);
  const auto angle = next_obs.select(1, 1);
  const auto healthy = (height > 0.8) & (height < 2.0) & (angle > -1.0) & (angle < 1.0);
  return healthy.logical_not();
}

/// Ant (obs 27 or 111): done = not (all finite and 0.2 ≤ z ≤ 1.0), z = slot 0, bounds inclusive.
inline torch::Tensor ant_termination(const torch::Tensor& next_obs) {
  detail::check_next_obs(next_obs, 1, "ant");
  const auto z = next_obs.select(1, 0);
  const auto healthy = torch::isfinite(next_obs).all(1) & (z >= 0.2) & (z <= 1.0);
  return healthy.logical_not();
}

/// HalfCheetah, halfcheetah-jump, HIV: never terminate (episodes only time out).
inline torch::Tensor no_termination(const torch::Tensor& next_obs) {
  detail::check_next_obs(next_obs, 0, "no");
  return torch::zeros({next_obs.size(0)},
                      torch::TensorOptions().dtype(torch::kBool).device(next_obs.device()));
}

/// The termination function of a task or dataset name ("hopper", "hopper-medium-v2", "ant-angle-45",
/// …). Throws mopo::ValueError for unknown names.
inline TerminationFn termination_fn(const std::string& name,
                                    HopperTermination hopper_mode = HopperTermination::kCorrected) {
  const std::string base = base_task(name);
  if (base == "hopper") {
    return [hopper_mode](const torch::Tensor&, const torch::Tensor&, const torch::Tensor& next_obs) {
      return hopper_termination(next_obs, hopper_mode);
    };
  }
  if (base == "walker2d") {
    return [](const torch::Tensor&, const torch::Tensor&, const torch::Tensor& next_obs) {
      return walker2d_termination(next_obs);
    };
  }
  if (base == "ant" || base == "ant-angle") {
    return [](const torch::Tensor&, const torch::Tensor&, const torch::Tensor& next_obs) {
      return ant_termination(next_obs);
    };
  }
  return [](const torch::Tensor&, const torch::Tensor&, const torch::Tensor& next_obs) {
    return no_termination(next_obs);
  };
}

}  // namespace mopo::env
