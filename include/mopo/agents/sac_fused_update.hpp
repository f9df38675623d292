/// @file sac_fused_update.hpp
/// @brief SACAgent's update without autograd: the fixed-shape forward and backward passes of the actor and
/// the twin critics written directly on LibTorch GEMMs, a flat Adam per network, optionally on two threads.
///
/// Why: autograd, three torch::optim::Adam objects and ~400 small ops per update cost about as much as the
/// GEMMs themselves at batch 256 (issue 11; performance-notes.md §2: ~1 µs per op). Here every buffer is
/// preallocated, each layer is one `addmm_out` (the bias as the β-term) or `mm_out`, ReLU and its backward
/// are in-place ops, the squashed-Gaussian arithmetic is one loop, and the actor step back-propagates into
/// the critics' *action inputs* only (no critic weight gradients), as the FLOP count in bench_sac.cpp
/// assumes.
///
/// Semantics — which parameters each loss sees (softlearning's SAC, on which MOPO's code is built, evaluates
/// the Q, policy and temperature losses from one set of parameters in a single `session.run`):
///   L_Q (eq. 5):  critic θ, target critic θ̄, actor φ for a' ~ π_φ(·|s'), α — all before this update
///   L_π (eq. 7):  actor φ and critic θ before this update (not the θ of this update's critic step), α
///   L_α (eq. 18): log π_φ(ã|s) of the sample used by L_π, log α before this update
/// then one Adam step per network (θ, φ, log α) and θ̄ ← (1 − τ)·θ̄ + τ·θ_new.
/// Random draws: ε' for a' first, then ε for ã, both [B, A] from the agent's generator (as the autograd
/// path).
///
/// Two threads: the critic branch (target, L_Q and its gradient) and the actor branch (ã, L_π, L_α and their
/// gradients) only read shared parameters and write disjoint buffers, so they run at once; then the critic's
/// Adam + Polyak and the actor's and α's Adam run at once. Each branch uses one BLAS thread, so the result is
/// bit-for-bit the one-thread result (tests/unit/agents/sac_agent_test.cpp checks it).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "mopo/agents/sac_networks.hpp"
#include "mopo/core/error.hpp"
#include "mopo/detail/flat_adam.hpp"
#include "mopo/detail/pair_runner.hpp"

