/// @file sac_networks.hpp
/// @brief The networks of Soft Actor-Critic: a tanh-squashed Gaussian actor and a twin Q critic.
///
/// Haarnoja et al. 2018, "Soft Actor-Critic Algorithms and Applications" (arXiv 1812.05905):
/// the actor is π(a|s) = tanh(u), u ~ N(μ(s), σ(s)²) (Appendix C, "Enforcing Action Bounds"), and the
/// critic is a pair of Q networks whose minimum forms the TD target (§5, clipped double-Q).
/// Both follow the reference layout of mopo-algorithm.md §8: (256, 256) ReLU hidden layers.
///
/// Initialisation draws from an explicit generator (U(−1/√fan_in, 1/√fan_in), LibTorch's nn::Linear
/// bound), so network construction never touches LibTorch's global RNG.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "mopo/core/error.hpp"

namespace mopo::agents {

namespace detail {
/// log(1 − tanh(u)²), computed stably as 2·(log 2 − u − softplus(−2u)) (change of variables for tanh).
inline torch::Tensor log1m_tanh_sq(const torch::Tensor& u) {
  return 2.0 * (std::log(2.0) - u - torch::softplus(-2.0 * u));
}

inline void check_layer_sizes(int64_t in, int64_t out, const std::vector<int64_t>& hidden, const char* what) {
  if (in <= 0 || out <= 0) {
    throw ValueError(std::string(what) + ": input and output sizes must be > 0, got " + std::to_string(in) +
                     " and " + std::to_string(out));
  }
  for (std::size_t i = 0; i < hidden.size(); ++i) {
    if (hidden[i] <= 0) {
      throw ValueError(std::string(what) + ": hidden[" + std::to_string(i) + "] must be > 0, got " +
                       std::to_string(hidden[i]));
    }
  }
}
}  // namespace detail

/// What SquashedGaussianActor::sample returns.
struct ActorSample {
  torch::Tensor action;    ///< tanh(u), in (−1, 1); [B, A]
  torch::Tensor log_prob;  ///< log π(a|s) with the tanh correction; [B]
  torch::Tensor mean;      ///< μ(s), pre-squash; [B, A]
  torch::Tensor log_std;   ///< clamped log σ(s); [B, A]
};

/// Tanh-squashed diagonal Gaussian policy: an MLP maps s to (μ, log σ); log σ is clamped to
/// [log_std_min, log_std_max] (softlearning uses (−20, 2), OfflineRL-Kit [−5, 2]).
class SquashedGaussianActorImpl : public torch::nn::Module {
 public:
  SquashedGaussianActorImpl(int64_t obs_dim, int64_t act_dim, std::vector<int64_t> hidden, double log_std_min,
                            double log_std_max, torch::Generator& init_generator)
      : obs_dim_(obs_dim), act_dim_(act_dim), log_std_min_(log_std_min), log_std_max_(log_std_max) {
    detail::check_layer_sizes(obs_dim, act_dim, hidden, "SquashedGaussianActor");
    if (!(log_std_min < log_std_max)) {
      throw ValueError("SquashedGaussianActor: log_std_min (" + std::to_string(log_std_min) +
                       ") must be < log_std_max (" + std::to_string(log_std_max) + ")");
    }
    int64_t in = obs_dim;
    hidden.push_back(2 * act_dim);  // last layer outputs [μ, log σ]
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < hidden.size(); ++i) {
      auto layer = register_module("l" + std::to_string(i), torch::nn::Linear(in, hidden[i]));
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      layer->weight.uniform_(-bound, bound, init_generator);
      layer->bias.uniform_(-bound, bound, init_generator);
      layers_.push_back(layer);
      in = hidden[i];
    }
  }

