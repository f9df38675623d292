// Tests of the network part of the dynamics ensemble (models/ensemble_linear.hpp, ensemble_network.hpp):
// EnsembleLinear against separate Linear layers, its initialisation, and spectral normalisation.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/models/ensemble_linear.hpp"
#include "mopo/models/gaussian_ensemble.hpp"
#include "support/synthetic_dynamics.hpp"

using mopo::models::EnsembleTrainOptions;
using mopo::models::GaussianEnsemble;
using namespace mopo::testing;  // kObs, kAct, make_data, small_ensemble_options, …

TEST_CASE("EnsembleLinear equals N separate torch::nn::Linear layers", "[unit][models]") {
  mopo::seed_global(1);
  mopo::models::EnsembleLinear layer(mopo::models::EnsembleLinearOptions(4, 5, 3).weight_decay(0.5));
  {
    torch::NoGradGuard g;
    layer->bias.copy_(torch::randn({4, 1, 3}));
  }
  const auto x = torch::randn({4, 10, 5});
  const auto y = layer(x);
  REQUIRE(y.sizes() == torch::IntArrayRef({4, 10, 3}));
  double decay = 0.0;
  for (int64_t i = 0; i < 4; ++i) {
    torch::nn::Linear lin(5, 3);
    torch::NoGradGuard g;
    lin->weight.copy_(layer->weight[i].t());
    lin->bias.copy_(layer->bias[i][0]);
    CHECK(torch::allclose(lin(x[i]), y[i], 1e-5, 1e-6));
    decay += 0.5 * 0.5 * lin->weight.pow(2).sum().item<double>();
  }
  CHECK(layer->decay_loss().item<double>() == Approx(decay).epsilon(1e-5));
  // Initialisation: truncated normal, std 1/(2·sqrt(in)), cut at 2 std; biases start at zero.
  mopo::models::EnsembleLinear big(mopo::models::EnsembleLinearOptions(7, 100, 200));
  const double s = 1.0 / (2.0 * std::sqrt(100.0));
  CHECK(big->weight.abs().max().item<double>() <= 2 * s + 1e-7);
  // Variance of N(0, s²) truncated at ±2s is s²·0.7737.
  CHECK(big->weight.std().item<double>() == Approx(s * std::sqrt(0.7737)).epsilon(0.02));
  CHECK(big->bias.abs().max().item<double>() == 0.0);
  CHECK_THROWS_AS(layer(torch::randn({3, 10, 5})), mopo::ShapeError);
  CHECK_THROWS_AS(layer(torch::randn({4, 10, 6})), mopo::ShapeError);
}

TEST_CASE("Spectral normalisation: largest singular value of each normalised layer is ~1 after warm-up",
          "[unit][models]") {
  mopo::seed_global(41);
  const auto data = make_data(2000, 42);
  auto options = small_ensemble_options();
  options.spectral_norm = true;
  GaussianEnsemble model(kObs, kAct, options);
  EnsembleTrainOptions train;
  train.max_epochs = 20;
  model.fit(data.obs, data.act, data.next_obs, data.rew, train);
  auto net = model.network();
  std::vector<mopo::models::EnsembleLinear> normalised = net->hidden;
  normalised.push_back(net->mean_head);
  net->eval();
  for (auto& layer : normalised) {
    REQUIRE(layer->options.spectral_norm());
    // Training ran one power iteration per step while the weights moved; warm up on the final weights
    // (the estimate converges at rate (σ₂/σ₁)², slow when the top singular values are close).
    for (int k = 0; k < 500; ++k) layer->power_iteration();
    const auto w = layer->effective_weight().detach();
    const auto sv = torch::linalg::svdvals(w, c10::nullopt);  // [E, min(in, out)]
    const auto top = std::get<0>(sv.max(1));
    INFO("top singular values " << top);
    CHECK(torch::allclose(top, torch::ones_like(top), 0.0, 0.03));
  }
  CHECK_FALSE(net->logvar_head->options.spectral_norm());
  // Prediction works and matches the module path with the normalised weights.
  const auto fast = model.predict(data.obs, data.act);
  const auto ref = model.predict_reference(data.obs, data.act);
  CHECK(torch::allclose(fast.mean, ref.mean, 1e-5, 1e-5));
}
