/// @file model_rollout.hpp
/// @brief MOPO's model rollouts (Algorithm 2, lines 4-9): h-step branches from dataset states in the
/// learned model, with penalised rewards, into a RolloutBuffer.
///
/// One model step for the B rows still alive (original `fake_env.py`, mopo-algorithm.md §5.1):
///  1. a ~ π(·|s) (the current stochastic policy), or a ~ U[-1, 1] in random-action mode (the OOD tasks);
///  2. all E members predict N(μ_i, σ_i²) over [s', r] in raw units;
///  3. per row, one member drawn uniformly from the elites gives (ŝ', r̂) = μ_i + σ_i ⊙ ε;
///  4. r̃ = r̂ − λ·u(s,a) with u from the penalty strategy over **all** members (Eq. 5);
///  5. done = termination_fn(s, a, ŝ') (or a halting strategy's HALT);
///  6. (s, a, r̃, ŝ', done) is stored; only rows with done = 0 continue.
/// Beyond the original: rows whose prediction is not finite (a diverging model) are dropped and counted,
/// instead of poisoning the buffer with NaN.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/core/metrics.hpp"
#include "mopo/core/random.hpp"
#include "mopo/core/types.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/detail/detected.hpp"
#include "mopo/models/ensemble_prediction.hpp"
#include "mopo/penalty/penalty_policy.hpp"
#include "mopo/rollout/rollout_buffer.hpp"

namespace mopo::rollout {

namespace detail {
template <class M>
using predict_into_t = decltype(std::declval<const M&>().predict_into(
    std::declval<const torch::Tensor&>(), std::declval<const torch::Tensor&>(),
    std::declval<models::EnsemblePrediction&>()));
template <class M>
using ensemble_size_t = decltype(std::declval<const M&>().ensemble_size());
template <class M>
using output_dim_t = decltype(std::declval<const M&>().output_dim());
/// Models that can predict into caller-owned [E, B, D] tensors (models::GaussianEnsemble can).
template <class M>
inline constexpr bool predicts_into_v = mopo::detail::is_detected_v<predict_into_t, M>&&
    mopo::detail::is_detected_v<ensemble_size_t, M>&& mopo::detail::is_detected_v<output_dim_t, M>;
}  // namespace detail

/// Rollout settings (defaults: the original's `rollout_batch_size` 50e3; h is per task, §9).
struct RolloutOptions {
  int64_t rollout_batch = 50000;  ///< start states per rollout
  /// Rows per policy call. The policy's hidden activations for 50 000 rows are ~51 MB each; glibc
  /// mmaps blocks over 32 MB and page-faults them in on every call (~10x slower on the project's VMs),
  /// so the policy runs on chunks whose temporaries stay in the reusable heap.
  int64_t policy_chunk_rows = 8192;
  int64_t horizon = 5;          ///< h, model steps per branch
  bool random_actions = false;  ///< a ~ U[-1, 1] instead of the policy (halfcheetah-jump, ant-angle)

  template <class V>
  void visit(V&& v) {
    v("rollout_batch", rollout_batch);
    v("horizon", horizon);
    v("random_actions", random_actions);
    v("policy_chunk_rows", policy_chunk_rows);
  }
  void validate() const {
    if (rollout_batch <= 0)
      throw ConfigError("rollout_batch: must be > 0, got " + std::to_string(rollout_batch));
    if (horizon <= 0) throw ConfigError("horizon: must be > 0, got " + std::to_string(horizon));
    if (policy_chunk_rows <= 0) {
      throw ConfigError("policy_chunk_rows: must be > 0, got " + std::to_string(policy_chunk_rows));
    }
  }
};

/// What one rollout produced.
struct RolloutStats {
  int64_t starts = 0;          ///< start states
  int64_t transitions = 0;     ///< rows stored
  int64_t terminated = 0;      ///< rows that ended with done = 1 (termination function or HALT)
  int64_t halted = 0;          ///< of which forced by a halting penalty
  int64_t nonfinite = 0;       ///< rows dropped because the model predicted NaN/Inf
  double mean_raw_reward = 0;  ///< mean r̂ of stored rows
  double mean_penalty = 0;     ///< mean u
  double max_penalty = 0;      ///< max u
  double mean_reward = 0;      ///< mean r̃ = r̂ − λu
  double mean_length = 0;      ///< transitions / starts (≤ h)

