/// @file gaussian_ensemble.hpp
/// @brief MOPO's probabilistic dynamics ensemble (Yu et al. 2020 §4.3; Chua et al. 2018): E Gaussian MLPs
/// trained on (s, a) → [Δs, r], selected by holdout MSE, queried in raw units.
///
/// Everything follows the authors' code (mopo-algorithm.md §3): 4×200 swish, a mean head and a separate
/// log-variance head, learnable shared logvar bounds with soft clamp, per-layer coupled L2, inputs
/// standardised on the training split, holdout min(20 %, 1000), one bootstrap draw per member, Adam 1e-3,
/// batch 256, per-member snapshots on > 1 % holdout improvement, stop after 6 idle epochs, restore the
/// snapshots, elites = lowest holdout MSE. Deviations are listed in docs/ensemble.md.
///
/// Example:
/// @code
/// mopo::models::GaussianEnsemble model(obs_dim, act_dim);          // EnsembleOptions defaults
/// auto report = model.fit(obs, act, next_obs, rew);               // EnsembleTrainOptions defaults
/// auto pred = model.predict(obs, act);                            // mean/std [7, B, obs_dim + 1]
/// auto step = model.sample(obs, act, rng.generator());            // next_obs [B, O], reward [B]
/// model.save("dynamics.pt");
/// auto again = mopo::models::GaussianEnsemble::load("dynamics.pt");
/// @endcode
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mopo/config/json_config.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/normalizer.hpp"
#include "mopo/core/random.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/models/ensemble_fused_step.hpp"
#include "mopo/models/ensemble_linear.hpp"
#include "mopo/models/ensemble_options.hpp"
#include "mopo/models/ensemble_prediction.hpp"

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

/// MOPO's dynamics model: a trained GaussianEnsembleNet plus its input normaliser and elite indices.
///
/// Not copyable (it owns a network); movable. predict()/sample() may be called from one thread at a time
/// per object (they share an internal workspace, guarded by a mutex).
class GaussianEnsemble {
 public:
  using EpochCallback = std::function<void(const EnsembleEpoch&)>;

  /// Builds an untrained ensemble. Parameters are initialised from LibTorch's global generator: call
  /// mopo::seed_global / RandomState::seed_global() first for reproducible weights.
  /// @throws ValueError (dims < 1) or ConfigError (options).
  GaussianEnsemble(int64_t obs_dim, int64_t act_dim, EnsembleOptions options = {})
      : obs_dim_(obs_dim),
        act_dim_(act_dim),
        options_(std::move(options)),
        workspace_(std::make_unique<Workspace>()) {
    if (obs_dim < 1 || act_dim < 1) {
      throw ValueError("GaussianEnsemble: obs_dim and act_dim must be >= 1, got " + std::to_string(obs_dim) +
                       " and " + std::to_string(act_dim));
    }
    options_.validate();
    net_ = GaussianEnsembleNet(obs_dim + act_dim, obs_dim + 1, options_);
    elites_.resize(static_cast<std::size_t>(options_.num_elites));
    std::iota(elites_.begin(), elites_.end(), int64_t{0});
  }

  GaussianEnsemble(GaussianEnsemble&&) noexcept = default;
  GaussianEnsemble& operator=(GaussianEnsemble&&) noexcept = default;
  GaussianEnsemble(const GaussianEnsemble&) = delete;
  GaussianEnsemble& operator=(const GaussianEnsemble&) = delete;
  ~GaussianEnsemble() = default;

  // ---------------------------------------------------------------------------------------------
  // Training
  // ---------------------------------------------------------------------------------------------

  /// Trains on transitions (obs [N, O], act [N, A], next_obs [N, O], rew [N] or [N, 1]), seeding the
  /// split, bootstrap and shuffles from `options.seed`. See the overload taking a RandomState.
  EnsembleFitReport fit(const torch::Tensor& obs, const torch::Tensor& act, const torch::Tensor& next_obs,
                        const torch::Tensor& rew, const EnsembleTrainOptions& options = {},
                        const EpochCallback& on_epoch = {}) {
    RandomState rng(options.seed);
    return fit(obs, act, next_obs, rew, options, rng, on_epoch);
  }

