/// @file ensemble_fused_step.hpp
/// @brief One training step of the Gaussian ensemble without autograd: forward and backward of the
/// E-member swish MLP written on batched LibTorch GEMMs into preallocated buffers, and one flat Adam pass.
///
/// The loss is GaussianEnsemble::fit's (mopo-algorithm.md §3.3; bnn.py):
///   L = Σ_i [mean_{b,d} (μ−y)²·e^{−ℓ} + mean_{b,d} ℓ] + Σ_l wd_l·½‖W_l‖² + c·(Σ max_ℓ − Σ min_ℓ),
///   ℓ = min + softplus(max − softplus(max − raw) − min)   (the soft clamp of the log-variance head)
/// and its gradient is written out by hand below (the chain rule through the soft clamp, the two heads
/// reading the last hidden layer, swish'(z) = σ(z)·(1 + z − z·σ(z))). With two threads the members are
/// split between the threads (each member's forward and backward is independent; only the max/min log-
/// variance gradients are summed over members), then each thread steps half of the flat Adam buffer.
/// Spectral normalisation is not handled here (fit() uses the autograd step for it).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "mopo/detail/flat_adam.hpp"
#include "mopo/detail/pair_runner.hpp"
#include "mopo/models/ensemble_linear.hpp"

namespace mopo::models::detail {

class FusedEnsembleStep {
 public:
  /// @param layers hidden layers, then the mean head, then the log-variance head (each layer's own
  ///        weight_decay option is its coefficient wd_l)
  FusedEnsembleStep(std::vector<EnsembleLinear> layers, torch::Tensor max_logvar, torch::Tensor min_logvar,
                    double bound_coef, double lr, int64_t threads)
      : layers_(std::move(layers)),
        max_logvar_(std::move(max_logvar)),
        min_logvar_(std::move(min_logvar)),
        bound_coef_(bound_coef),
        threads_(threads) {
    std::vector<torch::Tensor> params;
    for (const auto& l : layers_) {
      decay_.push_back(l->options.weight_decay());
      params.push_back(l->weight);
      params.push_back(l->bias);
    }
    params.push_back(max_logvar_);
    params.push_back(min_logvar_);
    adam_ = mopo::detail::FlatAdam(std::move(params), lr);
    n_hidden_ = layers_.size() - 2;
    members_ = layers_[0]->weight.size(0);
    member_loss_.assign(static_cast<std::size_t>(members_), 0.0);
  }

  /// One step on x [E, B, in] (normalised inputs) and y [E, B, D]; returns the loss before the step.
  double step(const torch::Tensor& x, const torch::Tensor& y) {
    torch::NoGradGuard no_grad;
    const int64_t batch = x.size(1);
    if (batch != batch_) allocate(batch);
    const int64_t split = threads_ >= 2 && members_ >= 2 ? (members_ + 1) / 2 : members_;
    if (split < members_) {
      const int previous = at::get_num_threads();
      if (previous != 1) at::set_num_threads(1);
      try {
        const std::function<void()> first = [&] {
          torch::NoGradGuard guard;
          members_range(x, y, 0, split, 0);
        };
        const std::function<void()> second = [&] {
          torch::NoGradGuard guard;
          members_range(x, y, split, members_, 1);
        };
        runner_.run(second, first);
        finish_gradients(2);
        adam_.begin_step();
        const int64_t half = adam_.size() / 2;
        const std::function<void()> adam_lo = [&] { adam_.update_range(0, half); };
        const std::function<void()> adam_hi = [&] { adam_.update_range(half, adam_.size()); };
        runner_.run(adam_hi, adam_lo);
      } catch (...) {
        if (previous != 1) at::set_num_threads(previous);
        throw;
      }
      if (previous != 1) at::set_num_threads(previous);
    } else {
      members_range(x, y, 0, members_, 0);
      finish_gradients(1);
      adam_.step();
    }
    // Σ over members in member order, not the two threads' partial sums: one thread and two give the same
    // bits.
    double total = 0;
    for (const double l : member_loss_) total += l;
    return total + regulariser_;
  }

 private:
  void allocate(int64_t batch) {
    batch_ = batch;
    const auto opts = torch::TensorOptions(torch::kFloat32);
    z_.clear();
    s_.clear();
    h_.clear();
    gh_.clear();
    for (std::size_t l = 0; l < n_hidden_; ++l) {
      const int64_t width = layers_[l]->weight.size(2);
      z_.push_back(torch::empty({members_, batch, width}, opts));
      s_.push_back(torch::empty({members_, batch, width}, opts));
      h_.push_back(torch::empty({members_, batch, width}, opts));
      gh_.push_back(torch::empty({members_, batch, width}, opts));
    }
    const int64_t d = max_logvar_.size(0);
    for (auto* t : {&mean_, &raw_, &t1_, &sig1_, &sig2_, &lv_, &gmean_, &graw_}) {
      *t = torch::empty({members_, batch, d}, opts);
    }
    for (auto& t : bound_grads_) t = torch::zeros({2, d}, torch::TensorOptions(torch::kFloat64));
  }

