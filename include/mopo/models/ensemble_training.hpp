/// @file ensemble_training.hpp
/// @brief The training part of GaussianEnsemble (declared in gaussian_ensemble.hpp): fit() with its
/// holdout split, input normaliser, bootstrap, Adam steps (fused or autograd), per-member snapshots, early
/// stopping and elite selection (mopo-algorithm.md §3.5), and the holdout metric evaluate_mse().
///
/// Two fit() overloads, with the same result for the same data and generator: four tensors, or a dataset
/// with D4RL field names. Both take `RandomState* rng` (null: seeded from EnsembleTrainOptions::seed) and
/// an optional per-epoch callback. docs/ensemble.md, "Training", describes the procedure.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/models/ensemble_fused_step.hpp"
#include "mopo/models/ensemble_options.hpp"
#include "mopo/models/gaussian_ensemble.hpp"

namespace mopo::models {

inline EnsembleFitReport GaussianEnsemble::fit(const torch::Tensor& obs, const torch::Tensor& act,
                                               const torch::Tensor& next_obs, const torch::Tensor& rew,
                                               const EnsembleTrainOptions& options, RandomState* rng,
                                               const EpochCallback& on_epoch) {
  std::optional<RandomState> seeded;
  if (rng == nullptr) rng = &seeded.emplace(options.seed);
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
  auto& gen = rng->generator();

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

template <class DatasetT, class>
EnsembleFitReport GaussianEnsemble::fit(const DatasetT& dataset, const EnsembleTrainOptions& options,
                                        RandomState* rng, const EpochCallback& on_epoch) {
  if (!dataset.next_observations.defined()) {
    throw ValueError("GaussianEnsemble::fit: the dataset has no next_observations");
  }
  return fit(dataset.observations, dataset.actions, dataset.next_observations, dataset.rewards, options, rng,
             on_epoch);
}

inline torch::Tensor GaussianEnsemble::evaluate_mse(const torch::Tensor& obs, const torch::Tensor& act,
                                                    const torch::Tensor& next_obs,
                                                    const torch::Tensor& rew) const {
  require_trained("GaussianEnsemble::evaluate_mse");
  const auto data = check_transitions(obs, act, next_obs, rew, "GaussianEnsemble::evaluate_mse");
  const auto mse = mse_per_member(normalizer_.transform(data.inputs), data.targets);
  return torch::tensor(mse, torch::kFloat64);
}

inline GaussianEnsemble::Transitions GaussianEnsemble::check_transitions(const torch::Tensor& obs,
                                                                         const torch::Tensor& act,
                                                                         const torch::Tensor& next_obs,
                                                                         const torch::Tensor& rew,
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

inline torch::Tensor GaussianEnsemble::mse_per_member_dim(const torch::Tensor& x,
                                                          const torch::Tensor& y) const {
  torch::NoGradGuard no_grad;
  const bool was_training = net().is_training();
  net().eval();
  const int64_t e = options_.ensemble_size;
  auto sum = torch::zeros({e, y.size(1)}, torch::kFloat64);
  const int64_t m = x.size(0);
  const int64_t chunk = std::max<int64_t>(options_.inference_chunk_rows, 1);
  for (int64_t r0 = 0; r0 < m; r0 += chunk) {
    const int64_t c = std::min(chunk, m - r0);
    const auto mean = forward_reference(x.narrow(0, r0, c)).first;
    sum += (mean - y.narrow(0, r0, c)).pow(2).to(torch::kFloat64).sum(1);
  }
  if (was_training) net().train();
  return sum / static_cast<double>(std::max<int64_t>(m, 1));
}

inline std::vector<double> GaussianEnsemble::mse_per_member(const torch::Tensor& x,
                                                            const torch::Tensor& y) const {
  return member_mse(mse_per_member_dim(x, y));
}

inline std::vector<double> GaussianEnsemble::member_mse(const torch::Tensor& per_dim) {
  const int64_t e = per_dim.size(0);
  const auto sum = per_dim.mean(1);
  std::vector<double> result(static_cast<std::size_t>(e));
  for (int64_t i = 0; i < e; ++i) {
    const double v = sum[i].item<double>();
    result[static_cast<std::size_t>(i)] = std::isfinite(v) ? v : std::numeric_limits<double>::infinity();
  }
  return result;
}

inline std::vector<int64_t> GaussianEnsemble::rank_members(const std::vector<double>& mse, int64_t k) {
  std::vector<int64_t> order(mse.size());
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t l, int64_t r) {
    return mse[static_cast<std::size_t>(l)] < mse[static_cast<std::size_t>(r)];
  });
  order.resize(static_cast<std::size_t>(k));
  return order;
}

}  // namespace mopo::models