  /// Trains on a dataset with D4RL field names — `observations`, `actions`, `next_observations`, `rewards`
  /// (e.g. mopo::data::TransitionDataset). The model learns from the true next observations (the Kit's
  /// choice; mopo-algorithm.md §3.4), so `next_observations` must be present.
  template <class DatasetT, class = decltype(std::declval<const DatasetT&>().next_observations)>
  EnsembleFitReport fit(const DatasetT& dataset, const EnsembleTrainOptions& options, RandomState& rng,
                        const EpochCallback& on_epoch = {}) {
    if (!dataset.next_observations.defined()) {
      throw ValueError("GaussianEnsemble::fit: the dataset has no next_observations");
    }
    return fit(dataset.observations, dataset.actions, dataset.next_observations, dataset.rewards, options,
               rng, on_epoch);
  }

  /// As above, seeded from `options.seed`.
  template <class DatasetT, class = decltype(std::declval<const DatasetT&>().next_observations)>
  EnsembleFitReport fit(const DatasetT& dataset, const EnsembleTrainOptions& options = {},
                        const EpochCallback& on_epoch = {}) {
    RandomState rng(options.seed);
    return fit(dataset, options, rng, on_epoch);
  }

  /// Trains the ensemble, starting from its current weights (a new model: its initialisation) and refitting
  /// the input normaliser, exactly as MOPO (mopo-algorithm.md §3.5):
  /// random holdout split of min(⌊ratio·N⌋, max_holdout) rows; normaliser fitted on the training split;
  /// bootstrap indices drawn once per member, reshuffled every epoch; Adam on the full loss (§3.3);
  /// per-member snapshot when its holdout MSE improves by more than `improvement_threshold` (relative);
  /// stop after more than `max_epochs_since_update` idle epochs (or the epoch/time limits); restore every
  /// member's best snapshot; elites = the `num_elites` members with the lowest holdout MSE.
  /// `on_epoch` (optional) sees every epoch's record, e.g. for progress output.
  /// @throws ShapeError / ValueError on malformed or non-finite data, ConfigError on bad options.
  EnsembleFitReport fit(const torch::Tensor& obs, const torch::Tensor& act, const torch::Tensor& next_obs,
                        const torch::Tensor& rew, const EnsembleTrainOptions& options, RandomState& rng,
                        const EpochCallback& on_epoch = {}) {
    options.validate();
    const auto start = std::chrono::steady_clock::now();
    const auto elapsed = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    };
    const auto data = check_transitions(obs, act, next_obs, rew, "GaussianEnsemble::fit");
    const int64_t n = data.inputs.size(0);
    const int64_t e = options_.ensemble_size;
    const int64_t d = output_dim();
    const int64_t holdout = std::min<int64_t>(
        static_cast<int64_t>(options.holdout_ratio * static_cast<double>(n)), options.max_holdout);
    const int64_t n_train = n - holdout;
    if (n_train < 1) throw ValueError("GaussianEnsemble::fit: no training rows left after the holdout split");
    if (holdout == 0 && options.max_epochs == 0 && options.max_seconds == 0.0) {
      throw ValueError(
          "GaussianEnsemble::fit: empty holdout split (N=" + std::to_string(n) +
          ") and no max_epochs/max_seconds: early stopping needs holdout rows; set a limit or more data");
    }
    auto& gen = rng.generator();

    // Holdout = the first rows of a random permutation (bnn.py train).
    const auto perm = torch::randperm(n, gen, torch::TensorOptions().dtype(torch::kLong));
    const auto hold_idx = perm.narrow(0, 0, holdout);
    const auto train_idx = perm.narrow(0, holdout, n_train);
    const auto train_in = data.inputs.index_select(0, train_idx);
    const auto train_y = data.targets.index_select(0, train_idx);
    normalizer_.fit(train_in);  // training split only (§3.4)
    const auto train_x = normalizer_.transform(train_in).contiguous();
    const auto hold_x = normalizer_.transform(data.inputs.index_select(0, hold_idx)).contiguous();
    const auto hold_y = data.targets.index_select(0, hold_idx).contiguous();