namespace mopo::agents::detail {

using mopo::detail::FlatAdam;

using mopo::detail::PairRunner;

/// Activations (and their gradients) of one MLP evaluation: x[0] is the input, x[i+1] the output of
/// layer i (after ReLU for hidden layers); g[i+1] the gradient with respect to layer i's pre-activation.
struct Tape {
  std::vector<torch::Tensor> x, g;
  void allocate(const std::vector<int64_t>& dims, int64_t batch, bool with_grads) {
    const auto opts = torch::TensorOptions(torch::kFloat32);
    x.assign(dims.size(), torch::Tensor());
    g.assign(dims.size(), torch::Tensor());
    for (std::size_t i = 1; i < dims.size(); ++i) {
      x[i] = torch::empty({batch, dims[i]}, opts);
      if (with_grads) g[i] = torch::empty({batch, dims[i]}, opts);
    }
  }
};

/// One dense layer as [in, out] weight view (the actor's nn::Linear weight transposed, a critic's slice as
/// is) and a bias broadcastable to [B, out].
struct Dense {
  torch::Tensor w;                 ///< [in, out] (may be a transposed view)
  torch::Tensor b;                 ///< [out] or [1, out]
  torch::Tensor grad_w;            ///< gradient buffer in the parameter's own layout, or undefined
  torch::Tensor grad_b;            ///< gradient buffer shaped like b, or undefined
  bool grad_w_transposed = false;  ///< grad_w is [out, in] (nn::Linear layout)
};

/// Forward pass; x[0] must be set by the caller.
inline void mlp_forward(const std::vector<Dense>& layers, Tape& t) {
  for (std::size_t i = 0; i < layers.size(); ++i) {
    at::addmm_out(t.x[i + 1], layers[i].b, t.x[i], layers[i].w);
    if (i + 1 < layers.size()) at::relu_(t.x[i + 1]);
  }
}

/// Backward pass from t.g.back() (the gradient of the output). With `weight_grads`, writes every layer's
/// weight and bias gradient; returns through the hidden layers down to t.g[1] (the first layer's
/// pre-activation gradient), so the caller can form the input gradient it needs itself.
inline void mlp_backward(const std::vector<Dense>& layers, Tape& t, bool weight_grads) {
  for (std::size_t i = layers.size(); i-- > 0;) {
    const auto& g = t.g[i + 1];
    if (weight_grads) {
      torch::Tensor grad_w = layers[i].grad_w, grad_b = layers[i].grad_b;  // handles to the Adam buffers
      if (layers[i].grad_w_transposed) {
        at::mm_out(grad_w, g.t(), t.x[i]);  // [out, in]
      } else {
        at::mm_out(grad_w, t.x[i].t(), g);  // [in, out]
      }
      const int64_t rows[] = {0};
      at::sum_out(grad_b, g, at::IntArrayRef(rows), /*keepdim=*/grad_b.dim() == 2);
    }
    if (i == 0) break;
    at::mm_out(t.g[i], g, layers[i].w.t());
    at::threshold_backward_out(t.g[i], t.g[i], t.x[i], 0);  // ReLU'(h) = [h > 0]
  }
}

/// log(1 − tanh(u)²) = 2·(log 2 − u − softplus(−2u)), softplus with LibTorch's threshold of 20.
inline float log1m_tanh_sq(float u) {
  const float z = -2.0f * u;
  const float softplus = z > 20.0f ? z : std::log1p(std::exp(z));
  return 2.0f * (0.69314718055994531f - u - softplus);
}

/// Everything SACAgent::update reports, before conversion to SACUpdateMetrics.
struct FusedMetrics {
  double critic_loss = 0, actor_loss = 0, alpha_loss = 0, alpha = 0, q1 = 0, q2 = 0, q_target = 0,
         entropy = 0;
};

/// The fused update for one agent's networks (CPU, float32). Holds views of the agent's parameters; call
/// rebind() after the parameters' storage changes (SACAgent::load) and sync_* around serialisation.
class FusedSACUpdate {
 public:
  struct Hyper {
    double gamma = 0.99, tau = 5e-3, target_entropy = 0, log_std_min = -20, log_std_max = 2;
    double actor_lr = 3e-4, critic_lr = 3e-4, alpha_lr = 3e-4;
    bool auto_alpha = true;
    int64_t threads = 1;
  };

  FusedSACUpdate(SquashedGaussianActor actor, TwinQCritic critic, TwinQCritic target, torch::Tensor log_alpha,
                 Hyper hyper)
      : actor_(std::move(actor)),
        critic_(std::move(critic)),
        target_(std::move(target)),
        log_alpha_(std::move(log_alpha)),
        hyper_(hyper),
        obs_dim_(actor_->obs_dim()),
        act_dim_(actor_->act_dim()) {
    actor_adam_ = FlatAdam(actor_->parameters(), hyper_.actor_lr);
    critic_adam_ = FlatAdam(critic_->parameters(), hyper_.critic_lr);
    alpha_adam_ = FlatAdam({log_alpha_}, hyper_.alpha_lr);
    bind_layers();
  }

  FlatAdam& actor_adam() { return actor_adam_; }
  FlatAdam& critic_adam() { return critic_adam_; }
  FlatAdam& alpha_adam() { return alpha_adam_; }

