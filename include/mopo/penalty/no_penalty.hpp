/// @file no_penalty.hpp
/// @brief penalty::NoPenalty — u ≡ 0: MBPO-style offline training (the paper's "no pen." ablation).
///
/// Named NoPenalty, not None: X11 defines `None` as a macro.
#pragma once

#include <string_view>

#include "mopo/penalty/penalty_policy.hpp"

namespace mopo::penalty {

struct NoPenalty {
  static constexpr std::string_view kName = "no_penalty";
  [[nodiscard]] torch::Tensor operator()(const EnsemblePrediction& pred) const {
    detail::check_prediction(pred, "NoPenalty");
    return torch::zeros({pred.mean.size(1)}, pred.mean.options());
  }
};

}  // namespace mopo::penalty