  [[nodiscard]] Metrics to_metrics() const {
    return {{"starts", static_cast<double>(starts)},
            {"transitions", static_cast<double>(transitions)},
            {"terminated", static_cast<double>(terminated)},
            {"halted", static_cast<double>(halted)},
            {"nonfinite", static_cast<double>(nonfinite)},
            {"raw_reward", mean_raw_reward},
            {"penalty", mean_penalty},
            {"max_penalty", max_penalty},
            {"penalized_reward", mean_reward},
            {"length", mean_length}};
  }
};

/// Runs model rollouts with a penalty strategy.
///
/// @tparam PenaltyT a penalty strategy (see penalty_policy.hpp).
/// The callables are:
///  - `policy(obs [B, O]) → actions [B, A]` in [-1, 1] (stochastic; called under NoGradGuard);
///  - `terminal(obs, act, next_obs) → bool/float [B]` (the task's termination function);
///  - for oracle penalties, `truth(obs, act) → penalty::GroundTruth` (the simulator's true_step).
/// The model must provide `predict(obs, act) → EnsemblePrediction` and `elites() → std::vector<int64_t>`
/// (models::GaussianEnsemble does).
/// Not thread-safe: run() reuses prediction buffers held by the object (one ModelRollout per thread).
template <class PenaltyT>
class ModelRollout {
 public:
  ModelRollout(penalty::PenaltyPolicy<PenaltyT> penalty, RolloutOptions options)
      : penalty_(std::move(penalty)), options_(std::move(options)) {
    options_.validate();
  }
  /// The strategy named once: `ModelRollout<penalty::MaxStd> rollout(lambda, options);` (Eq. 5's λ).
  ModelRollout(double lambda, RolloutOptions options, PenaltyT strategy = PenaltyT{})
      : ModelRollout(penalty::PenaltyPolicy<PenaltyT>(lambda, std::move(strategy)), std::move(options)) {}

  [[nodiscard]] const RolloutOptions& options() const { return options_; }
  [[nodiscard]] const penalty::PenaltyPolicy<PenaltyT>& penalty() const { return penalty_; }

  /// For penalties that need no simulator (all but penalty::TrueError): run() without the `truth` oracle.
  template <class ModelT, class PolicyFn, class TerminalFn>
  RolloutStats run(const ModelT& model, const torch::Tensor& start_obs, PolicyFn&& policy,
                   TerminalFn&& terminal, RolloutBuffer& buffer, RandomState& rng) const {
    static_assert(
        !penalty::needs_ground_truth_v<PenaltyT>,
        "this penalty needs the simulator's ground truth: pass truth(obs, act) -> penalty::GroundTruth");
    return run(model, start_obs, std::forward<PolicyFn>(policy), std::forward<TerminalFn>(terminal), no_truth,
               buffer, rng);
  }