  /// (μ, clamped log σ), each [B, A], for observations [B, O].
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& obs) {
    torch::Tensor h = obs;
    for (std::size_t i = 0; i + 1 < layers_.size(); ++i) h = torch::relu(layers_[i]->forward(h));
    const torch::Tensor out = layers_.back()->forward(h);
    auto mean = out.narrow(-1, 0, act_dim_);
    auto log_std = out.narrow(-1, act_dim_, act_dim_).clamp(log_std_min_, log_std_max_);
    return {mean, log_std};
  }

  /// Reparameterised sample a = tanh(μ + σ·ε), ε ~ N(0, I) drawn from `generator`, with
  /// log π(a|s) = Σ_i [log N(u_i; μ_i, σ_i) − log(1 − tanh(u_i)²)] (SAC paper, eq. 21).
  ActorSample sample(const torch::Tensor& obs, torch::Generator& generator) {
    auto [mean, log_std] = forward(obs);
    const auto eps = at::normal(0.0, 1.0, mean.sizes(), generator, mean.options());
    const auto u = mean + log_std.exp() * eps;
    constexpr double kHalfLog2Pi = 0.91893853320467274178;  // ½·log(2π)
    const auto gauss = (-0.5 * eps.square() - log_std - kHalfLog2Pi).sum(-1);
    const auto log_prob = gauss - detail::log1m_tanh_sq(u).sum(-1);
    return {torch::tanh(u), log_prob, mean, log_std};
  }

  /// The deterministic (mode) action tanh(μ(s)).
  torch::Tensor mode(const torch::Tensor& obs) { return torch::tanh(forward(obs).first); }

  [[nodiscard]] int64_t obs_dim() const { return obs_dim_; }
  [[nodiscard]] int64_t act_dim() const { return act_dim_; }
  [[nodiscard]] const std::vector<torch::nn::Linear>& layers() const { return layers_; }

 private:
  int64_t obs_dim_;
  int64_t act_dim_;
  double log_std_min_;
  double log_std_max_;
  std::vector<torch::nn::Linear> layers_;
};
TORCH_MODULE(SquashedGaussianActor);

/// Two Q networks Q_1, Q_2(s, a) stored as one stack of batched layers ([2, in, out] weights, one
/// `baddbmm` per layer), which halves the number of autograd nodes compared to two separate MLPs.
class TwinQCriticImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kNumCritics = 2;

  TwinQCriticImpl(int64_t obs_dim, int64_t act_dim, std::vector<int64_t> hidden,
                  torch::Generator& init_generator)
      : obs_dim_(obs_dim), act_dim_(act_dim) {
    detail::check_layer_sizes(obs_dim, act_dim, hidden, "TwinQCritic");
    int64_t in = obs_dim + act_dim;
    hidden.push_back(1);
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < hidden.size(); ++i) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(in));
      auto w = torch::empty({kNumCritics, in, hidden[i]}).uniform_(-bound, bound, init_generator);
      auto b = torch::empty({kNumCritics, 1, hidden[i]}).uniform_(-bound, bound, init_generator);
      weights_.push_back(register_parameter("w" + std::to_string(i), w));
      biases_.push_back(register_parameter("b" + std::to_string(i), b));
      in = hidden[i];
    }
  }

  /// Q values [2, B] for observations [B, O] and actions [B, A].
  torch::Tensor forward(const torch::Tensor& obs, const torch::Tensor& act) {
    const auto x = torch::cat({obs, act}, -1);
    torch::Tensor h = x.unsqueeze(0).expand({kNumCritics, x.size(0), x.size(1)});
    for (std::size_t i = 0; i < weights_.size(); ++i) {
      h = torch::baddbmm(biases_[i], h, weights_[i]);
      if (i + 1 < weights_.size()) h = torch::relu(h);
    }
    return h.squeeze(-1);
  }

  [[nodiscard]] int64_t obs_dim() const { return obs_dim_; }
  [[nodiscard]] int64_t act_dim() const { return act_dim_; }
  /// Layer weights [2, in, out] and biases [2, 1, out] (the same tensors as parameters(), in order).
  [[nodiscard]] const std::vector<torch::Tensor>& weights() const { return weights_; }
  [[nodiscard]] const std::vector<torch::Tensor>& biases() const { return biases_; }

 private:
  int64_t obs_dim_;
  int64_t act_dim_;
  std::vector<torch::Tensor> weights_;
  std::vector<torch::Tensor> biases_;
};
TORCH_MODULE(TwinQCritic);

/// Polyak averaging θ' ← (1 − τ)·θ' + τ·θ over matching parameter lists (SAC paper, Algorithm 1).
/// @throws ShapeError if the lists differ in length or shape.
inline void soft_update(const std::vector<torch::Tensor>& target, const std::vector<torch::Tensor>& source,
                        double tau) {
  if (target.size() != source.size()) {
    throw ShapeError("soft_update: " + std::to_string(target.size()) + " target vs " +
                     std::to_string(source.size()) + " source parameters");
  }
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (!target[i].sizes().equals(source[i].sizes())) {
      throw ShapeError("soft_update: parameter " + std::to_string(i) + " shapes differ");
    }
    target[i].lerp_(source[i], tau);
  }
}

}  // namespace mopo::agents
