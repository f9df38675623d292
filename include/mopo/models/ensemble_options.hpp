/// @file ensemble_options.hpp
/// @brief Options of the Gaussian dynamics ensemble (architecture: EnsembleOptions; training:
/// EnsembleTrainOptions) and what training returns (EnsembleFitReport). Defaults are MOPO's
/// (mopo-algorithm.md §3): 7 members, 5 elites, 4×200 swish, per-layer decay, logvar ∈ [−10, 0.5].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/core/metrics.hpp"

namespace mopo::models {

/// Architecture of a GaussianEnsemble. Loadable from JSON (mopo::config).
struct EnsembleOptions {
  int64_t ensemble_size = 7;                           ///< members E (original `num_networks: 7`)
  int64_t num_elites = 5;                              ///< elites K used by sample() (`num_elites: 5`)
  std::vector<int64_t> hidden = {200, 200, 200, 200};  ///< hidden widths (original constructor.py)
  /// Per-layer L2 coefficients: one per hidden layer, then one for the output heads (constructor.py).
  std::vector<double> weight_decay = {2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4};
  double init_max_logvar = 0.5;     ///< initial learnable upper logvar bound (bnn.py)
  double init_min_logvar = -10.0;   ///< initial learnable lower logvar bound (bnn.py)
  double logvar_bound_coef = 0.01;  ///< loss term coef·(Σ max_logvar − Σ min_logvar) (bnn.py)
  /// Spectral normalisation of every layer but the log-variance head. Described in the MOPO paper, never
  /// applied in the released code (mopo-algorithm.md §4); off by default.
  bool spectral_norm = false;
  /// Rows per chunk in predict(): bounds the inference workspace to E·rows·max(hidden) floats ×2 per thread.
  int64_t inference_chunk_rows = 4096;
  /// With more than one intra-op thread, predict() runs whole chunks in parallel (one per thread,
  /// single-threaded GEMMs) instead of splitting every GEMM across threads. Off by default: no advantage
  /// could be measured yet on the shared build machine (docs/ensemble.md, Performance).
  bool parallel_chunks = false;

  template <class V>
  void visit(V&& v) {
    v("ensemble_size", ensemble_size);
    v("num_elites", num_elites);
    v("hidden", hidden);
    v("weight_decay", weight_decay);
    v("init_max_logvar", init_max_logvar);
    v("init_min_logvar", init_min_logvar);
    v("logvar_bound_coef", logvar_bound_coef);
    v("spectral_norm", spectral_norm);
    v("inference_chunk_rows", inference_chunk_rows);
    v("parallel_chunks", parallel_chunks);
  }

  /// @throws ConfigError naming the key.
  void validate() const {
    if (ensemble_size < 1)
      throw ConfigError("ensemble_size: must be >= 1, got " + std::to_string(ensemble_size));
    if (num_elites < 1 || num_elites > ensemble_size) {
      throw ConfigError("num_elites: must be in [1, ensemble_size=" + std::to_string(ensemble_size) +
                        "], got " + std::to_string(num_elites));
    }
    if (hidden.empty()) throw ConfigError("hidden: needs at least one hidden layer");
    for (std::size_t i = 0; i < hidden.size(); ++i) {
      if (hidden[i] < 1) {
        throw ConfigError("hidden[" + std::to_string(i) + "]: must be >= 1, got " +
                          std::to_string(hidden[i]));
      }
    }
    if (weight_decay.size() != hidden.size() + 1) {
      throw ConfigError("weight_decay: expected " + std::to_string(hidden.size() + 1) +
                        " values (one per hidden layer, then the output heads), got " +
                        std::to_string(weight_decay.size()));
    }
    for (std::size_t i = 0; i < weight_decay.size(); ++i) {
      if (!(weight_decay[i] >= 0.0)) {
        throw ConfigError("weight_decay[" + std::to_string(i) + "]: must be >= 0, got " +
                          std::to_string(weight_decay[i]));
      }
    }
    if (!(init_min_logvar < init_max_logvar)) {
      throw ConfigError("init_min_logvar: must be < init_max_logvar (" + std::to_string(init_min_logvar) +
                        " vs " + std::to_string(init_max_logvar) + ")");
    }
    if (!(logvar_bound_coef >= 0.0)) {
      throw ConfigError("logvar_bound_coef: must be >= 0, got " + std::to_string(logvar_bound_coef));
    }
    if (inference_chunk_rows < 1) {
      throw ConfigError("inference_chunk_rows: must be >= 1, got " + std::to_string(inference_chunk_rows));
    }
  }
};

/// How GaussianEnsemble::fit trains (mopo-algorithm.md §3.5). Loadable from JSON (mopo::config).
struct EnsembleTrainOptions {
  double lr = 1e-3;            ///< Adam learning rate (constructor.py)
  int64_t batch_size = 256;    ///< minibatch rows per member
  double holdout_ratio = 0.2;  ///< holdout = min(⌊ratio·N⌋, max_holdout) (bnn.py train)
  int64_t max_holdout = 1000;
  /// A member improves when (best − current)/best > this (bnn.py _save_best).
  double improvement_threshold = 0.01;
  /// Stop once more than this many consecutive epochs passed without any member improving, i.e. after
  /// max_epochs_since_update + 1 idle epochs (original: `> 5`, so 6 idle epochs).
  int64_t max_epochs_since_update = 5;
  /// Epoch cap; 0 = no limit (the original's `max_epochs=None`). Default 200 because the rule above
  /// need not end on small datasets: the counter is shared, so any one of the 7 members beating its own
  /// best by 1 % resets it. Measured on 50 k rows of halfcheetah-random: some member did so in 32 of the
  /// 64 epochs 61–124 (each member only every ~11 epochs), and training had not stopped after 124 epochs
  /// (12 min) with the holdout MSE still falling ~0.2 %/epoch (docs/ensemble.md, Early stopping).
  int64_t max_epochs = 200;
  double max_seconds = 0.0;  ///< 0 = no limit (original `max_model_t`)
  uint64_t seed = 0;         ///< seeds fit() when it is given no RandomState
  /// How a training step computes: "fused" (hand-written forward/backward on batched GEMMs and one flat
  /// Adam pass, ensemble_fused_step.hpp; CPU, without spectral normalisation) or "autograd" (LibTorch
  /// autograd and torch::optim::Adam, the reference; used whenever "fused" does not apply).
  std::string step = "fused";
  /// Threads of one fused step (1 or 2, capped by the hardware): the members are split between them.
  /// The result does not depend on it. Use 1 when other jobs share the cores (sweeps do).
  int64_t threads = 2;

