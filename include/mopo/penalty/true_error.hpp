/// @file true_error.hpp
/// @brief penalty::TrueError — the oracle model error (the MOPO paper's "true pen." ablation).
///
/// Named TrueError, not True: X11 defines `True` as a macro.
#pragma once

#include <string>
#include <string_view>

#include "mopo/penalty/penalty_policy.hpp"

namespace mopo::penalty {

/// u(s,a) = ‖[ŝ', r̂] − [s', r]‖₂: the distance between the model transition the rollout keeps
/// (`used`: the sampled elite's next observation and reward) and the simulator's true outcome for the
/// same (s, a) (`truth`, e.g. from the MuJoCo task's batched true_step()). The paper does not say which
/// prediction it compares nor whether the reward is included; mopo compares the transition actually
/// stored in the buffer (its error is what the policy is trained on) and includes the reward unless
/// `include_reward` is false. Needs the simulator, so rollouts must be able to restore the simulator
/// from an observation (translation-invariant tasks; see docs/environments.md).
struct TrueError {
  static constexpr std::string_view kName = "true_error";
  static constexpr bool kNeedsGroundTruth = true;
  bool include_reward = true;

  [[nodiscard]] torch::Tensor operator()(const EnsemblePrediction& pred, const EnsembleSample& used,
                                         const GroundTruth& truth) const {
    detail::check_prediction(pred, "TrueError");
    const auto b = pred.mean.size(1);
    const auto o = pred.mean.size(2) - 1;
    mopo::detail::check_shape(used.next_obs, {b, o}, "TrueError model next_obs");
    mopo::detail::check_shape(truth.next_obs, {b, o}, "TrueError true next_obs");
    auto sq = (used.next_obs - truth.next_obs.to(used.next_obs.options())).square().sum(1);
    if (include_reward) {
      mopo::detail::check_shape(truth.reward, {b}, "TrueError true reward");
      sq = sq + (used.reward - truth.reward.to(used.reward.options())).square();
    }
    return sq.sqrt();
  }
};

}  // namespace mopo::penalty