  /// Rebuilds the layer views (the parameter tensors keep their identity, but their storage may change).
  void bind_layers() {
    const auto& al = actor_->layers();
    const auto& ag = actor_adam_.grads();  // [w0, b0, w1, b1, ...] in registration order
    actor_layers_.clear();
    actor_dims_ = {obs_dim_};
    for (std::size_t i = 0; i < al.size(); ++i) {
      actor_layers_.push_back({al[i]->weight.t(), al[i]->bias, ag[2 * i], ag[2 * i + 1], true});
      actor_dims_.push_back(al[i]->weight.size(0));
    }
    const auto& cg = critic_adam_.grads();
    const auto& cw = critic_->weights();
    const auto& cb = critic_->biases();
    const auto& tw = target_->weights();
    const auto& tb = target_->biases();
    critic_dims_ = {obs_dim_ + act_dim_};
    for (std::size_t i = 0; i < cw.size(); ++i) critic_dims_.push_back(cw[i].size(2));
    for (int64_t j = 0; j < TwinQCriticImpl::kNumCritics; ++j) {
      critic_layers_[j].clear();
      target_layers_[j].clear();
      for (std::size_t i = 0; i < cw.size(); ++i) {
        critic_layers_[j].push_back({cw[i].select(0, j), cb[i].select(0, j), cg[2 * i].select(0, j),
                                     cg[2 * i + 1].select(0, j), false});
        target_layers_[j].push_back({tw[i].select(0, j), tb[i].select(0, j), {}, {}, false});
      }
      // ∂Q_j/∂a = g₁ · W₀[O:O+A, :]ᵀ: the action rows of the first layer.
      critic_action_rows_[j] = cw[0].select(0, j).narrow(0, obs_dim_, act_dim_);
    }
    batch_ = -1;  // reallocate the workspaces at the next update
  }

  /// One update on a validated CPU float32 batch (see the file comment for the semantics).
  FusedMetrics update(const torch::Tensor& obs_in, const torch::Tensor& act_in, const torch::Tensor& rew_in,
                      const torch::Tensor& next_obs_in, const torch::Tensor& term_in, torch::Generator& gen) {
    torch::NoGradGuard no_grad;
    const auto obs = obs_in.contiguous(), act = act_in.contiguous(), rew = rew_in.contiguous();
    const auto next_obs = next_obs_in.contiguous(), term = term_in.contiguous();
    const int64_t batch = obs.size(0);
    if (batch != batch_) allocate(batch);
    next_eps_.normal_(0.0, 1.0, gen);  // ε' (for a' ~ π(·|s')), then ε (for ã ~ π(·|s))
    eps_.normal_(0.0, 1.0, gen);
    alpha_ = std::exp(static_cast<double>(log_alpha_.item<float>()));

    const std::function<void()> critic_branch = [&] {
      torch::NoGradGuard guard;
      critic_gradients(obs, act, rew, next_obs, term);
    };
    const std::function<void()> actor_branch = [&] {
      torch::NoGradGuard guard;
      actor_gradients(obs);
    };
    const std::function<void()> critic_step = [&] {
      torch::NoGradGuard guard;
      critic_adam_.step();
      soft_update(target_->parameters(), critic_->parameters(), hyper_.tau);  // with θ after its step
    };
    const std::function<void()> actor_step = [&] {
      torch::NoGradGuard guard;
      actor_adam_.step();
      if (hyper_.auto_alpha) alpha_adam_.step();
    };
    if (hyper_.threads >= 2) {
      // One BLAS thread per branch (the caller's count is restored afterwards).
      const int previous = at::get_num_threads();
      if (previous != 1) at::set_num_threads(1);
      try {
        runner_.run(critic_branch, actor_branch);
        runner_.run(critic_step, actor_step);
      } catch (...) {
        if (previous != 1) at::set_num_threads(previous);
        throw;
      }
      if (previous != 1) at::set_num_threads(previous);
    } else {
      critic_branch();
      actor_branch();
      critic_step();
      actor_step();
    }
    FusedMetrics m = metrics_;
    m.alpha = alpha_;
    return m;
  }

