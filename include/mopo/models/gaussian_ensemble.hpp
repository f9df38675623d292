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
/// This header declares GaussianEnsemble and includes its parts, one job each (docs/ensemble.md#parts):
///
/// | header | job |
/// |---|---|
/// | ensemble_network.hpp | GaussianEnsembleNet, the LibTorch module, and the log-variance soft clamp |
/// | ensemble_training.hpp | fit() (holdout split, bootstrap, early stopping, elite selection),
/// evaluate_mse() | | ensemble_inference.hpp | predict() / predict_into() (the fast path),
/// predict_reference(), sample() | | ensemble_persistence.hpp | save(), load() and the file format |
///
/// Include this header (or any part: each includes the others through it).
///
/// Example:
/// @code
/// mopo::models::GaussianEnsemble model(obs_dim, act_dim);          // EnsembleOptions defaults
/// auto report = model.fit(dataset);                               // EnsembleTrainOptions defaults
/// auto pred = model.predict(obs, act);                            // mean/std [7, B, obs_dim + 1]
/// auto step = model.sample(obs, act, rng.generator());            // next_obs [B, O], reward [B]
/// model.save("dynamics.pt");
/// auto again = mopo::models::GaussianEnsemble::load("dynamics.pt");
/// @endcode
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/core/normalizer.hpp"
#include "mopo/core/random.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/models/ensemble_network.hpp"
#include "mopo/models/ensemble_options.hpp"
#include "mopo/models/ensemble_prediction.hpp"

namespace mopo::models {

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
  // Training (ensemble_training.hpp)
  // ---------------------------------------------------------------------------------------------

  /// Trains the ensemble on transitions obs [N, O], act [N, A], next_obs [N, O], rew [N] or [N, 1],
  /// starting from its current weights (a new model: its initialisation) and refitting the input
  /// normaliser, exactly as MOPO (mopo-algorithm.md §3.5): random holdout split of
  /// min(⌊ratio·N⌋, max_holdout) rows; normaliser fitted on the training split; bootstrap indices drawn
  /// once per member, reshuffled every epoch; Adam on the full loss (§3.3); per-member snapshot when its
  /// holdout MSE improves by more than `improvement_threshold` (relative); stop after more than
  /// `max_epochs_since_update` idle epochs (or the epoch/time limits); restore every member's best
  /// snapshot; elites = the `num_elites` members with the lowest holdout MSE.
  /// @param rng draws the split, bootstrap and shuffles; null: a RandomState seeded with `options.seed`.
  /// @param on_epoch (optional) sees every epoch's record, e.g. for progress output.
  /// @throws ShapeError / ValueError on malformed or non-finite data, ConfigError on bad options.
  EnsembleFitReport fit(const torch::Tensor& obs, const torch::Tensor& act, const torch::Tensor& next_obs,
                        const torch::Tensor& rew, const EnsembleTrainOptions& options = {},
                        RandomState* rng = nullptr, const EpochCallback& on_epoch = {});

  /// fit() on a dataset with D4RL field names — `observations`, `actions`, `next_observations`, `rewards`
  /// (e.g. mopo::data::TransitionDataset); the same result as the tensor overload on those tensors. The
  /// model learns from the true next observations (the Kit's choice; mopo-algorithm.md §3.4), so
  /// `next_observations` must be present. @throws ValueError if it is not.
  template <class DatasetT, class = decltype(std::declval<const DatasetT&>().next_observations)>
  EnsembleFitReport fit(const DatasetT& dataset, const EnsembleTrainOptions& options = {},
                        RandomState* rng = nullptr, const EpochCallback& on_epoch = {});

  /// Mean-only MSE of every member on transitions (the holdout metric, raw target units), [E] float64.
  /// @throws ValueError if the model is untrained; ShapeError / ValueError on bad input.
  [[nodiscard]] torch::Tensor evaluate_mse(const torch::Tensor& obs, const torch::Tensor& act,
                                           const torch::Tensor& next_obs, const torch::Tensor& rew) const;

  // ---------------------------------------------------------------------------------------------
  // Inference (ensemble_inference.hpp). predict()/predict_into() is the one prediction path;
  // predict_reference() is the plain-LibTorch reference it is tested and benchmarked against.
  // ---------------------------------------------------------------------------------------------

