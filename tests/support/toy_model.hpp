// A tiny deterministic "ensemble" for testing rollout logic (test double, tests only):
// member i predicts next_obs = obs + sum(act) · 0.1 · (1 + i·spread), reward = obs[:, 0], with a
// constant per-member std, so penalties and trajectories can be computed by hand.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "mopo/models/ensemble_prediction.hpp"

namespace mopo::testing {

struct ToyModel {
  int64_t members = 3;
  double spread = 0.0;
  std::vector<double> stds = {0.1, 0.2, 0.3};
  std::vector<int64_t> elite_ids = {0, 1};

  [[nodiscard]] std::vector<int64_t> elites() const { return elite_ids; }

  [[nodiscard]] models::EnsemblePrediction predict(const torch::Tensor& obs, const torch::Tensor& act) const {
    const int64_t b = obs.size(0), o = obs.size(1);
    std::vector<torch::Tensor> means, sds;
    for (int64_t i = 0; i < members; ++i) {
      const auto next = obs + act.sum(1, true) * 0.1 * (1.0 + static_cast<double>(i) * spread);
      means.push_back(torch::cat({next, obs.narrow(1, 0, 1)}, 1));
      sds.push_back(torch::full({b, o + 1}, stds[static_cast<std::size_t>(i)], obs.options()));
    }
    return {torch::stack(means), torch::stack(sds)};
  }
};

}  // namespace mopo::testing