 private:
  void allocate(int64_t batch) {
    batch_ = batch;
    const auto opts = torch::TensorOptions(torch::kFloat32);
    next_eps_ = torch::empty({batch, act_dim_}, opts);
    eps_ = torch::empty({batch, act_dim_}, opts);
    next_logp_ = torch::empty({batch}, opts);
    logp_ = torch::empty({batch}, opts);
    y_ = torch::empty({batch}, opts);
    next_input_ = torch::empty({batch, obs_dim_ + act_dim_}, opts);
    input_ = torch::empty({batch, obs_dim_ + act_dim_}, opts);
    pi_input_ = torch::empty({batch, obs_dim_ + act_dim_}, opts);
    grad_action_ = torch::empty({batch, act_dim_}, opts);
    next_actor_tape_.allocate(actor_dims_, batch, false);
    actor_tape_.allocate(actor_dims_, batch, true);
    target_tape_.allocate(critic_dims_, batch, false);
    for (int j = 0; j < 2; ++j) {
      critic_tape_[j].allocate(critic_dims_, batch, true);
      pi_critic_tape_[j].allocate(critic_dims_, batch, true);
    }
  }

  // [s, a] rows into `input` ([B, O + A]).
  void concat(torch::Tensor& input, const torch::Tensor& obs, const float* actions) const {
    const float* o = obs.data_ptr<float>();
    float* x = input.data_ptr<float>();
    const int64_t width = obs_dim_ + act_dim_;
    for (int64_t b = 0; b < batch_; ++b) {
      std::copy(o + b * obs_dim_, o + (b + 1) * obs_dim_, x + b * width);
      std::copy(actions + b * act_dim_, actions + (b + 1) * act_dim_, x + b * width + obs_dim_);
    }
  }

  // a = tanh(μ + σ·ε) into `actions` and log π(a|s) (SAC eq. 21) into `logp`, from the actor's output
  // [μ, log σ] ([B, 2A]); log σ clamped to [log_std_min, log_std_max].
  void squash(const torch::Tensor& out, const torch::Tensor& eps, float* actions, torch::Tensor& logp) const {
    constexpr float kHalfLog2Pi = 0.91893853320467274178f;
    const auto lo = static_cast<float>(hyper_.log_std_min), hi = static_cast<float>(hyper_.log_std_max);
    const float* o = out.data_ptr<float>();
    const float* e = eps.data_ptr<float>();
    float* lp = logp.data_ptr<float>();
    for (int64_t b = 0; b < batch_; ++b) {
      float gauss = 0, correction = 0;
      for (int64_t j = 0; j < act_dim_; ++j) {
        const float mu = o[b * 2 * act_dim_ + j];
        const float log_std = std::clamp(o[b * 2 * act_dim_ + act_dim_ + j], lo, hi);
        const float eij = e[b * act_dim_ + j];
        const float u = mu + std::exp(log_std) * eij;
        actions[b * act_dim_ + j] = std::tanh(u);
        gauss += -0.5f * eij * eij - log_std - kHalfLog2Pi;
        correction += log1m_tanh_sq(u);
      }
      lp[b] = gauss - correction;
    }
  }

