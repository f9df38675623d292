/// @file disagreement.hpp
/// @brief penalty::Disagreement — the spread of the member means (epistemic), not a learned std.
#pragma once

#include <string_view>

#include "mopo/penalty/penalty_policy.hpp"

namespace mopo::penalty {

/// u(s,a) = max_i ‖μ_i^obs(s,a) − (1/E) Σ_j μ_j^obs(s,a)‖₂ over the **observation** dimensions only
/// (reward excluded), unnormalised — the original code's `penalty_learned_var: False` branch
/// (`normalize_diffs = False`), OfflineRL-Kit's "pairwise-diff".
struct Disagreement {
  static constexpr std::string_view kName = "disagreement";
  [[nodiscard]] torch::Tensor operator()(const EnsemblePrediction& pred) const {
    detail::check_prediction(pred, "Disagreement");
    const auto obs = pred.next_obs_mean();  // [E, B, O]
    return std::get<0>((obs - obs.mean(0, /*keepdim=*/true)).norm(2, {2}).max(0));
  }
};

}  // namespace mopo::penalty