  // Forward, loss and backward of members [e0, e1); gradients into the Adam buffers (their member rows);
  // the max/min log-variance gradients of these members into bound_grads_[slot]; their loss terms into
  // member_loss_.
  void members_range(const torch::Tensor& x_all, const torch::Tensor& y_all, int64_t e0, int64_t e1,
                     int slot) {
    const int64_t ne = e1 - e0;
    auto rows = [&](const torch::Tensor& t) { return t.narrow(0, e0, ne); };
    const auto& grads = adam_.grads();
    // Forward: z = h·W + b, h' = swish(z) = z·σ(z) (fc.py).
    torch::Tensor h = rows(x_all);
    for (std::size_t l = 0; l < n_hidden_; ++l) {
      auto z = rows(z_[l]), s = rows(s_[l]), out = rows(h_[l]);
      at::baddbmm_out(z, rows(layers_[l]->bias), h, rows(layers_[l]->weight));
      at::sigmoid_out(s, z);
      at::mul_out(out, z, s);
      h = out;
    }
    const auto& mean_head = layers_[n_hidden_];
    const auto& lv_head = layers_[n_hidden_ + 1];
    auto mean = rows(mean_), raw = rows(raw_);
    at::baddbmm_out(mean, rows(mean_head->bias), h, rows(mean_head->weight));
    at::baddbmm_out(raw, rows(lv_head->bias), h, rows(lv_head->weight));
    // Soft clamp: ℓ₁ = max − softplus(max − raw); ℓ = min + softplus(ℓ₁ − min).
    auto t1 = rows(t1_), sig1 = rows(sig1_), sig2 = rows(sig2_), lv = rows(lv_);
    at::sub_out(t1, max_logvar_, raw);  // max − raw
    at::sigmoid_out(sig1, t1);
    at::softplus_out(lv, t1);
    lv.neg_().add_(max_logvar_).sub_(min_logvar_);  // ℓ₁ − min
    at::sigmoid_out(sig2, lv);
    at::softplus_out(lv, lv);
    lv.add_(min_logvar_);
    at::neg_out(t1, lv);  // t1 is free now: e^{−ℓ}, vectorised
    t1.exp_();
    // Loss and ∂L/∂μ, ∂L/∂raw, ∂L/∂max, ∂L/∂min in one pass.
    const auto y = rows(y_all).contiguous();
    auto gmean = rows(gmean_), graw = rows(graw_);
    const int64_t batch = x_all.size(1);
    const int64_t d = max_logvar_.size(0);
    const float* mu = mean.data_ptr<float>();
    const float* yy = y.data_ptr<float>();
    const float* l = lv.data_ptr<float>();
    const float* ev = t1.data_ptr<float>();
    const float* a1 = sig1.data_ptr<float>();
    const float* a2 = sig2.data_ptr<float>();
    float* gm = gmean.data_ptr<float>();
    float* gr = graw.data_ptr<float>();
    double* gmax = bound_grads_[slot].data_ptr<double>();
    double* gmin = gmax + d;
    std::fill(gmax, gmax + 2 * d, 0.0);
    const float scale = 1.0f / static_cast<float>(batch * d);  // mean over rows and outputs, per member
    double total = 0;
    for (int64_t i = 0; i < ne * batch; ++i) {
      if (i % batch == 0) total = 0;  // one sum per member, so the threads' split cannot change the bits
      for (int64_t k = 0; k < d; ++k) {
        const int64_t j = i * d + k;
        const float diff = mu[j] - yy[j];
        const float inv_var = ev[j];
        const float weighted = diff * diff * inv_var;
        total += static_cast<double>(weighted + l[j]);
        gm[j] = 2.0f * diff * inv_var * scale;       // ∂/∂μ of (μ−y)²e^{−ℓ}
        const float gl = (1.0f - weighted) * scale;  // ∂/∂ℓ of (μ−y)²e^{−ℓ} + ℓ
        // ∂ℓ/∂raw = σ(ℓ₁−min)·σ(max−raw); ∂ℓ/∂max = σ(ℓ₁−min)·(1 − σ(max−raw)); ∂ℓ/∂min = 1 − σ(ℓ₁−min).
        gr[j] = gl * a2[j] * a1[j];
        gmax[k] += static_cast<double>(gl * a2[j] * (1.0f - a1[j]));
        gmin[k] += static_cast<double>(gl * (1.0f - a2[j]));
      }
      if ((i + 1) % batch == 0)
        member_loss_[static_cast<std::size_t>(e0 + i / batch)] = total * static_cast<double>(scale);
    }
    // Heads: ∂W = hᵀ·g + wd·W, ∂b = Σ_rows g, ∂h = g_μ·W_μᵀ + g_raw·W_ℓᵀ.
    const std::size_t mh = n_hidden_, lh = n_hidden_ + 1;
    head_backward(mean_head, h, gmean, grads[2 * mh], grads[2 * mh + 1], decay_[mh], rows);
    head_backward(lv_head, h, graw, grads[2 * lh], grads[2 * lh + 1], decay_[lh], rows);
    torch::Tensor gh = rows(gh_[n_hidden_ - 1]);
    at::bmm_out(gh, gmean, rows(mean_head->weight).transpose(1, 2));
    gh.baddbmm_(graw, rows(lv_head->weight).transpose(1, 2));
    // Hidden layers, last to first: ∂z = ∂h'·σ(z)·(1 + z − h'), then the same weight/bias/input gradients.
    for (std::size_t k = n_hidden_; k-- > 0;) {
      auto g = rows(gh_[k]);
      swish_backward(g, rows(z_[k]), rows(s_[k]), rows(h_[k]));
      const torch::Tensor input = k == 0 ? rows(x_all) : rows(h_[k - 1]);
      head_backward(layers_[k], input, g, grads[2 * k], grads[2 * k + 1], decay_[k], rows);
      if (k > 0) {
        auto g_prev = rows(gh_[k - 1]);
        at::bmm_out(g_prev, g, rows(layers_[k]->weight).transpose(1, 2));
      }
    }
  }