  /// Rolls out from `start_obs` [B, O] and appends every transition to `buffer` (which the caller
  /// has begun an epoch on). @throws ShapeError for bad shapes, ValueError if a policy action is not finite.
  template <class ModelT, class PolicyFn, class TerminalFn, class TruthFn>
  RolloutStats run(const ModelT& model, const torch::Tensor& start_obs, PolicyFn&& policy,
                   TerminalFn&& terminal, TruthFn&& truth, RolloutBuffer& buffer, RandomState& rng) const {
    mopo::detail::check_shape(start_obs, {-1, buffer.obs_dim()}, "ModelRollout start observations");
    torch::NoGradGuard no_grad;
    const auto elites = model.elites();
    RolloutStats stats;
    stats.starts = start_obs.size(0);
    double sum_raw = 0, sum_pen = 0, sum_rew = 0;
    torch::Tensor obs = start_obs.to(torch::kFloat32);
    for (int64_t step = 0; step < options_.horizon && obs.size(0) > 0; ++step) {
      const int64_t b = obs.size(0);
      torch::Tensor act;
      if (options_.random_actions) {
        act = torch::rand({b, buffer.act_dim()}, rng.generator(), obs.options()).mul_(2.0).sub_(1.0);
      } else {
        act = policy_in_chunks(policy, obs);
        mopo::detail::check_shape(act, {b, buffer.act_dim()}, "ModelRollout policy actions");
        mopo::detail::check_finite(act, "ModelRollout policy actions");
      }
      const models::EnsemblePrediction pred = predict(model, obs, act);
      const models::EnsembleSample used = models::sample_prediction(pred, elites, rng.generator());
      penalty::PenalizedReward pen;
      if constexpr (penalty::needs_ground_truth_v<PenaltyT>) {
        const penalty::GroundTruth gt = truth(obs, act);
        pen = penalty_.apply(pred, used, &gt);
      } else {
        (void)truth;
        pen = penalty_.apply(pred, used);
      }
      // Rows whose prediction (or penalty) is not finite are dropped: storing them would poison SAC.
      const torch::Tensor finite = torch::isfinite(used.next_obs)
                                       .all(1)
                                       .logical_and_(torch::isfinite(pen.reward))
                                       .logical_and_(torch::isfinite(pen.penalty));
      torch::Tensor done = terminal(obs, act, used.next_obs);
      done = done.to(torch::kBool).reshape({b}).logical_or(pen.halted);
      const int64_t kept_n = finite.sum().item<int64_t>();
      stats.nonfinite += b - kept_n;
      Batch rows;
      if (kept_n == b) {
        rows = {obs, act, pen.reward, used.next_obs, done.to(torch::kFloat32)};
      } else {
        const auto k = finite.nonzero().squeeze(1);
        rows = {obs.index_select(0, k), act.index_select(0, k), pen.reward.index_select(0, k),
                used.next_obs.index_select(0, k), done.index_select(0, k).to(torch::kFloat32)};
      }
      if (rows.size() > 0) {
        buffer.add(rows);
        const torch::Tensor raw = used.reward.masked_select(finite);
        const torch::Tensor u = pen.penalty.masked_select(finite);
        sum_raw += raw.sum().item<double>();
        sum_pen += u.sum().item<double>();
        sum_rew += rows.rewards.sum().item<double>();
        stats.max_penalty = std::max(stats.max_penalty, u.max().item<double>());
        stats.transitions += rows.size();
        stats.terminated += done.logical_and(finite).sum().item<int64_t>();
        stats.halted += pen.halted.logical_and(finite).sum().item<int64_t>();
      }
      const auto alive = finite.logical_and(done.logical_not()).nonzero().squeeze(1);
      obs = used.next_obs.index_select(0, alive);
    }
    if (stats.transitions > 0) {
      const auto n = static_cast<double>(stats.transitions);
      stats.mean_raw_reward = sum_raw / n;
      stats.mean_penalty = sum_pen / n;
      stats.mean_reward = sum_rew / n;
    }
    stats.mean_length =
        stats.starts > 0 ? static_cast<double>(stats.transitions) / static_cast<double>(stats.starts) : 0;
    return stats;
  }

 private:
  // The oracle of run()'s short form; never called (the penalty needs no ground truth there).
  static penalty::GroundTruth no_truth(const torch::Tensor& /*obs*/, const torch::Tensor& /*act*/) {
    throw ValueError("ModelRollout: this penalty needs no ground truth");
  }

  // The [E, B, D] mean and std of a step are 2 × 25 MB at B = 50 000: allocated afresh each step, glibc
  // serves them by mmap and page-faults them in every time (performance-notes.md §1) unless the program
  // tunes malloc. They are views of storage kept across steps and rollouts instead (rows only shrink
  // within a rollout, so one allocation per rollout size).
  template <class ModelT>
  models::EnsemblePrediction predict(const ModelT& model, const torch::Tensor& obs,
                                     const torch::Tensor& act) const {
    if constexpr (detail::predicts_into_v<ModelT>) {
      const int64_t n = model.ensemble_size() * obs.size(0) * model.output_dim();
      const auto opts = obs.options().dtype(torch::kFloat32);
      for (torch::Tensor* t : {&mean_store_, &std_store_}) {
        if (!t->defined() || t->numel() < n || t->device() != opts.device()) *t = torch::empty({n}, opts);
      }
      const std::vector<int64_t> shape = {model.ensemble_size(), obs.size(0), model.output_dim()};
      models::EnsemblePrediction pred{mean_store_.narrow(0, 0, n).view(shape),
                                      std_store_.narrow(0, 0, n).view(shape)};
      model.predict_into(obs, act, pred);
      return pred;
    } else {
      return model.predict(obs, act);
    }
  }

  template <class PolicyFn>
  torch::Tensor policy_in_chunks(PolicyFn& policy, const torch::Tensor& obs) const {
    const int64_t b = obs.size(0);
    if (b <= options_.policy_chunk_rows) return policy(obs);
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < b; i += options_.policy_chunk_rows) {
      parts.push_back(policy(obs.narrow(0, i, std::min(options_.policy_chunk_rows, b - i))));
    }
    return torch::cat(parts);
  }

  penalty::PenaltyPolicy<PenaltyT> penalty_;
  RolloutOptions options_;
  mutable torch::Tensor mean_store_;  // storage behind each step's prediction (see predict())
  mutable torch::Tensor std_store_;
};

}  // namespace mopo::rollout
