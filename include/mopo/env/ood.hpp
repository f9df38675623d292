/// @file ood.hpp
/// @brief MOPO's out-of-distribution tasks (paper §5.2, Table 2): rewards and simulator-free relabelling.
///
/// halfcheetah-jump (environments.md §13):
///   behaviour reward (data)  r_b = min(v_x, 3) − 0.1·‖a‖²  — the paper prints max{v_x, 3}; the intent
///                            is a forward velocity *capped* at 3, so min is implemented;
///   test reward (relabelled) r   = r_b + 15·(z − z_init), z − z_init = qpos[1] = observation slot 0 of the
///                            post-step state: z_init is the *nominal* torso height (qpos0), not the
///                            per-episode height after reset noise, so the relabelling needs no episode
///                            information.
/// ant-angle with angle θ (30° by default; 45/60/90 for Table 4):
///   r = v_x·cos θ + v_y·sin θ − 0.5·‖a‖² − contact cost + 1.
///   v_x, v_y are the torso's world-frame linear velocity after the step, qvel[0:2] = observation slots
///   13 and 14 (not the finite difference of the torso xpos that Ant's own forward reward uses), so a
///   stored dataset is relabelled exactly from (obs, action, next_obs). The survive bonus and contact
///   cost of Ant-v2 are kept (the paper lists only "control cost"; open point in environments.md §13).
/// Actions are used as stored (D4RL data holds the clipped actions).
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <string>

#include "mopo/core/error.hpp"
#include "mopo/detail/checks.hpp"

namespace mopo::env {

inline constexpr double kJumpVelocityCap = 3.0;    ///< halfcheetah-jump: v_x capped at 3
inline constexpr double kJumpHeightWeight = 15.0;  ///< halfcheetah-jump: 15·(z − z_init)
inline constexpr double kJumpCtrlCost = 0.1;       ///< HalfCheetah control-cost weight
inline constexpr double kAntAngleDefaultDegrees = 30.0;
inline constexpr double kAntAngleCtrlCost = 0.5;
inline constexpr double kAntAngleContactCost = 0.5 * 1e-3;
inline constexpr double kAntAngleHealthyReward = 1.0;
inline constexpr double kPi = 3.14159265358979323846;

namespace detail {
inline void check_rows(const torch::Tensor& t, int64_t rows, int64_t min_cols, const std::string& what) {
  if (!t.defined() || !t.is_floating_point() || t.dim() != 2 || t.size(0) != rows || t.size(1) < min_cols) {
    throw ShapeError(what + ": expected a floating [" + std::to_string(rows) +
                     ", >=" + std::to_string(min_cols) + "] tensor, got " + mopo::detail::describe(t));
  }
}
}  // namespace detail

/// halfcheetah-jump test reward from stored behaviour rewards: r_b + 15·next_obs[:, 0]. [B] float.
inline torch::Tensor halfcheetah_jump_relabel(const torch::Tensor& next_obs,
                                              const torch::Tensor& behaviour_rewards) {
  if (!next_obs.defined() || next_obs.dim() != 2) {
    throw ShapeError("halfcheetah_jump_relabel: next_obs must be [B, 17], got " +
                     mopo::detail::describe(next_obs));
  }
  detail::check_rows(next_obs, next_obs.size(0), 1, "halfcheetah_jump_relabel: next_obs");
  const auto r = behaviour_rewards.reshape({-1});
  if (!r.is_floating_point() || r.size(0) != next_obs.size(0)) {
    throw ShapeError("halfcheetah_jump_relabel: behaviour_rewards must be [" +
                     std::to_string(next_obs.size(0)) + "], got " +
                     mopo::detail::describe(behaviour_rewards));
  }
  return r + kJumpHeightWeight * next_obs.select(1, 0).to(r.scalar_type());
}

/// Behaviour reward of halfcheetah-jump from standard HalfCheetah rewards (r = v_x − 0.1·‖a‖²):
/// v_x = r + 0.1·‖a‖², r_b = min(v_x, 3) − 0.1·‖a‖². Lets a D4RL halfcheetah dataset serve as jump data.
inline torch::Tensor halfcheetah_jump_behaviour_from_standard(const torch::Tensor& rewards,
                                                              const torch::Tensor& actions) {
  const auto r = rewards.reshape({-1});
  detail::check_rows(actions, r.size(0), 1, "halfcheetah_jump_behaviour_from_standard: actions");
  if (!r.is_floating_point()) {
    throw ShapeError("halfcheetah_jump_behaviour_from_standard: rewards must be floating, got " +
                     mopo::detail::describe(rewards));
  }
  const auto ctrl = kJumpCtrlCost * actions.to(r.scalar_type()).pow(2).sum(1);
  return torch::clamp_max(r + ctrl, kJumpVelocityCap) - ctrl;
}

/// ant-angle reward of each transition, from (obs, action, next_obs) alone. next_obs is [B, 27] or
/// [B, 111] (slots 27–110 = clipped contact forces, all zero in D4RL data). Returns [B].
inline torch::Tensor ant_angle_relabel(const torch::Tensor& obs, const torch::Tensor& actions,
                                       const torch::Tensor& next_obs,
                                       double degrees = kAntAngleDefaultDegrees) {
  if (!next_obs.defined() || next_obs.dim() != 2 || (next_obs.size(1) != 27 && next_obs.size(1) != 111)) {
    throw ShapeError("ant_angle_relabel: next_obs must be [B, 27] or [B, 111], got " +
                     mopo::detail::describe(next_obs));
  }
  const int64_t b = next_obs.size(0);
  detail::check_rows(obs, b, next_obs.size(1), "ant_angle_relabel: obs");
  detail::check_rows(actions, b, 8, "ant_angle_relabel: actions");
  if (!std::isfinite(degrees)) throw ValueError("ant_angle_relabel: angle is not finite");
  const double theta = degrees * kPi / 180.0;
  const auto nx = next_obs.to(torch::kFloat64);
  auto r = nx.select(1, 13) * std::cos(theta) + nx.select(1, 14) * std::sin(theta) -
           kAntAngleCtrlCost * actions.to(torch::kFloat64).pow(2).sum(1) + kAntAngleHealthyReward;
  if (nx.size(1) == 111) r = r - kAntAngleContactCost * nx.slice(1, 27).pow(2).sum(1);
  return r.to(next_obs.scalar_type());
}

}  // namespace mopo::env
