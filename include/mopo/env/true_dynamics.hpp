/// @file true_dynamics.hpp
/// @brief The simulator oracle: the true next observation and reward for a batch of (observation, action).
///
/// This is what the `TrueError` penalty (the MOPO paper's "true pen." ablation) compares model
/// predictions against. Every MuJoCo task and the HIV model implement it; no MuJoCo dependency here.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace mopo::env {

/// Result of a batched true-dynamics query. All tensors are CPU, row i answers input row i.
struct TrueStep {
  torch::Tensor next_observations;  ///< [B, obs_dim] float32
  torch::Tensor rewards;            ///< [B] float32
  torch::Tensor terminals;          ///< [B] bool: the task's termination rule on the next state
};

/// Implemented by environments that can restore their full state from an observation.
class TrueDynamics {
 public:
  virtual ~TrueDynamics() = default;
  /// For each row: restore the simulator from `observations[i]`, apply `actions[i]` for one env step,
  /// and report the next observation, reward and terminal flag. `observations` is [B, obs_dim],
  /// `actions` is [B, act_dim], any floating dtype. Throws mopo::ShapeError / mopo::ValueError on wrong
  /// shapes or non-finite values. Does not change the state of the environment's own episode.
  virtual TrueStep true_step(const torch::Tensor& observations, const torch::Tensor& actions) = 0;
};

}  // namespace mopo::env
