/// @file max_std.hpp
/// @brief penalty::MaxStd (MOPO's default) and penalty::MaxCovNorm (the paper's written form).
#pragma once

#include <string_view>

#include "mopo/penalty/penalty_policy.hpp"

namespace mopo::penalty {

/// u(s,a) = max_i ‖σ_i(s,a)‖₂ over **all** members, over every output dimension (Δobs and reward), in
/// raw units. This is the released code's form (original `penalty_learned_var: True`:
/// `np.amax(np.linalg.norm(ensemble_model_stds, axis=2), axis=0)`); the tuned λ values of Table 6 belong
/// to it. The paper writes max_i ‖Σ_i‖_F instead: see MaxCovNorm.
struct MaxStd {
  static constexpr std::string_view kName = "max_std";
  [[nodiscard]] torch::Tensor operator()(const EnsemblePrediction& pred) const {
    detail::check_prediction(pred, "MaxStd");
    return std::get<0>(pred.std.norm(2, {2}).max(0));
  }
};

/// u(s,a) = max_i ‖Σ_i(s,a)‖_F = max_i ‖σ_i²‖₂ (diagonal Σ_i): the penalty as the MOPO paper writes it
/// (Sec. 4.3). Never used by the released code, so Table 6's λ values do not transfer to it.
struct MaxCovNorm {
  static constexpr std::string_view kName = "max_cov_norm";
  [[nodiscard]] torch::Tensor operator()(const EnsemblePrediction& pred) const {
    detail::check_prediction(pred, "MaxCovNorm");
    return std::get<0>(pred.std.square().norm(2, {2}).max(0));
  }
};

}  // namespace mopo::penalty
