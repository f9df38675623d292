/// @file mean_std.hpp
/// @brief penalty::MeanStd — the averaging counterpart of MaxStd (the paper's "avg. var." ablation).
#pragma once

#include <string_view>

#include "mopo/penalty/penalty_policy.hpp"

namespace mopo::penalty {

/// u(s,a) = (1/E) Σ_i ‖σ_i(s,a)‖₂ over all members and all output dimensions, raw units.
/// The released code has no such mode; it is mopo's reading of the paper's "avg. var." ablation.
struct MeanStd {
  static constexpr std::string_view kName = "mean_std";
  [[nodiscard]] torch::Tensor operator()(const EnsemblePrediction& pred) const {
    detail::check_prediction(pred, "MeanStd");
    return pred.std.norm(2, {2}).mean(0);
  }
};

}  // namespace mopo::penalty