  // Critic branch: y (eq. 3, 5), Q_j(s, a), ∂L_Q/∂θ into the critic Adam's gradient buffers.
  void critic_gradients(const torch::Tensor& obs, const torch::Tensor& act, const torch::Tensor& rew,
                        const torch::Tensor& next_obs, const torch::Tensor& term) {
    next_actor_tape_.x[0] = next_obs;
    mlp_forward(actor_layers_, next_actor_tape_);
    std::vector<float>& a_next = scratch_actions_;
    a_next.resize(static_cast<std::size_t>(batch_ * act_dim_));
    squash(next_actor_tape_.x.back(), next_eps_, a_next.data(), next_logp_);
    concat(next_input_, next_obs, a_next.data());
    // Clipped double-Q target: min_j Q̄_j(s', a') (SAC paper §5).
    target_tape_.x[0] = next_input_;
    std::vector<float>& qmin = scratch_q_;
    qmin.assign(static_cast<std::size_t>(batch_), 0.0f);
    for (int j = 0; j < 2; ++j) {
      mlp_forward(target_layers_[j], target_tape_);
      const float* q = target_tape_.x.back().data_ptr<float>();
      for (int64_t b = 0; b < batch_; ++b) qmin[b] = j == 0 ? q[b] : std::min(qmin[b], q[b]);
    }
    const float* r = rew.data_ptr<float>();
    const float* d = term.data_ptr<float>();
    const float* nlp = next_logp_.data_ptr<float>();
    float* y = y_.data_ptr<float>();
    const auto alpha = static_cast<float>(alpha_);
    const auto gamma = static_cast<float>(hyper_.gamma);
    double y_sum = 0;
    for (int64_t b = 0; b < batch_; ++b) {
      y[b] = r[b] + gamma * (1.0f - d[b]) * (qmin[b] - alpha * nlp[b]);
      y_sum += y[b];
    }
    concat(input_, obs, act.data_ptr<float>());
    double loss = 0, q_mean[2] = {0, 0};
    const float scale = 2.0f / static_cast<float>(batch_);
    for (int j = 0; j < 2; ++j) {
      auto& t = critic_tape_[j];
      t.x[0] = input_;
      mlp_forward(critic_layers_[j], t);
      const float* q = t.x.back().data_ptr<float>();
      float* g = t.g.back().data_ptr<float>();
      double sq = 0;
      for (int64_t b = 0; b < batch_; ++b) {
        const float diff = q[b] - y[b];
        sq += static_cast<double>(diff) * diff;
        q_mean[j] += q[b];
        g[b] = scale * diff;  // ∂/∂Q_j of Σ_j mean (Q_j − y)²
      }
      loss += sq / static_cast<double>(batch_);
      mlp_backward(critic_layers_[j], t, /*weight_grads=*/true);
    }
    metrics_.critic_loss = loss;
    metrics_.q1 = q_mean[0] / static_cast<double>(batch_);
    metrics_.q2 = q_mean[1] / static_cast<double>(batch_);
    metrics_.q_target = y_sum / static_cast<double>(batch_);
  }