    // One bootstrap draw per member, with replacement (bnn.py train: randint(N_train, [E, N_train])).
    auto bootstrap = torch::randint(n_train, {e, n_train}, gen, torch::TensorOptions().dtype(torch::kLong));

    torch::optim::Adam optimizer(net().parameters(), torch::optim::AdamOptions(options.lr));
    const auto layers = net().layers();
    std::vector<torch::Tensor> snapshot;  // best weights/biases of every layer, all members
    {
      torch::NoGradGuard no_grad;
      for (const auto& layer : layers) {
        snapshot.push_back(layer->weight.detach().clone());
        snapshot.push_back(layer->bias.detach().clone());
      }
    }
    std::vector<double> best(static_cast<std::size_t>(e), std::numeric_limits<double>::infinity());
    EnsembleFitReport report;
    report.train_size = n_train;
    report.holdout_size = holdout;
    int64_t epochs_since_update = 0;
    const double bound_coef = options_.logvar_bound_coef;

    // The fused step computes the same loss and gradient without autograd (ensemble_fused_step.hpp).
    std::unique_ptr<detail::FusedEnsembleStep> fused;
    if (options.step == "fused" && !options_.spectral_norm && net().max_logvar.device().is_cpu() &&
        net().max_logvar.scalar_type() == torch::kFloat32) {
      const auto hw = static_cast<int64_t>(std::max(1U, std::thread::hardware_concurrency()));
      fused = std::make_unique<detail::FusedEnsembleStep>(
          layers, net().max_logvar, net().min_logvar, bound_coef, options.lr, std::min(options.threads, hw));
    }
    net().train();
    for (int64_t epoch = 1;; ++epoch) {
      // Re-shuffle each member's bootstrap rows (bnn.py shuffle_rows).
      bootstrap = bootstrap.gather(1, torch::rand({e, n_train}, gen).argsort(int64_t{1}));
      double loss_sum = 0.0;
      int64_t batches = 0;
      for (int64_t startb = 0; startb < n_train; startb += options.batch_size) {
        const int64_t len = std::min(options.batch_size, n_train - startb);
        const auto idx = bootstrap.narrow(1, startb, len).reshape({-1});
        const auto x = train_x.index_select(0, idx).view({e, len, -1});
        const auto y = train_y.index_select(0, idx).view({e, len, d});
        if (fused) {
          loss_sum += fused->step(x, y);
          ++batches;
          continue;
        }
        auto [mean, logvar] = net().forward(x);
        // §3.3: Σ_i [mean((μ−y)²·e^{−logvar}) + mean(logvar)] + decay + coef·(Σmax − Σmin).
        const auto mse_term = ((mean - y).pow(2) * torch::exp(-logvar)).mean({1, 2}).sum();
        const auto var_term = logvar.mean({1, 2}).sum();
        auto loss = mse_term + var_term + net().decay_loss() +
                    bound_coef * (net().max_logvar.sum() - net().min_logvar.sum());
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        loss_sum += loss.item<double>();
        ++batches;
      }

      EnsembleEpoch record;
      record.epoch = epoch;
      record.train_loss = loss_sum / static_cast<double>(std::max<int64_t>(batches, 1));
      if (holdout > 0) {
        record.holdout_mse = mse_per_member(hold_x, hold_y);
        bool updated = false;
        for (int64_t i = 0; i < e; ++i) {
          const double cur = record.holdout_mse[static_cast<std::size_t>(i)];
          double& b = best[static_cast<std::size_t>(i)];
          // (best − cur)/best > threshold (bnn.py _save_best); the first finite value always counts.
          if (std::isfinite(cur) && (!std::isfinite(b) || (b - cur) / b > options.improvement_threshold)) {
            b = cur;
            updated = true;
            record.improved.push_back(i);
            torch::NoGradGuard no_grad;
            for (std::size_t l = 0; l < layers.size(); ++l) {
              snapshot[2 * l][i].copy_(layers[l]->weight[i]);
              snapshot[2 * l + 1][i].copy_(layers[l]->bias[i]);
            }
          }
        }
        epochs_since_update = updated ? 0 : epochs_since_update + 1;
      }
      record.epochs_since_update = epochs_since_update;
      record.seconds = elapsed();
      report.history.push_back(record);
      if (on_epoch) on_epoch(report.history.back());

      if (holdout > 0 && epochs_since_update > options.max_epochs_since_update) {
        report.stop_reason = "early_stopping";
        break;
      }
      if (options.max_epochs > 0 && epoch >= options.max_epochs) {
        report.stop_reason = "max_epochs";
        break;
      }
      if (options.max_seconds > 0.0 && record.seconds >= options.max_seconds) {
        report.stop_reason = "max_seconds";
        break;
      }
    }
    net().eval();