  template <class Rows>
  static void head_backward(const EnsembleLinear& layer, const torch::Tensor& input, const torch::Tensor& g,
                            const torch::Tensor& grad_w_all, const torch::Tensor& grad_b_all, double decay,
                            const Rows& rows) {
    torch::Tensor grad_w = rows(grad_w_all), grad_b = rows(grad_b_all);
    at::bmm_out(grad_w, input.transpose(1, 2), g);
    if (decay != 0.0) grad_w.add_(rows(layer->weight), decay);  // ∂/∂W of wd·½‖W‖²
    const int64_t dims[] = {1};
    at::sum_out(grad_b, g, at::IntArrayRef(dims), /*keepdim=*/true);
  }

  static void swish_backward(torch::Tensor& g, const torch::Tensor& z, const torch::Tensor& s,
                             const torch::Tensor& h) {
    float* gp = g.data_ptr<float>();
    const float* zp = z.data_ptr<float>();
    const float* sp = s.data_ptr<float>();
    const float* hp = h.data_ptr<float>();
    const int64_t n = g.numel();
    for (int64_t i = 0; i < n; ++i) gp[i] *= sp[i] * (1.0f + zp[i] - hp[i]);
  }

  // Sums the members' max/min log-variance gradients, adds the bound term, and the regulariser's value.
  void finish_gradients(int slots) {
    const auto& grads = adam_.grads();
    const std::size_t nl = layers_.size();
    auto bound = bound_grads_[0].clone();
    for (int k = 1; k < slots; ++k) bound.add_(bound_grads_[k]);
    grads[2 * nl].copy_(bound[0]).add_(bound_coef_);      // ∂/∂max of c·Σmax
    grads[2 * nl + 1].copy_(bound[1]).sub_(bound_coef_);  // ∂/∂min of −c·Σmin
    double reg = bound_coef_ * (max_logvar_.sum().item<double>() - min_logvar_.sum().item<double>());
    for (std::size_t l = 0; l < nl; ++l) {
      if (decay_[l] == 0.0) continue;
      const auto w = layers_[l]->weight.view({-1});
      reg += 0.5 * decay_[l] * w.dot(w).item<double>();
    }
    regulariser_ = reg;
  }

  std::vector<EnsembleLinear> layers_;
  torch::Tensor max_logvar_, min_logvar_;
  std::vector<double> decay_;
  double bound_coef_;
  int64_t threads_;
  std::vector<double> member_loss_;  // each member's loss terms of the last step
  std::size_t n_hidden_ = 0;
  int64_t members_ = 0;
  int64_t batch_ = -1;
  double regulariser_ = 0;
  mopo::detail::FlatAdam adam_;
  std::vector<torch::Tensor> z_, s_, h_, gh_;
  torch::Tensor mean_, raw_, t1_, sig1_, sig2_, lv_, gmean_, graw_;
  torch::Tensor bound_grads_[2];
  mopo::detail::PairRunner runner_;
};

}  // namespace mopo::models::detail