  // Actor branch: ã ~ π(·|s), L_π (eq. 7) with the critics as they were, ∂L_π/∂φ into the actor Adam's
  // gradient buffers; ∂L_α/∂log α (eq. 18) into the α Adam's.
  void actor_gradients(const torch::Tensor& obs) {
    auto& at_ = actor_tape_;
    at_.x[0] = obs;
    mlp_forward(actor_layers_, at_);
    std::vector<float>& a = scratch_pi_actions_;
    a.resize(static_cast<std::size_t>(batch_ * act_dim_));
    squash(at_.x.back(), eps_, a.data(), logp_);
    concat(pi_input_, obs, a.data());
    float* q[2];
    for (int j = 0; j < 2; ++j) {
      pi_critic_tape_[j].x[0] = pi_input_;
      mlp_forward(critic_layers_[j], pi_critic_tape_[j]);
      q[j] = pi_critic_tape_[j].x.back().data_ptr<float>();
    }
    const float* lp = logp_.data_ptr<float>();
    const auto alpha = static_cast<float>(alpha_);
    const float inv_b = 1.0f / static_cast<float>(batch_);
    float* g0 = pi_critic_tape_[0].g.back().data_ptr<float>();
    float* g1 = pi_critic_tape_[1].g.back().data_ptr<float>();
    double loss = 0, logp_sum = 0;
    for (int64_t b = 0; b < batch_; ++b) {
      // min_j Q_j(s, ã): the gradient −1/B goes to the smaller one (the first on a tie, as torch::min).
      const bool first = q[0][b] <= q[1][b];
      loss += static_cast<double>(alpha * lp[b] - (first ? q[0][b] : q[1][b]));
      logp_sum += lp[b];
      g0[b] = first ? -inv_b : 0.0f;
      g1[b] = first ? 0.0f : -inv_b;
    }
    metrics_.actor_loss = loss / static_cast<double>(batch_);
    metrics_.entropy = -logp_sum / static_cast<double>(batch_);
    // ∂L_π/∂ã through the frozen critics: back to g₁, then the action rows of the first layer.
    for (int j = 0; j < 2; ++j) {
      mlp_backward(critic_layers_[j], pi_critic_tape_[j], /*weight_grads=*/false);
      if (j == 0) {
        at::mm_out(grad_action_, pi_critic_tape_[j].g[1], critic_action_rows_[j].t());
      } else {
        grad_action_.addmm_(pi_critic_tape_[j].g[1], critic_action_rows_[j].t());
      }
    }
    // Through the squashed Gaussian: u = μ + σ·ε, ã = tanh(u), log π = Σ(−ε²/2 − log σ − ½log 2π) − Σ
    // log(1−tanh²u).
    const auto lo = static_cast<float>(hyper_.log_std_min), hi = static_cast<float>(hyper_.log_std_max);
    const float* out = at_.x.back().data_ptr<float>();
    const float* e = eps_.data_ptr<float>();
    const float* ga = grad_action_.data_ptr<float>();
    float* gout = at_.g.back().data_ptr<float>();
    const float g_logp = alpha * inv_b;  // ∂L_π/∂log π(ã|s)
    for (int64_t b = 0; b < batch_; ++b) {
      for (int64_t j = 0; j < act_dim_; ++j) {
        const float raw_log_std = out[b * 2 * act_dim_ + act_dim_ + j];
        const float sigma = std::exp(std::clamp(raw_log_std, lo, hi));
        const float aj = a[b * act_dim_ + j];
        const float eij = e[b * act_dim_ + j];
        // ∂ã/∂u = 1 − ã²; ∂log π/∂u = 2·tanh(u) (from −log(1 − tanh²u)).
        const float gu = ga[b * act_dim_ + j] * (1.0f - aj * aj) + g_logp * 2.0f * aj;
        gout[b * 2 * act_dim_ + j] = gu;  // ∂u/∂μ = 1
        // ∂u/∂log σ = σ·ε; ∂log π/∂log σ = −1 directly; clamp passes the gradient inside [lo, hi] only.
        const bool inside = raw_log_std >= lo && raw_log_std <= hi;
        gout[b * 2 * act_dim_ + act_dim_ + j] = inside ? gu * sigma * eij - g_logp : 0.0f;
      }
    }
    mlp_backward(actor_layers_, at_, /*weight_grads=*/true);
    // L_α = −mean[log α · (log π + H̄)] ⇒ ∂L_α/∂log α = −mean(log π + H̄).
    const double mean_logp = logp_sum / static_cast<double>(batch_);
    if (hyper_.auto_alpha) {
      alpha_adam_.grads()[0].fill_(-(mean_logp + hyper_.target_entropy));
      metrics_.alpha_loss = -std::log(alpha_) * (mean_logp + hyper_.target_entropy);
    } else {
      metrics_.alpha_loss = 0;
    }
  }

  SquashedGaussianActor actor_;
  TwinQCritic critic_, target_;
  torch::Tensor log_alpha_;
  Hyper hyper_;
  int64_t obs_dim_, act_dim_;
  FlatAdam actor_adam_, critic_adam_, alpha_adam_;
  std::vector<Dense> actor_layers_;
  std::vector<Dense> critic_layers_[2], target_layers_[2];
  torch::Tensor critic_action_rows_[2];
  std::vector<int64_t> actor_dims_, critic_dims_;
  int64_t batch_ = -1;
  double alpha_ = 1;
  torch::Tensor next_eps_, eps_, next_logp_, logp_, y_, next_input_, input_, pi_input_, grad_action_;
  Tape next_actor_tape_, actor_tape_, target_tape_, critic_tape_[2], pi_critic_tape_[2];
  std::vector<float> scratch_actions_, scratch_q_, scratch_pi_actions_;
  FusedMetrics metrics_;
  PairRunner runner_;
};

}  // namespace mopo::agents::detail
