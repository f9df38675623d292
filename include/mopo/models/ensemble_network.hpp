/// @file ensemble_network.hpp
/// @brief The network part of MOPO's dynamics ensemble: GaussianEnsembleNet (E Gaussian MLPs as one LibTorch
/// module: swish hidden layers, a mean head and a log-variance head) and the soft clamp of the log-variance.
///
/// The module works on normalised inputs and has no normaliser, elites or training loop: those are
/// GaussianEnsemble's (gaussian_ensemble.hpp). Architecture and initialisation: docs/ensemble.md#model.
///
/// Example:
/// @code
/// mopo::models::GaussianEnsembleNet net(23, 18, mopo::models::EnsembleOptions{});
/// auto [mean, logvar] = net->forward(x);  // x [7, B, 23] (normalised) -> each [7, B, 18]
/// @endcode
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mopo/models/ensemble_linear.hpp"
#include "mopo/models/ensemble_options.hpp"

namespace mopo::models {

namespace detail {
/// MOPO's soft clamp of the raw log-variance head output ℓ (bnn.py; mopo-algorithm.md §3.2):
/// logvar = max − softplus(max − ℓ); logvar = min + softplus(logvar − min).
inline torch::Tensor soft_clamp_logvar(const torch::Tensor& raw, const torch::Tensor& max_logvar,
                                       const torch::Tensor& min_logvar) {
  auto lv = max_logvar - torch::softplus(max_logvar - raw);
  return min_logvar + torch::softplus(lv - min_logvar);
}

/// The same, in place on `lv` (inference path; no autograd).
inline void soft_clamp_logvar_(torch::Tensor& lv, const torch::Tensor& max_logvar,
                               const torch::Tensor& min_logvar) {
  lv.neg_().add_(max_logvar);  // max − ℓ
  at::softplus_out(lv, lv);
  lv.neg_().add_(max_logvar);  // max − softplus(max − ℓ)
  lv.sub_(min_logvar);
  at::softplus_out(lv, lv);
  lv.add_(min_logvar);
}
}  // namespace detail

/// The trainable network: E members of in → hidden… (swish) → {mean head, log-variance head}, both heads
/// reading the last hidden layer (the original's `separate_mean_var: True`). Inputs are already
/// normalised; outputs are targets [Δobs, reward] in raw units.
class GaussianEnsembleNetImpl : public torch::nn::Module {
 public:
  GaussianEnsembleNetImpl(int64_t input_dim, int64_t output_dim, const EnsembleOptions& options)
      : input_dim_(input_dim), output_dim_(output_dim), ensemble_size_(options.ensemble_size) {
    options.validate();
    int64_t in = input_dim;
    for (std::size_t i = 0; i < options.hidden.size(); ++i) {
      hidden.push_back(
          register_module("hidden" + std::to_string(i),
                          EnsembleLinear(EnsembleLinearOptions(options.ensemble_size, in, options.hidden[i])
                                             .weight_decay(options.weight_decay[i])
                                             .spectral_norm(options.spectral_norm))));
      in = options.hidden[i];
    }
    const double head_decay = options.weight_decay.back();
    mean_head = register_module("mean_head",
                                EnsembleLinear(EnsembleLinearOptions(options.ensemble_size, in, output_dim)
                                                   .weight_decay(head_decay)
                                                   .spectral_norm(options.spectral_norm)));
    // The variance head is never spectrally normalised (mopo-algorithm.md §4).
    logvar_head = register_module(
        "logvar_head",
        EnsembleLinear(
            EnsembleLinearOptions(options.ensemble_size, in, output_dim).weight_decay(head_decay)));
    // Learnable bounds shared by all members, initialised to +0.5 / −10 (bnn.py finalize).
    max_logvar = register_parameter("max_logvar", torch::full({output_dim}, options.init_max_logvar));
    min_logvar = register_parameter("min_logvar", torch::full({output_dim}, options.init_min_logvar));
  }

  /// x [E, B, input_dim] (normalised) → {mean, logvar}, each [E, B, output_dim].
  std::pair<torch::Tensor, torch::Tensor> forward(torch::Tensor x) {
    for (auto& layer : hidden) x = torch::silu(layer->forward(x));  // swish = x·sigmoid(x) (fc.py)
    auto mean = mean_head->forward(x);
    auto logvar = detail::soft_clamp_logvar(logvar_head->forward(x), max_logvar, min_logvar);
    return {mean, logvar};
  }

  /// Σ_l wd_l·½‖W_l‖² over all layers (mopo-algorithm.md §3.1).
  torch::Tensor decay_loss() {
    auto total = mean_head->decay_loss() + logvar_head->decay_loss();
    for (auto& layer : hidden) total = total + layer->decay_loss();
    return total;
  }

  /// Every layer, hidden first, then mean head, then log-variance head.
  std::vector<EnsembleLinear> layers() const {
    auto all = hidden;
    all.push_back(mean_head);
    all.push_back(logvar_head);
    return all;
  }

  [[nodiscard]] int64_t input_dim() const { return input_dim_; }
  [[nodiscard]] int64_t output_dim() const { return output_dim_; }
  [[nodiscard]] int64_t ensemble_size() const { return ensemble_size_; }

  std::vector<EnsembleLinear> hidden;
  EnsembleLinear mean_head{nullptr};
  EnsembleLinear logvar_head{nullptr};
  torch::Tensor max_logvar;  ///< [D]
  torch::Tensor min_logvar;  ///< [D]

 private:
  int64_t input_dim_;
  int64_t output_dim_;
  int64_t ensemble_size_;
};
TORCH_MODULE(GaussianEnsembleNet);

}  // namespace mopo::models
