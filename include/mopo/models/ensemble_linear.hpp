/// @file ensemble_linear.hpp
/// @brief N independent linear layers held as one [N, in, out] weight and evaluated with one batched
/// matmul (`baddbmm`): y_i = x_i · W_i + b_i for every member i.
///
/// Initialisation follows the MOPO reference ensemble (`mopo/models/fc.py`; OfflineRL-Kit
/// `ensemble_linear.py`): weights ~ truncated normal with std 1/(2·√in) cut at ±2 std, biases 0.
/// Weight decay is the coupled L2 term wd·½·ΣW² on weights only (no biases), added to the loss.
///
/// Optional spectral normalisation (Miyato et al. 2018): W_i is divided by an estimate of its largest
/// singular value σ_i obtained with one power iteration per training-mode forward and a persistent
/// vector u_i per member. Unlike MOPO's first release (one σ for the stacked [N·in, out] matrix), mopo
/// normalises every member on its own; see docs/ensemble.md.
///
/// Example:
/// @code
/// mopo::models::EnsembleLinear layer(mopo::models::EnsembleLinearOptions(7, 23, 200).weight_decay(2.5e-5));
/// auto y = layer(x);  // x [7, B, 23] -> y [7, B, 200]
/// @endcode
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "mopo/core/error.hpp"
#include "mopo/detail/checks.hpp"

namespace mopo::models {

/// Options of EnsembleLinear.
struct EnsembleLinearOptions {
  EnsembleLinearOptions(int64_t ensemble_size, int64_t in_features, int64_t out_features)
      : ensemble_size_(ensemble_size), in_features_(in_features), out_features_(out_features) {}
  /// Number of independent members N.
  TORCH_ARG(int64_t, ensemble_size);
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);
  /// Coefficient of the L2 term wd·½·ΣW² returned by decay_loss() (weights only).
  TORCH_ARG(double, weight_decay) = 0.0;
  /// Divide each member's weight by its power-iteration estimate of the largest singular value.
  TORCH_ARG(bool, spectral_norm) = false;
};

namespace detail {
/// Fills `t` with a normal(0, std) truncated to ±2 std (TensorFlow's `truncated_normal`), by inverse-CDF
/// sampling from LibTorch's global generator (module initialisers use it; see core/random.hpp).
inline void truncated_normal_(torch::Tensor& t, double std) {
  torch::NoGradGuard no_grad;
  // Φ(±2) mapped to the erf domain: erf(±2/√2).
  const double lo = std::erf(-2.0 / std::sqrt(2.0));
  const double hi = std::erf(2.0 / std::sqrt(2.0));
  t.uniform_(lo, hi).erfinv_().mul_(std * std::sqrt(2.0)).clamp_(-2.0 * std, 2.0 * std);
}
}  // namespace detail

/// N linear layers evaluated as one batched matmul. Input [N, B, in] → output [N, B, out].
class EnsembleLinearImpl : public torch::nn::Cloneable<EnsembleLinearImpl> {
 public:
  EnsembleLinearImpl(int64_t ensemble_size, int64_t in_features, int64_t out_features)
      : EnsembleLinearImpl(EnsembleLinearOptions(ensemble_size, in_features, out_features)) {}
  explicit EnsembleLinearImpl(EnsembleLinearOptions options_in) : options(std::move(options_in)) { reset(); }

  /// (Re)creates the parameters: weight [N, in, out] truncated normal std 1/(2√in), bias [N, 1, out] = 0.
  void reset() override {
    const auto n = options.ensemble_size();
    const auto in = options.in_features();
    const auto out = options.out_features();
    if (n < 1 || in < 1 || out < 1) {
      throw ValueError("EnsembleLinear: ensemble_size, in_features and out_features must be >= 1, got " +
                       std::to_string(n) + ", " + std::to_string(in) + ", " + std::to_string(out));
    }
    if (!(options.weight_decay() >= 0.0)) {
      throw ValueError("EnsembleLinear: weight_decay must be >= 0, got " +
                       std::to_string(options.weight_decay()));
    }
    auto w = torch::empty({n, in, out});
    detail::truncated_normal_(w, 1.0 / (2.0 * std::sqrt(static_cast<double>(in))));
    weight = register_parameter("weight", w);
    bias = register_parameter("bias", torch::zeros({n, 1, out}));
    if (options.spectral_norm()) {
      torch::NoGradGuard no_grad;
      auto u0 = torch::nn::functional::normalize(torch::randn({n, out, 1}),
                                                 torch::nn::functional::NormalizeFuncOptions().dim(1));
      auto v0 = torch::nn::functional::normalize(torch::bmm(w, u0),
                                                 torch::nn::functional::NormalizeFuncOptions().dim(1));
      u = register_buffer("sn_u", u0);
      v = register_buffer("sn_v", v0);
    }
  }

  /// x [N, B, in] → x·W + b, [N, B, out].
  torch::Tensor forward(const torch::Tensor& x) {
    check_input(x);
    return torch::baddbmm(bias, x, effective_weight());
  }

  /// The weight actually applied: W, or W_i/σ_i with spectral normalisation. In training mode (and with
  /// grad mode on) each call advances the power iteration by one step (one step per optimiser step).
  torch::Tensor effective_weight() {
    if (!options.spectral_norm()) return weight;
    if (is_training() && torch::GradMode::is_enabled()) power_iteration();
    // σ_i = v_iᵀ W_i u_i with u, v held fixed (gradient flows through W only), as Miyato et al. 2018.
    const auto sigma = torch::bmm(v.transpose(1, 2), torch::bmm(weight, u));  // [N, 1, 1]
    return weight / sigma;
  }

  /// One power-iteration step on every member (updates the persistent u, v).
  void power_iteration() {
    if (!options.spectral_norm()) return;
    torch::NoGradGuard no_grad;
    namespace F = torch::nn::functional;
    const auto w = weight.detach();
    v.copy_(F::normalize(torch::bmm(w, u), F::NormalizeFuncOptions().dim(1).eps(1e-12)));
    u.copy_(F::normalize(torch::bmm(w.transpose(1, 2), v), F::NormalizeFuncOptions().dim(1).eps(1e-12)));
  }

  /// wd·½·ΣW² over the raw weights (biases excluded), as `tf.nn.l2_loss` in the reference code.
  torch::Tensor decay_loss() const { return weight.pow(2).sum() * (0.5 * options.weight_decay()); }

  void pretty_print(std::ostream& stream) const override {
    stream << "mopo::models::EnsembleLinear(ensemble_size=" << options.ensemble_size()
           << ", in_features=" << options.in_features() << ", out_features=" << options.out_features()
           << ", weight_decay=" << options.weight_decay()
           << ", spectral_norm=" << (options.spectral_norm() ? "true" : "false") << ")";
  }

  EnsembleLinearOptions options;
  torch::Tensor weight;  ///< [N, in, out]
  torch::Tensor bias;    ///< [N, 1, out]
  torch::Tensor u;       ///< [N, out, 1] power-iteration vector (spectral norm only)
  torch::Tensor v;       ///< [N, in, 1] (spectral norm only)

 private:
  void check_input(const torch::Tensor& x) const {
    if (!x.defined() || x.dim() != 3 || x.size(0) != options.ensemble_size() ||
        x.size(2) != options.in_features()) {
      throw ShapeError("EnsembleLinear input: expected shape [" + std::to_string(options.ensemble_size()) +
                       ", *, " + std::to_string(options.in_features()) + "], got " +
                       mopo::detail::describe(x));
    }
  }
};
TORCH_MODULE(EnsembleLinear);

}  // namespace mopo::models
