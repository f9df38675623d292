/// @file hard_threshold.hpp
/// @brief penalty::HardThreshold — MOReL-style halting on large disagreement (beyond the MOPO paper).
#pragma once

#include <string_view>

#include "mopo/penalty/disagreement.hpp"

namespace mopo::penalty {

/// MOReL (Kidambi et al. 2020) builds a pessimistic MDP: where the ensemble's disagreement exceeds a
/// threshold, the transition leads to an absorbing HALT state with reward −κ. Here u is
/// Disagreement's spread of the member means; rows with u > `threshold` become terminal with reward
/// `halt_value` (λ is not used); other rows keep the model reward unpenalised.
struct HardThreshold {
  static constexpr std::string_view kName = "hard_threshold";
  double threshold = 1.0;      ///< disagreement above which a transition halts
  double halt_value = -100.0;  ///< reward of a halted transition (−κ)

  [[nodiscard]] torch::Tensor operator()(const EnsemblePrediction& pred) const {
    return Disagreement{}(pred);
  }
  [[nodiscard]] torch::Tensor halts(const torch::Tensor& u) const { return u > threshold; }
  [[nodiscard]] double halt_reward() const { return halt_value; }
};

}  // namespace mopo::penalty
