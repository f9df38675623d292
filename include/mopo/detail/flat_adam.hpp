/// @file flat_adam.hpp
/// @brief Adam over a list of parameter tensors with one flat gradient buffer and one flat moment buffer
/// each, stepped in a single pass (used by the fused SAC update and the fused ensemble training step).
///
/// The arithmetic is torch::optim::Adam's (LibTorch 1.13, no weight decay, no AMSGrad; Kingma & Ba 2015,
/// Algorithm 1): m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
/// One pass reads g, m, v, p and writes m, v, p once, instead of seven whole-buffer ops; the parameters are
/// the caller's own tensors (not views of a flat buffer), so they keep their identity and serialise as usual.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace mopo::detail {

class FlatAdam {
 public:
  FlatAdam() = default;
  /// @param params contiguous float32 CPU tensors (they are updated in place)
  FlatAdam(std::vector<torch::Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
    int64_t n = 0;
    for (const auto& p : params_) n += p.numel();
    const auto opts = torch::TensorOptions(torch::kFloat32);
    grad_ = torch::zeros({n}, opts);
    m_ = torch::zeros({n}, opts);
    v_ = torch::zeros({n}, opts);
    int64_t offset = 0;
    for (const auto& p : params_) {
      offsets_.push_back(offset);
      grad_views_.push_back(grad_.narrow(0, offset, p.numel()).view(p.sizes()));
      m_views_.push_back(m_.narrow(0, offset, p.numel()).view(p.sizes()));
      v_views_.push_back(v_.narrow(0, offset, p.numel()).view(p.sizes()));
      offset += p.numel();
    }
  }

  /// Gradient buffers shaped like the parameters (write the gradient here, then call step()).
  [[nodiscard]] const std::vector<torch::Tensor>& grads() const { return grad_views_; }
  [[nodiscard]] const std::vector<torch::Tensor>& params() const { return params_; }
  [[nodiscard]] int64_t steps() const { return step_; }
  [[nodiscard]] int64_t size() const { return grad_.defined() ? grad_.numel() : 0; }

  /// One Adam step on every parameter.
  void step() {
    begin_step();
    update_range(0, size());
  }

  /// For splitting one step across threads: begin_step() once, then update_range() over disjoint ranges
  /// of the flat index [0, size()).
  void begin_step() { ++step_; }
  void update_range(int64_t begin, int64_t end) {
    const double bias_correction1 = 1.0 - std::pow(kBeta1, static_cast<double>(step_));
    const double bias_correction2 = 1.0 - std::pow(kBeta2, static_cast<double>(step_));
    const auto inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bias_correction2));
    const auto step_size = static_cast<float>(lr_ / bias_correction1);
    const float* g = grad_.data_ptr<float>();
    float* m = m_.data_ptr<float>();
    float* v = v_.data_ptr<float>();
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const int64_t lo = std::max(begin, offsets_[i]);
      const int64_t hi = std::min(end, offsets_[i] + params_[i].numel());
      if (lo >= hi) continue;
      const int64_t off = offsets_[i];
      kernel(params_[i].data_ptr<float>(), g + off, m + off, v + off, lo - off, hi - off, inv_sqrt_bc2,
             step_size);
    }
  }

  /// Copies the moments and the step count into `into`'s per-parameter state (its archive format).
  void export_state(torch::optim::Adam& into) const {
    if (step_ == 0) return;  // torch::optim::Adam creates its state at the first step
    for (std::size_t i = 0; i < params_.size(); ++i) {
      auto state = std::make_unique<torch::optim::AdamParamState>();
      state->step(step_);
      state->exp_avg(m_views_[i].clone());
      state->exp_avg_sq(v_views_[i].clone());
      into.state()[c10::guts::to_string(params_[i].unsafeGetTensorImpl())] = std::move(state);
    }
  }

  /// Reads the moments and the step count back from `from` (zero when it has no state yet).
  void import_state(const torch::optim::Adam& from) {
    torch::NoGradGuard no_grad;
    m_.zero_();
    v_.zero_();
    step_ = 0;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto it = from.state().find(c10::guts::to_string(params_[i].unsafeGetTensorImpl()));
      if (it == from.state().end()) continue;
      const auto& state = static_cast<const torch::optim::AdamParamState&>(*it->second);
      m_views_[i].copy_(state.exp_avg());
      v_views_[i].copy_(state.exp_avg_sq());
      step_ = state.step();
    }
  }

 private:
  static constexpr double kBeta1 = 0.9;  // torch::optim::AdamOptions defaults
  static constexpr double kBeta2 = 0.999;
  static constexpr double kEps = 1e-8;

  static void kernel(float* p, const float* g, float* m, float* v, int64_t lo, int64_t hi, float inv_sqrt_bc2,
                     float step_size) {
    const auto b1 = static_cast<float>(kBeta1), b2 = static_cast<float>(kBeta2);
    const float c1 = 1.0f - b1, c2 = 1.0f - b2, eps = static_cast<float>(kEps);
    int64_t k = lo;
#if defined(__SSE2__)
    // Four lanes at a time (sqrtf in a scalar loop is not vectorised under the default -fmath-errno).
    const __m128 vb1 = _mm_set1_ps(b1), vb2 = _mm_set1_ps(b2), vc1 = _mm_set1_ps(c1), vc2 = _mm_set1_ps(c2);
    const __m128 vbc = _mm_set1_ps(inv_sqrt_bc2), veps = _mm_set1_ps(eps), vstep = _mm_set1_ps(step_size);
    for (; k + 4 <= hi; k += 4) {
      const __m128 gk = _mm_loadu_ps(g + k);
      const __m128 mk = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + k)), _mm_mul_ps(vc1, gk));
      const __m128 vk = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + k)), _mm_mul_ps(vc2, _mm_mul_ps(gk, gk)));
      _mm_storeu_ps(m + k, mk);
      _mm_storeu_ps(v + k, vk);
      const __m128 denom = _mm_add_ps(_mm_mul_ps(_mm_sqrt_ps(vk), vbc), veps);
      _mm_storeu_ps(p + k, _mm_sub_ps(_mm_loadu_ps(p + k), _mm_div_ps(_mm_mul_ps(vstep, mk), denom)));
    }
#endif
    for (; k < hi; ++k) {
      m[k] = b1 * m[k] + c1 * g[k];
      v[k] = b2 * v[k] + c2 * (g[k] * g[k]);
      p[k] -= step_size * m[k] / (std::sqrt(v[k]) * inv_sqrt_bc2 + eps);
    }
  }

  std::vector<torch::Tensor> params_;
  double lr_ = 0;
  int64_t step_ = 0;
  torch::Tensor grad_, m_, v_;
  std::vector<int64_t> offsets_;
  std::vector<torch::Tensor> grad_views_, m_views_, v_views_;
};

}  // namespace mopo::detail
