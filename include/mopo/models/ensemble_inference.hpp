/// @file ensemble_inference.hpp
/// @brief The inference part of GaussianEnsemble (declared in gaussian_ensemble.hpp): the one prediction
/// path, predict() / predict_into(), its plain-LibTorch reference predict_reference(), and sample().
///
/// * predict() / predict_into() — **the** prediction, used by rollouts, penalties, sample() and the
///   deploy export tests: no autograd, rows in chunks of EnsembleOptions::inference_chunk_rows through a
///   workspace owned by the model (every layer one at::baddbmm_out into reused buffers, swish, soft clamp
///   and exp in place), optionally whole chunks in parallel (EnsembleOptions::parallel_chunks).
/// * predict_reference() — the same numbers through GaussianEnsembleNet::forward (one unchunked forward,
///   fresh temporaries). It is the reference the fast path is tested against (to 1e-5) and the "before"
///   of benchmarks/bench_ensemble.cpp; the training metric (holdout MSE) uses the same forward_reference().
///
/// docs/ensemble.md#prediction-and-sampling describes both.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <utility>
#include <vector>

#include "mopo/models/ensemble_network.hpp"
#include "mopo/models/ensemble_prediction.hpp"
#include "mopo/models/gaussian_ensemble.hpp"

namespace mopo::models {

inline EnsemblePrediction GaussianEnsemble::predict(const torch::Tensor& obs,
                                                    const torch::Tensor& act) const {
  EnsemblePrediction out;
  predict_into(obs, act, out);
  return out;
}

inline void GaussianEnsemble::predict_into(const torch::Tensor& obs, const torch::Tensor& act,
                                           EnsemblePrediction& out) const {
  require_trained("GaussianEnsemble::predict");
  check_obs_act(obs, act, "GaussianEnsemble::predict");
  torch::NoGradGuard no_grad;
  const auto& param = net().max_logvar;
  const auto opts = param.options().requires_grad(false);
  const auto o = obs.to(opts).contiguous();
  const auto a = act.to(opts).contiguous();
  const int64_t e = options_.ensemble_size;
  const int64_t b = o.size(0);
  const int64_t d = output_dim();
  const int64_t in = input_dim();
  ensure_buffer(out.mean, {e, b, d}, opts);
  ensure_buffer(out.std, {e, b, d}, opts);
  if (b == 0) return;

  std::lock_guard<std::mutex> lock(workspace_->mutex);
  // Chunking: with T > 1 intra-op threads and parallel_chunks, whole chunks run concurrently (one per
  // thread, single-threaded GEMMs, no per-GEMM synchronisation); the row count is split into a
  // multiple of T equal chunks so the threads stay balanced.
  const int64_t threads = options_.parallel_chunks ? std::max<int64_t>(at::get_num_threads(), 1) : 1;
  int64_t n_chunks = (b + options_.inference_chunk_rows - 1) / options_.inference_chunk_rows;
  if (threads > 1) n_chunks = std::min(b, ((n_chunks + threads - 1) / threads) * threads);
  const int64_t chunk = (b + n_chunks - 1) / n_chunks;
  n_chunks = (b + chunk - 1) / chunk;
  const int64_t slots = std::min(threads, n_chunks);
  const int64_t widest = *std::max_element(options_.hidden.begin(), options_.hidden.end());
  auto& pool = workspace_->slots;
  if (static_cast<int64_t>(pool.size()) < slots) pool.resize(static_cast<std::size_t>(slots));
  for (int64_t t = 0; t < slots; ++t) {
    auto& ws = pool[static_cast<std::size_t>(t)];
    ensure_capacity(ws.input, chunk * in, opts);
    ensure_capacity(ws.h0, e * chunk * widest, opts);
    ensure_capacity(ws.h1, e * chunk * widest, opts);
    ensure_capacity(ws.mean, e * chunk * d, opts);
    ensure_capacity(ws.logvar, e * chunk * d, opts);
  }
  const auto weights = effective_weights();  // spectral norm applied once per call, not per chunk
  const auto mu = normalizer_.mean().to(opts);
  const auto sd = normalizer_.std().to(opts);
  const auto layers = net().layers();
  const std::size_t n_hidden = net().hidden.size();
  const auto& max_lv = net().max_logvar;
  const auto& min_lv = net().min_logvar;

  const auto run_chunk = [&](WorkspaceSlot& ws, int64_t r0) {
    const int64_t c = std::min(chunk, b - r0);
    auto x = ws.input.narrow(0, 0, c * in).view({c, in});
    x.narrow(1, 0, obs_dim_).copy_(o.narrow(0, r0, c));
    x.narrow(1, obs_dim_, act_dim_).copy_(a.narrow(0, r0, c));
    x.sub_(mu).div_(sd);                                    // Normalizer::transform, in place
    torch::Tensor cur = x.unsqueeze(0).expand({e, c, in});  // shared input, batch stride 0 (no copy)
    for (std::size_t l = 0; l < n_hidden; ++l) {
      const int64_t width = options_.hidden[l];
      auto& buf = (l % 2 == 0) ? ws.h0 : ws.h1;
      auto next = buf.narrow(0, 0, e * c * width).view({e, c, width});
      at::baddbmm_out(next, layers[l]->bias, cur, weights[l]);
      at::silu_(next);  // swish, in place
      cur = next;
    }
    auto mean = ws.mean.narrow(0, 0, e * c * d).view({e, c, d});
    auto lv = ws.logvar.narrow(0, 0, e * c * d).view({e, c, d});
    at::baddbmm_out(mean, layers[n_hidden]->bias, cur, weights[n_hidden]);
    at::baddbmm_out(lv, layers[n_hidden + 1]->bias, cur, weights[n_hidden + 1]);
    detail::soft_clamp_logvar_(lv, max_lv, min_lv);
    lv.mul_(0.5).exp_();  // σ = exp(logvar / 2)
    auto out_mean = out.mean.narrow(1, r0, c);
    out_mean.copy_(mean);
    out_mean.narrow(2, 0, obs_dim_).add_(o.narrow(0, r0, c));  // next_obs = obs + Δobs
    out.std.narrow(1, r0, c).copy_(lv);
  };

  if (slots == 1) {
    for (int64_t k = 0; k < n_chunks; ++k) run_chunk(pool[0], k * chunk);
  } else {
    // Each thread gets a contiguous block of chunks and its own workspace slot; ATen ops and OpenBLAS
    // run single-threaded inside the parallel region.
    at::parallel_for(0, n_chunks, 1, [&](int64_t begin, int64_t end) {
      auto& ws = pool[static_cast<std::size_t>(std::min<int64_t>(at::get_thread_num(), slots - 1))];
      for (int64_t k = begin; k < end; ++k) run_chunk(ws, k * chunk);
    });
  }
}

inline EnsemblePrediction GaussianEnsemble::predict_reference(const torch::Tensor& obs,
                                                              const torch::Tensor& act) const {
  require_trained("GaussianEnsemble::predict_reference");
  check_obs_act(obs, act, "GaussianEnsemble::predict_reference");
  torch::NoGradGuard no_grad;
  const auto opts = net().max_logvar.options();
  const auto o = obs.to(opts);
  const auto x = normalizer_.transform(torch::cat({o, act.to(opts)}, 1));
  auto [mean, logvar] = forward_reference(x);
  mean.narrow(2, 0, obs_dim_).add_(o);
  return {mean, torch::exp(logvar * 0.5)};
}

inline EnsembleSample GaussianEnsemble::sample(const torch::Tensor& obs, const torch::Tensor& act,
                                               torch::Generator& generator, bool deterministic) const {
  return sample_prediction(predict(obs, act), elites_, generator, deterministic);
}

inline std::pair<torch::Tensor, torch::Tensor> GaussianEnsemble::forward_reference(
    const torch::Tensor& x) const {
  torch::NoGradGuard no_grad;
  return net().forward(x.unsqueeze(0).expand({options_.ensemble_size, -1, -1}));
}

inline std::vector<torch::Tensor> GaussianEnsemble::effective_weights() const {
  std::vector<torch::Tensor> w;
  for (auto& layer : net().layers()) {
    if (layer->options.spectral_norm()) {
      const bool was_training = layer->is_training();
      layer->eval();
      w.push_back(layer->effective_weight().detach());
      if (was_training) layer->train();
    } else {
      w.push_back(layer->weight.detach());
    }
  }
  return w;
}

inline void GaussianEnsemble::ensure_buffer(torch::Tensor& t, std::initializer_list<int64_t> sizes,
                                            const torch::TensorOptions& opts) {
  if (t.defined() && t.sizes() == c10::IntArrayRef(sizes) && t.is_contiguous() && t.dtype() == opts.dtype() &&
      t.device() == opts.device() && !t.requires_grad()) {
    return;
  }
  t = torch::empty(sizes, opts);
}

inline void GaussianEnsemble::ensure_capacity(torch::Tensor& t, int64_t numel,
                                              const torch::TensorOptions& opts) {
  if (t.defined() && t.numel() >= numel && t.dtype() == opts.dtype() && t.device() == opts.device()) return;
  t = torch::empty({numel}, opts);
}

}  // namespace mopo::models