  template <class V>
  void visit(V&& v) {
    v("lr", lr);
    v("batch_size", batch_size);
    v("holdout_ratio", holdout_ratio);
    v("max_holdout", max_holdout);
    v("improvement_threshold", improvement_threshold);
    v("max_epochs_since_update", max_epochs_since_update);
    v("max_epochs", max_epochs);
    v("max_seconds", max_seconds);
    v("seed", seed);
    v("step", step);
    v("threads", threads);
  }

  /// @throws ConfigError naming the key.
  void validate() const {
    if (!(lr > 0.0)) throw ConfigError("lr: must be > 0, got " + std::to_string(lr));
    if (batch_size < 1) throw ConfigError("batch_size: must be >= 1, got " + std::to_string(batch_size));
    if (!(holdout_ratio >= 0.0 && holdout_ratio < 1.0)) {
      throw ConfigError("holdout_ratio: must be in [0, 1), got " + std::to_string(holdout_ratio));
    }
    if (max_holdout < 0) throw ConfigError("max_holdout: must be >= 0, got " + std::to_string(max_holdout));
    if (!(improvement_threshold >= 0.0)) {
      throw ConfigError("improvement_threshold: must be >= 0, got " + std::to_string(improvement_threshold));
    }
    if (max_epochs_since_update < 0) {
      throw ConfigError("max_epochs_since_update: must be >= 0, got " +
                        std::to_string(max_epochs_since_update));
    }
    if (max_epochs < 0) throw ConfigError("max_epochs: must be >= 0, got " + std::to_string(max_epochs));
    if (!(max_seconds >= 0.0))
      throw ConfigError("max_seconds: must be >= 0, got " + std::to_string(max_seconds));
    if (step != "fused" && step != "autograd") {
      throw ConfigError("step: expected \"fused\" or \"autograd\", got \"" + step + "\"");
    }
    if (threads != 1 && threads != 2)
      throw ConfigError("threads: must be 1 or 2, got " + std::to_string(threads));
  }
};

/// One training epoch.
struct EnsembleEpoch {
  int64_t epoch = 0;                ///< 1-based
  double train_loss = 0.0;          ///< mean over minibatches of the full loss (§3.3)
  std::vector<double> holdout_mse;  ///< per member, mean-only MSE on the holdout split (raw units)
  std::vector<int64_t> improved;    ///< members whose snapshot was replaced this epoch
  int64_t epochs_since_update = 0;
  double seconds = 0.0;  ///< wall-clock since fit() started

  /// Flat metrics row: epoch, train_loss, holdout_mse (mean), holdout_mse/<i>, epochs_since_update, seconds.
  [[nodiscard]] Metrics to_metrics() const {
    Metrics m;
    m.set("epoch", static_cast<double>(epoch));
    m.set("train_loss", train_loss);
    double mean = 0.0;
    for (double x : holdout_mse) mean += x;
    m.set("holdout_mse", holdout_mse.empty() ? 0.0 : mean / static_cast<double>(holdout_mse.size()));
    for (std::size_t i = 0; i < holdout_mse.size(); ++i)
      m.set("holdout_mse/" + std::to_string(i), holdout_mse[i]);
    m.set("epochs_since_update", static_cast<double>(epochs_since_update));
    m.set("seconds", seconds);
    return m;
  }
};

/// What fit() returns.
struct EnsembleFitReport {
  std::vector<EnsembleEpoch> history;    ///< one entry per epoch
  std::vector<double> best_holdout_mse;  ///< per member, after restoring the best snapshots
  std::vector<int64_t> elites;           ///< chosen elites, best first
  /// Mean over the elites of the holdout MSE per output dimension ([Δobs…, reward], raw units): which
  /// quantities the model predicts badly (the training split when there is no holdout).
  std::vector<double> holdout_mse_per_dim;
  int64_t train_size = 0;
  int64_t holdout_size = 0;
  /// Why training ended: "early_stopping", "max_epochs" or "max_seconds".
  std::string stop_reason;
  double seconds = 0.0;
  [[nodiscard]] int64_t epochs() const { return static_cast<int64_t>(history.size()); }
};

}  // namespace mopo::models
