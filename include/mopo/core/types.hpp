/// @file types.hpp
/// @brief Plain data types shared by the agents, buffers, datasets and trainers.
///
/// Shape conventions (B = batch rows, O = observation dim, A = action dim), all float32 on one device:
/// | field               | shape  | meaning                                                        |
/// |---------------------|--------|----------------------------------------------------------------|
/// | `observations`      | [B, O] | s                                                              |
/// | `actions`           | [B, A] | a, in the agent's normalised range [-1, 1]                     |
/// | `rewards`           | [B]    | r(s, a)                                                        |
/// | `next_observations` | [B, O] | s'                                                             |
/// | `terminals`         | [B]    | 1 if s' is a terminal state of the MDP (no bootstrap), else 0 |
///
/// A time-limit truncation is **not** a terminal: its row has `terminals = 0` and the TD target
/// bootstraps from s' (Pardo et al. 2018, "Time Limits in Reinforcement Learning").
#pragma once

#include <torch/torch.h>

#include <string>

#include "mopo/core/error.hpp"
#include "mopo/detail/checks.hpp"

namespace mopo {

/// A batch of transitions (s, a, r, s', d); see the table above for shapes.
struct Batch {
  torch::Tensor observations;
  torch::Tensor actions;
  torch::Tensor rewards;
  torch::Tensor next_observations;
  torch::Tensor terminals;

  /// Number of rows B (0 for an empty/undefined batch).
  [[nodiscard]] int64_t size() const { return observations.defined() ? observations.size(0) : 0; }

  /// A copy of every field moved to `options` (device and/or dtype).
  [[nodiscard]] Batch to(const torch::TensorOptions& options) const {
    return {observations.to(options), actions.to(options), rewards.to(options), next_observations.to(options),
            terminals.to(options)};
  }

  /// Checks the shapes against (obs_dim, act_dim) and that every field is finite.
  /// @param what names the batch in error messages (e.g. "SACAgent::update batch").
  /// @throws ShapeError / ValueError naming the field and its shape.
  void validate(int64_t obs_dim, int64_t act_dim, const std::string& what) const {
    detail::check_shape(observations, {-1, obs_dim}, what + ".observations");
    const int64_t b = observations.size(0);
    detail::check_shape(actions, {b, act_dim}, what + ".actions");
    detail::check_shape(rewards, {b}, what + ".rewards");
    detail::check_shape(next_observations, {b, obs_dim}, what + ".next_observations");
    detail::check_shape(terminals, {b}, what + ".terminals");
    detail::check_finite(observations, what + ".observations");
    detail::check_finite(actions, what + ".actions");
    detail::check_finite(rewards, what + ".rewards");
    detail::check_finite(next_observations, what + ".next_observations");
    detail::check_finite(terminals, what + ".terminals");
  }
};

/// Row-wise concatenation of two batches with the same layout (e.g. real + model data in MOPO).
inline Batch concat(const Batch& a, const Batch& b) {
  if (a.size() == 0) return b;
  if (b.size() == 0) return a;
  return {torch::cat({a.observations, b.observations}), torch::cat({a.actions, b.actions}),
          torch::cat({a.rewards, b.rewards}), torch::cat({a.next_observations, b.next_observations}),
          torch::cat({a.terminals, b.terminals})};
}

}  // namespace mopo