    // Restore each member's best snapshot, then rank members (bnn.py _set_state, _end_train).
    if (holdout > 0) {
      torch::NoGradGuard no_grad;
      for (std::size_t l = 0; l < layers.size(); ++l) {
        for (int64_t i = 0; i < e; ++i) {
          if (!std::isfinite(best[static_cast<std::size_t>(i)])) continue;  // never snapshotted
          layers[l]->weight[i].copy_(snapshot[2 * l][i]);
          layers[l]->bias[i].copy_(snapshot[2 * l + 1][i]);
        }
      }
    }
    // No holdout: rank on the training split.
    const auto& rank_x = holdout > 0 ? hold_x : train_x;
    const auto& rank_y = holdout > 0 ? hold_y : train_y;
    const auto per_dim = mse_per_member_dim(rank_x, rank_y);  // [E, D]
    report.best_holdout_mse = member_mse(per_dim);
    elites_ = rank_members(report.best_holdout_mse, options_.num_elites);
    report.elites = elites_;
    const auto elite_dim = per_dim.index_select(0, torch::tensor(elites_, torch::kLong)).mean(0).contiguous();
    report.holdout_mse_per_dim.assign(elite_dim.data_ptr<double>(),
                                      elite_dim.data_ptr<double>() + elite_dim.numel());
    report.seconds = elapsed();
    last_holdout_indices_ = hold_idx.clone();
    return report;
  }

  /// Mean-only MSE of every member on transitions (the holdout metric, raw target units), [E] float64.
  /// @throws ValueError if the model is untrained; ShapeError / ValueError on bad input.
  [[nodiscard]] torch::Tensor evaluate_mse(const torch::Tensor& obs, const torch::Tensor& act,
                                           const torch::Tensor& next_obs, const torch::Tensor& rew) const {
    require_trained("GaussianEnsemble::evaluate_mse");
    const auto data = check_transitions(obs, act, next_obs, rew, "GaussianEnsemble::evaluate_mse");
    const auto mse = mse_per_member(normalizer_.transform(data.inputs), data.targets);
    return torch::tensor(mse, torch::kFloat64);
  }

  // ---------------------------------------------------------------------------------------------
  // Prediction
  // ---------------------------------------------------------------------------------------------

  /// Per-member mean and std of [next_obs, reward] in raw units, each [E, B, O + 1]
  /// (next_obs = obs + predicted Δobs). Fast path: no autograd, chunked, reused buffers.
  /// @throws ValueError (untrained, NaN/Inf input), ShapeError (dims).
  [[nodiscard]] EnsemblePrediction predict(const torch::Tensor& obs, const torch::Tensor& act) const {
    EnsemblePrediction out;
    predict_into(obs, act, out);
    return out;
  }

  /// predict() writing into `out`, whose tensors are reused when they already have the right shape,
  /// dtype and layout (so a rollout loop allocates nothing per step).
  void predict_into(const torch::Tensor& obs, const torch::Tensor& act, EnsemblePrediction& out) const {
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

  /// The same prediction through the plain LibTorch module path (one unchunked forward over [E, B, ·],
  /// fresh temporaries). Used to test the fast path and as the "before" of the inference benchmark.
  [[nodiscard]] EnsemblePrediction predict_reference(const torch::Tensor& obs,
                                                     const torch::Tensor& act) const {
    require_trained("GaussianEnsemble::predict_reference");
    check_obs_act(obs, act, "GaussianEnsemble::predict_reference");
    torch::NoGradGuard no_grad;
    const auto opts = net().max_logvar.options();
    const auto o = obs.to(opts);
    const auto x = normalizer_.transform(torch::cat({o, act.to(opts)}, 1));
    auto [mean, logvar] = net().forward(x.unsqueeze(0).expand({options_.ensemble_size, -1, -1}));
    mean.narrow(2, 0, obs_dim_).add_(o);
    return {mean, torch::exp(logvar * 0.5)};
  }

  /// MOPO's model step: per row a uniformly chosen elite, next_obs and reward drawn from its Gaussian.
  /// @param deterministic return the chosen elite's mean instead of a draw.
  [[nodiscard]] EnsembleSample sample(const torch::Tensor& obs, const torch::Tensor& act,
                                      torch::Generator& generator, bool deterministic = false) const {
    return sample_prediction(predict(obs, act), elites_, generator, deterministic);
  }

  // ---------------------------------------------------------------------------------------------
  // State
  // ---------------------------------------------------------------------------------------------

  /// Elite member indices, best (lowest holdout MSE) first. Before fit(): 0 … num_elites−1.
  [[nodiscard]] const std::vector<int64_t>& elites() const { return elites_; }
  /// Overrides the elites. @throws ValueError on an empty list, duplicates or out-of-range indices.
  void set_elites(std::vector<int64_t> elites) {
    if (elites.empty()) throw ValueError("GaussianEnsemble::set_elites: empty list");
    auto sorted = elites;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      if (sorted[i] < 0 || sorted[i] >= options_.ensemble_size || (i > 0 && sorted[i] == sorted[i - 1])) {
        throw ValueError("GaussianEnsemble::set_elites: invalid or duplicate index " +
                         std::to_string(sorted[i]) + " (ensemble_size " +
                         std::to_string(options_.ensemble_size) + ")");
      }
    }
    elites_ = std::move(elites);
  }

  /// True once fit() or load() has set the input normaliser.
  [[nodiscard]] bool trained() const { return normalizer_.fitted(); }
  [[nodiscard]] int64_t obs_dim() const { return obs_dim_; }
  [[nodiscard]] int64_t act_dim() const { return act_dim_; }
  [[nodiscard]] int64_t input_dim() const { return obs_dim_ + act_dim_; }
  [[nodiscard]] int64_t output_dim() const { return obs_dim_ + 1; }
  [[nodiscard]] int64_t ensemble_size() const { return options_.ensemble_size; }
  [[nodiscard]] const EnsembleOptions& options() const { return options_; }
  [[nodiscard]] const Normalizer& input_normalizer() const { return normalizer_; }
  /// Sets the input normaliser (e.g. when training the network by hand). @throws ShapeError on dims.
  void set_input_normalizer(const Normalizer& normalizer) {
    if (!normalizer.fitted() || normalizer.dim() != input_dim()) {
      throw ShapeError("GaussianEnsemble::set_input_normalizer: expected a fitted normaliser of dim " +
                       std::to_string(input_dim()) + ", got dim " + std::to_string(normalizer.dim()));
    }
    normalizer_ = normalizer;
  }
  /// The network (for inspection, custom training or moving to a device).
  [[nodiscard]] GaussianEnsembleNet& network() { return net_; }
  [[nodiscard]] const GaussianEnsembleNet& network() const { return net_; }
  /// Row indices (into fit()'s inputs) of the last fit's holdout split.
  [[nodiscard]] const torch::Tensor& last_holdout_indices() const { return last_holdout_indices_; }

  // ---------------------------------------------------------------------------------------------
  // Persistence
  // ---------------------------------------------------------------------------------------------

  /// Writes weights, logvar bounds, spectral-norm vectors, normaliser, elites, dims and options to one
  /// file, atomically. @throws ValueError if untrained, IoError if the file cannot be written.
  void save(const std::filesystem::path& file) const {
    require_trained("GaussianEnsemble::save");
    torch::serialize::OutputArchive archive;
    torch::serialize::OutputArchive net_archive;
    net().save(net_archive);
    archive.write("network", net_archive);
    normalizer_.save(archive, "normalizer");
    archive.write("format", c10::IValue(std::string(kFormat)));
    archive.write("obs_dim", c10::IValue(obs_dim_));
    archive.write("act_dim", c10::IValue(act_dim_));
    archive.write("options", c10::IValue(config::to_json(options_).dump()));
    archive.write("elites", torch::tensor(elites_, torch::kLong), /*is_buffer=*/true);
    std::ostringstream os;
    archive.save_to(os);
    atomic_write(file, os.str());
  }

  /// Reads a file written by save(). @throws IoError naming the file if it is missing or malformed.
  static GaussianEnsemble load(const std::filesystem::path& file) {
    if (!std::filesystem::exists(file)) throw IoError(file.string() + ": no such file");
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(file.string());
    } catch (const std::exception& err) {
      throw IoError(file.string() + ": not a mopo GaussianEnsemble file (" +
                    mopo::detail::torch_message(err) + ")");
    }
    return from_archive(archive, file.string(), /*file_bytes=*/std::filesystem::file_size(file));
  }

  /// Reads the `size` bytes of a file written by save() from memory, with the checks of load(path); `name`
  /// names them in errors. @throws IoError naming `name`.
  static GaussianEnsemble load(const char* data, std::size_t size, const std::string& name) {
    torch::serialize::InputArchive archive;
    try {
      archive.load_from(data, size);
    } catch (const std::exception& err) {
      throw IoError(name + ": not a mopo GaussianEnsemble file (" + mopo::detail::torch_message(err) + ")");
    }
    return from_archive(archive, name, size);
  }

 private:
  static constexpr const char* kFormat = "mopo.GaussianEnsemble.v1";

  static GaussianEnsemble from_archive(torch::serialize::InputArchive& archive, const std::string& file,
                                       std::uintmax_t file_bytes) {
    try {
      c10::IValue format, obs_dim, act_dim, options_text;
      if (!archive.try_read("format", format) || !format.isString() || format.toStringRef() != kFormat) {
        throw IoError("missing or unknown format tag (expected " + std::string(kFormat) + ")");
      }
      if (!archive.try_read("obs_dim", obs_dim) || !archive.try_read("act_dim", act_dim) ||
          !archive.try_read("options", options_text) || !obs_dim.isInt() || !act_dim.isInt() ||
          !options_text.isString()) {
        throw IoError("missing obs_dim / act_dim / options");
      }
      EnsembleOptions options;
      config::from_json(config::parse(options_text.toStringRef(), "options"), options);
      // The file stores every float32 weight uncompressed, so dims and hidden sizes that need more bytes
      // than it has are corrupt; checked before the network is allocated (a damaged obs_dim of 10^12 would
      // otherwise ask for terabytes).
      const double in = static_cast<double>(obs_dim.toInt()) + static_cast<double>(act_dim.toInt());
      double weights = 0;
      double width = in;
      for (const auto h : options.hidden)
        weights += width * static_cast<double>(h), width = static_cast<double>(h);
      weights += width * (static_cast<double>(obs_dim.toInt()) + 1);
      weights *= static_cast<double>(options.ensemble_size);
      if (obs_dim.toInt() >= 1 && act_dim.toInt() >= 1 && 4 * weights > static_cast<double>(file_bytes)) {
        throw IoError("obs_dim " + std::to_string(obs_dim.toInt()) + ", act_dim " +
                      std::to_string(act_dim.toInt()) + " and options need " + std::to_string(4 * weights) +
                      " bytes of weights, the file has " + std::to_string(file_bytes));
      }
      GaussianEnsemble model(obs_dim.toInt(), act_dim.toInt(), options);
      // Module::load copies tensors without checking shapes: record them and compare afterwards.
      std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
      for (const auto& p : model.net().named_parameters())
        expected.emplace_back(p.key(), p.value().sizes().vec());
      for (const auto& p : model.net().named_buffers())
        expected.emplace_back(p.key(), p.value().sizes().vec());
      torch::serialize::InputArchive net_archive;
      if (!archive.try_read("network", net_archive)) throw IoError("missing network");
      model.net().load(net_archive);
      const auto params = model.net().named_parameters();
      const auto buffers = model.net().named_buffers();
      for (const auto& [name, sizes] : expected) {
        const auto* t = params.find(name);
        if (t == nullptr) t = buffers.find(name);
        // The dtype too: Module::load also replaces a float32 parameter by a tensor of another dtype.
        if (t == nullptr || t->sizes().vec() != sizes || t->scalar_type() != torch::kFloat32) {
          throw IoError("tensor network." + name + " is " + (t ? mopo::detail::describe(*t) : "<missing>") +
                        ", expected float32 of shape " + c10::str(c10::IntArrayRef(sizes)));
        }
        mopo::detail::check_storage(*t, "tensor network." + name);
        mopo::detail::check_finite(*t, "tensor network." + name);
      }
      model.normalizer_.load(archive, "normalizer");
      if (model.normalizer_.dim() != model.input_dim()) throw IoError("normaliser dimension mismatch");
      torch::Tensor elites;
      if (!archive.try_read("elites", elites, /*is_buffer=*/true)) throw IoError("missing elites");
      mopo::detail::check_storage(elites, "elites");
      const auto el = elites.to(torch::kLong).contiguous();
      model.set_elites(std::vector<int64_t>(el.data_ptr<int64_t>(), el.data_ptr<int64_t>() + el.numel()));
      model.net().eval();
      return model;
    } catch (const IoError& err) {
      throw IoError(file + ": " + err.what());
    } catch (const Error& err) {
      throw IoError(file + ": " + err.what());
    } catch (const std::exception& err) {  // c10::Error, torch::jit::ErrorReport
      throw IoError(file + ": " + mopo::detail::torch_message(err));
    }
  }

  struct Transitions {
    torch::Tensor inputs;   ///< [N, O + A]
    torch::Tensor targets;  ///< [N, O + 1] = [Δobs, reward] (§3.4)
  };

  struct WorkspaceSlot {
    torch::Tensor input, h0, h1, mean, logvar;
  };
  struct Workspace {
    std::mutex mutex;
    std::vector<WorkspaceSlot> slots;  // one per thread
  };

  /// The network, mutable from const methods (LibTorch modules have no const forward()).
  GaussianEnsembleNetImpl& net() const { return *net_.ptr(); }

  void require_trained(const char* what) const {
    if (!trained())
      throw ValueError(std::string(what) + ": the ensemble is not trained (call fit() or load())");
  }

  void check_obs_act(const torch::Tensor& obs, const torch::Tensor& act, const std::string& what) const {
    mopo::detail::check_shape(obs, {-1, obs_dim_}, what + " obs");
    mopo::detail::check_shape(act, {obs.size(0), act_dim_}, what + " act");
    if (!obs.is_floating_point() || !act.is_floating_point()) {
      throw ShapeError(what + ": obs and act must be floating point, got " + mopo::detail::describe(obs) +
                       " and " + mopo::detail::describe(act));
    }
    mopo::detail::check_finite(obs, what + " obs");
    mopo::detail::check_finite(act, what + " act");
  }

  Transitions check_transitions(const torch::Tensor& obs, const torch::Tensor& act,
                                const torch::Tensor& next_obs, const torch::Tensor& rew,
                                const std::string& what) const {
    check_obs_act(obs, act, what);
    const int64_t n = obs.size(0);
    if (n < 1) throw ValueError(what + ": no transitions");
    mopo::detail::check_shape(next_obs, {n, obs_dim_}, what + " next_obs");
    torch::Tensor r = rew;
    if (r.defined() && r.dim() == 1) r = r.unsqueeze(1);
    if (!r.defined() || r.dim() != 2 || r.size(0) != n || r.size(1) != 1) {
      throw ShapeError(what + " rew: expected shape [" + std::to_string(n) + "] or [" + std::to_string(n) +
                       ", 1], got " + mopo::detail::describe(rew));
    }
    mopo::detail::check_finite(next_obs, what + " next_obs");
    mopo::detail::check_finite(r, what + " rew");
    const auto opts = net().max_logvar.options().requires_grad(false);
    const auto o = obs.to(opts);
    return {torch::cat({o, act.to(opts)}, 1).contiguous(),
            torch::cat({next_obs.to(opts) - o, r.to(opts)}, 1).contiguous()};
  }

  /// Mean-only MSE per member over normalised inputs x [M, in] and targets y [M, D]; chunked, no grad.
  // Mean-only squared error of every member per output dimension, [E, D] float64, averaged over rows.
  torch::Tensor mse_per_member_dim(const torch::Tensor& x, const torch::Tensor& y) const {
    torch::NoGradGuard no_grad;
    const bool was_training = net().is_training();
    net().eval();
    const int64_t e = options_.ensemble_size;
    auto sum = torch::zeros({e, y.size(1)}, torch::kFloat64);
    const int64_t m = x.size(0);
    const int64_t chunk = std::max<int64_t>(options_.inference_chunk_rows, 1);
    for (int64_t r0 = 0; r0 < m; r0 += chunk) {
      const int64_t c = std::min(chunk, m - r0);
      const auto out = net().forward(x.narrow(0, r0, c).unsqueeze(0).expand({e, c, x.size(1)}));
      sum += (out.first - y.narrow(0, r0, c)).pow(2).to(torch::kFloat64).sum(1);
    }
    if (was_training) net().train();
    return sum / static_cast<double>(std::max<int64_t>(m, 1));
  }

  std::vector<double> mse_per_member(const torch::Tensor& x, const torch::Tensor& y) const {
    return member_mse(mse_per_member_dim(x, y));
  }

  // [E, D] per-dimension MSE → per-member MSE over all dimensions (non-finite → +inf).
  static std::vector<double> member_mse(const torch::Tensor& per_dim) {
    const int64_t e = per_dim.size(0);
    const auto sum = per_dim.mean(1);
    std::vector<double> result(static_cast<std::size_t>(e));
    for (int64_t i = 0; i < e; ++i) {
      const double v = sum[i].item<double>();
      result[static_cast<std::size_t>(i)] = std::isfinite(v) ? v : std::numeric_limits<double>::infinity();
    }
    return result;
  }

  static std::vector<int64_t> rank_members(const std::vector<double>& mse, int64_t k) {
    std::vector<int64_t> order(mse.size());
    std::iota(order.begin(), order.end(), int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](int64_t l, int64_t r) {
      return mse[static_cast<std::size_t>(l)] < mse[static_cast<std::size_t>(r)];
    });
    order.resize(static_cast<std::size_t>(k));
    return order;
  }

  /// Weights as applied at inference (W or W/σ), one per layer.
  std::vector<torch::Tensor> effective_weights() const {
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

  static void ensure_buffer(torch::Tensor& t, std::initializer_list<int64_t> sizes,
                            const torch::TensorOptions& opts) {
    if (t.defined() && t.sizes() == c10::IntArrayRef(sizes) && t.is_contiguous() &&
        t.dtype() == opts.dtype() && t.device() == opts.device() && !t.requires_grad()) {
      return;
    }
    t = torch::empty(sizes, opts);
  }

  static void ensure_capacity(torch::Tensor& t, int64_t numel, const torch::TensorOptions& opts) {
    if (t.defined() && t.numel() >= numel && t.dtype() == opts.dtype() && t.device() == opts.device()) return;
    t = torch::empty({numel}, opts);
  }

  int64_t obs_dim_;
  int64_t act_dim_;
  EnsembleOptions options_;
  GaussianEnsembleNet net_{nullptr};
  Normalizer normalizer_;
  std::vector<int64_t> elites_;
  torch::Tensor last_holdout_indices_;
  std::unique_ptr<Workspace> workspace_;
};

}  // namespace mopo::models
