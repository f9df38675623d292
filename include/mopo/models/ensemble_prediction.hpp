/// @file ensemble_prediction.hpp
/// @brief What a dynamics ensemble predicts: per-member Gaussian mean and standard deviation of
/// [next_obs, reward] in raw units, and sampling one elite per row from it (MOPO's model step).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/detail/checks.hpp"

namespace mopo::models {

/// Per-member Gaussian prediction. Both tensors have shape [E, B, D], D = obs_dim + 1, columns
/// [next_obs (obs + Δobs), reward], raw (unnormalised) units. `std` is σ = exp(logvar / 2).
struct EnsemblePrediction {
  torch::Tensor mean;
  torch::Tensor std;

  [[nodiscard]] int64_t ensemble_size() const { return mean.size(0); }
  [[nodiscard]] int64_t batch_size() const { return mean.size(1); }
  [[nodiscard]] int64_t obs_dim() const { return mean.size(2) - 1; }
  /// Mean next observation per member, [E, B, O] (a view).
  [[nodiscard]] torch::Tensor next_obs_mean() const { return mean.narrow(2, 0, obs_dim()); }
  /// Mean reward per member, [E, B] (a view).
  [[nodiscard]] torch::Tensor reward_mean() const { return mean.select(2, obs_dim()); }
  /// log σ², [E, B, D].
  [[nodiscard]] torch::Tensor logvar() const { return 2.0 * torch::log(std); }
};

/// One sampled model transition per row.
struct EnsembleSample {
  torch::Tensor next_obs;  ///< [B, O]
  torch::Tensor reward;    ///< [B]
  torch::Tensor member;    ///< [B] int64: the ensemble member each row was drawn from
};

/// MOPO's model step (original `fake_env.py`): for each row draw one member uniformly from `elites`, then
/// draw y ~ N(mean_member, std_member²). With `deterministic`, returns the chosen member's mean.
/// @param elites member indices (non-empty, each in [0, E)).
/// @throws ShapeError / ValueError on malformed predictions or indices.
inline EnsembleSample sample_prediction(const EnsemblePrediction& prediction,
                                        const std::vector<int64_t>& elites, torch::Generator& generator,
                                        bool deterministic = false) {
  mopo::detail::check_shape(prediction.mean, {-1, -1, -1}, "sample_prediction mean");
  const auto e = prediction.mean.size(0);
  const auto b = prediction.mean.size(1);
  const auto d = prediction.mean.size(2);
  mopo::detail::check_shape(prediction.std, {e, b, d}, "sample_prediction std");
  if (d < 2) throw ShapeError("sample_prediction: expected D = obs_dim + 1 >= 2, got " + std::to_string(d));
  if (elites.empty()) throw ValueError("sample_prediction: empty elite list");
  for (auto i : elites) {
    if (i < 0 || i >= e) {
      throw ValueError("sample_prediction: elite index " + std::to_string(i) + " outside [0, " +
                       std::to_string(e) + ")");
    }
  }
  torch::NoGradGuard no_grad;
  const auto elite_t = torch::tensor(elites, torch::kLong).to(prediction.mean.device());
  const auto pick =
      torch::randint(static_cast<int64_t>(elites.size()), {b}, generator,
                     torch::TensorOptions().dtype(torch::kLong).device(prediction.mean.device()));
  const auto member = elite_t.index_select(0, pick);  // [B]
  const auto rows = torch::arange(b, member.options());
  auto y = prediction.mean.index({member, rows});  // [B, D]
  if (!deterministic) {
    const auto s = prediction.std.index({member, rows});
    y = y + s * torch::randn({b, d}, generator, y.options());
  }
  return {y.narrow(1, 0, d - 1).contiguous(), y.select(1, d - 1).contiguous(), member};
}

}  // namespace mopo::models
