// Synthetic heteroscedastic dynamics and a small ensemble configuration shared by the dynamics-ensemble
// tests (tests/unit/models/test_ensemble_*.cpp).
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "mopo/core/random.hpp"
#include "mopo/models/ensemble_options.hpp"

namespace mopo::testing {

inline constexpr int64_t kObs = 3;
inline constexpr int64_t kAct = 2;

/// Synthetic heteroscedastic dynamics: s' = s + A s + B a + σ(s)·ε, r = s₁ − ½a₀ + σ(s)·ε_r with
/// σ(s) = 0.05·(1 + |s₀|), s, a ~ U(−1, 1) in-distribution.
struct Synthetic {
  torch::Tensor obs, act, next_obs, rew;
};

inline torch::Tensor true_sigma(const torch::Tensor& obs) { return 0.05 * (1.0 + obs.select(1, 0).abs()); }

inline torch::Tensor mean_delta(const torch::Tensor& obs, const torch::Tensor& act) {
  const auto a_mat = torch::tensor({{0.1, -0.2, 0.0}, {0.3, 0.1, -0.1}, {0.0, 0.2, 0.2}});
  const auto b_mat = torch::tensor({{0.5, 0.0}, {-0.3, 0.2}, {0.1, 0.4}});
  return torch::matmul(obs, a_mat.t()) + torch::matmul(act, b_mat.t());
}

inline Synthetic make_data(int64_t n, uint64_t seed, double scale = 1.0) {
  mopo::RandomState rng(seed);
  auto& g = rng.generator();
  Synthetic d;
  d.obs = (torch::rand({n, kObs}, g) * 2 - 1) * scale;
  d.act = torch::rand({n, kAct}, g) * 2 - 1;
  const auto sigma = true_sigma(d.obs).unsqueeze(1);
  d.next_obs = d.obs + mean_delta(d.obs, d.act) + sigma * torch::randn({n, kObs}, g);
  d.rew = d.obs.select(1, 1) - 0.5 * d.act.select(1, 0) + sigma.squeeze(1) * torch::randn({n}, g);
  return d;
}

/// Two hidden layers of 64 (MOPO's 4 × 200 is slow to train in a unit test).
inline models::EnsembleOptions small_ensemble_options() {
  models::EnsembleOptions o;
  o.hidden = {64, 64};
  o.weight_decay = {2.5e-5, 5e-5, 1e-4};
  return o;
}

}  // namespace mopo::testing