  /// Per-member mean and std of [next_obs, reward] in raw units, each [E, B, O + 1]
  /// (next_obs = obs + predicted Δobs). The fast path: no autograd, chunked, reused buffers.
  /// @throws ValueError (untrained, NaN/Inf input), ShapeError (dims).
  [[nodiscard]] EnsemblePrediction predict(const torch::Tensor& obs, const torch::Tensor& act) const;

  /// predict() writing into `out`, whose tensors are reused when they already have the right shape,
  /// dtype and layout (so a rollout loop allocates nothing per step).
  void predict_into(const torch::Tensor& obs, const torch::Tensor& act, EnsemblePrediction& out) const;

  /// The reference for predict(): the same prediction through the plain LibTorch module path (one
  /// unchunked GaussianEnsembleNet::forward over [E, B, ·], fresh temporaries). Tests check predict()
  /// against it; it is the "before" of the inference benchmark. Not for production use (slow).
  [[nodiscard]] EnsemblePrediction predict_reference(const torch::Tensor& obs,
                                                     const torch::Tensor& act) const;

  /// MOPO's model step: per row a uniformly chosen elite, next_obs and reward drawn from its Gaussian
  /// (predict() then sample_prediction()).
  /// @param deterministic return the chosen elite's mean instead of a draw.
  [[nodiscard]] EnsembleSample sample(const torch::Tensor& obs, const torch::Tensor& act,
                                      torch::Generator& generator, bool deterministic = false) const;

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
  // Persistence (ensemble_persistence.hpp)
  // ---------------------------------------------------------------------------------------------

  /// Writes weights, logvar bounds, spectral-norm vectors, normaliser, elites, dims and options to one
  /// file, atomically. @throws ValueError if untrained, IoError if the file cannot be written.
  void save(const std::filesystem::path& file) const;

  /// Reads a file written by save(). @throws IoError naming the file if it is missing or malformed.
  static GaussianEnsemble load(const std::filesystem::path& file);

  /// Reads the `size` bytes of a file written by save() from memory, with the checks of load(path); `name`
  /// names them in errors. @throws IoError naming `name`.
  static GaussianEnsemble load(const char* data, std::size_t size, const std::string& name);

 private:
  static constexpr const char* kFormat = "mopo.GaussianEnsemble.v1";

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

  // ensemble_training.hpp
  Transitions check_transitions(const torch::Tensor& obs, const torch::Tensor& act,
                                const torch::Tensor& next_obs, const torch::Tensor& rew,
                                const std::string& what) const;
  /// Mean-only squared error of every member per output dimension over normalised inputs x [M, in] and
  /// targets y [M, D], averaged over rows: [E, D] float64 (chunked reference forward, no grad).
  torch::Tensor mse_per_member_dim(const torch::Tensor& x, const torch::Tensor& y) const;
  std::vector<double> mse_per_member(const torch::Tensor& x, const torch::Tensor& y) const;
  /// [E, D] per-dimension MSE → per-member MSE over all dimensions (non-finite → +inf).
  static std::vector<double> member_mse(const torch::Tensor& per_dim);
  /// The k members with the lowest MSE, best first (stable).
  static std::vector<int64_t> rank_members(const std::vector<double>& mse, int64_t k);

  // ensemble_inference.hpp
  /// The reference forward: normalised inputs x [B, in] → the module's {mean, logvar} of every member,
  /// each [E, B, O + 1] ([Δobs, reward]), no grad. predict_reference() and the training metric use it.
  std::pair<torch::Tensor, torch::Tensor> forward_reference(const torch::Tensor& x) const;
  /// Weights as applied at inference (W or W/σ), one per layer.
  std::vector<torch::Tensor> effective_weights() const;
  static void ensure_buffer(torch::Tensor& t, std::initializer_list<int64_t> sizes,
                            const torch::TensorOptions& opts);
  static void ensure_capacity(torch::Tensor& t, int64_t numel, const torch::TensorOptions& opts);

  // ensemble_persistence.hpp
  static GaussianEnsemble from_archive(torch::serialize::InputArchive& archive, const std::string& file,
                                       std::uintmax_t file_bytes);

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

// The parts (each includes this header first, so any of them may be included on its own).
#include "mopo/models/ensemble_inference.hpp"
#include "mopo/models/ensemble_persistence.hpp"
#include "mopo/models/ensemble_training.hpp"
