/// @file penalty_policy.hpp
/// @brief The penalty concept and PenaltyPolicy<Strategy>: MOPO's penalised reward r̃ = r̂ − λ·u(s,a).
///
/// MOPO (Yu et al. 2020, Eq. 5 / Algorithm 2): the policy is trained on the uncertainty-penalised MDP
/// with reward r̃(s,a) = r̂(s,a) − λ·u(s,a), where u is an estimate of the model error.
///
/// ## The penalty concept (docs/concepts.md#penalty)
/// A strategy is a small value type:
/// @code
/// struct MyPenalty {
///   static constexpr std::string_view kName = "my_penalty";
///   // u(s,a) for every row: [B], >= 0, no gradient. `pred` holds all members' [E, B, D] Gaussians
///   // over [next_obs, reward] in raw units.
///   torch::Tensor operator()(const mopo::models::EnsemblePrediction& pred) const;
/// };
/// @endcode
/// An *oracle* strategy (needs the simulator's true outcome, like penalty::TrueError) instead provides
/// @code
///   static constexpr bool kNeedsGroundTruth = true;
///   torch::Tensor operator()(const mopo::models::EnsemblePrediction& pred,
///                            const mopo::models::EnsembleSample& used,     // the transition the rollout
///                            keeps const mopo::penalty::GroundTruth& truth) const;
/// @endcode
/// A *halting* strategy (penalty::HardThreshold, MOReL-style) additionally provides
/// `torch::Tensor halts(const torch::Tensor& u) const` (bool [B]) and `double halt_reward() const`:
/// halted transitions become terminal with that reward instead of being penalised.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "mopo/core/error.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/detail/detected.hpp"
#include "mopo/models/ensemble_prediction.hpp"

namespace mopo::penalty {

using models::EnsemblePrediction;
using models::EnsembleSample;

/// The simulator's outcome for the same (s, a) rows: next observation [B, O] and reward [B].
struct GroundTruth {
  torch::Tensor next_obs;
  torch::Tensor reward;
};

namespace detail {
template <class P>
using plain_call_t = decltype(std::declval<const P&>()(std::declval<const EnsemblePrediction&>()));
template <class P>
using oracle_call_t = decltype(std::declval<const P&>()(std::declval<const EnsemblePrediction&>(),
                                                        std::declval<const EnsembleSample&>(),
                                                        std::declval<const GroundTruth&>()));
template <class P>
using name_t = decltype(std::string_view(P::kName));
template <class P>
using needs_truth_flag_t = decltype(P::kNeedsGroundTruth);
template <class P>
using halts_t = decltype(std::declval<const P&>().halts(std::declval<const torch::Tensor&>()));
template <class P>
using halt_reward_t = decltype(std::declval<const P&>().halt_reward());
}  // namespace detail

/// True when P needs the simulator's ground truth (P::kNeedsGroundTruth == true).
template <class P>
constexpr bool needs_ground_truth() {
  if constexpr (mopo::detail::is_detected_v<detail::needs_truth_flag_t, P>) {
    return static_cast<bool>(P::kNeedsGroundTruth);
  } else {
    return false;
  }
}
template <class P>
inline constexpr bool needs_ground_truth_v = needs_ground_truth<P>();

/// True when P satisfies the penalty concept (plain or oracle form, with a kName).
template <class P>
inline constexpr bool is_penalty_v =
    mopo::detail::is_detected_v<detail::name_t, P> &&
    (needs_ground_truth_v<P>
         ? mopo::detail::is_detected_convertible_v<torch::Tensor, detail::oracle_call_t, P>
         : mopo::detail::is_detected_convertible_v<torch::Tensor, detail::plain_call_t, P>);

/// True when P is a halting strategy (halts(u) and halt_reward()).
template <class P>
inline constexpr bool is_halting_v = mopo::detail::is_detected_v<detail::halts_t, P>&&
    mopo::detail::is_detected_convertible_v<double, detail::halt_reward_t, P>;

/// What PenaltyPolicy::apply returns, all [B].
struct PenalizedReward {
  torch::Tensor reward;   ///< r̃ = r̂ − λ·u (or the halt reward where halted)
  torch::Tensor penalty;  ///< u(s,a) ≥ 0
  torch::Tensor halted;   ///< bool: transition forced terminal by a halting strategy (all false otherwise)
};

/// Holds λ and a strategy; turns model predictions into penalised rewards.
/// @tparam StrategyT a type satisfying the penalty concept (see the file comment).
template <class StrategyT>
class PenaltyPolicy {
  static_assert(
      is_penalty_v<StrategyT>,
      "PenaltyPolicy<StrategyT>: StrategyT must provide static constexpr std::string_view kName and "
      "torch::Tensor operator()(const EnsemblePrediction&) const (or the oracle form with "
      "kNeedsGroundTruth = true); see docs/concepts.md#penalty");

 public:
  using Strategy = StrategyT;
  static constexpr bool kNeedsGroundTruth = needs_ground_truth_v<StrategyT>;

  /// @param lambda penalty coefficient λ ≥ 0 (finite).  @throws ValueError otherwise.
  explicit PenaltyPolicy(double lambda = 1.0, StrategyT strategy = StrategyT{})
      : lambda_(lambda), strategy_(std::move(strategy)) {
    if (!std::isfinite(lambda) || lambda < 0) {
      throw ValueError("PenaltyPolicy<" + std::string(StrategyT::kName) +
                       ">: lambda must be finite and >= 0, got " + std::to_string(lambda));
    }
  }

  [[nodiscard]] double lambda() const { return lambda_; }
  [[nodiscard]] const StrategyT& strategy() const { return strategy_; }
  [[nodiscard]] static constexpr std::string_view name() { return StrategyT::kName; }

  /// u(s,a) alone, [B]. For oracle strategies pass `used` and `truth`.
  [[nodiscard]] torch::Tensor uncertainty(const EnsemblePrediction& pred,
                                          const EnsembleSample* used = nullptr,
                                          const GroundTruth* truth = nullptr) const {
    torch::NoGradGuard no_grad;
    torch::Tensor u;
    if constexpr (kNeedsGroundTruth) {
      if (used == nullptr || truth == nullptr || !truth->next_obs.defined()) {
        throw ValueError(std::string("penalty ") + std::string(StrategyT::kName) +
                         " needs the simulator's ground truth (an oracle penalty); none was given");
      }
      u = strategy_(pred, *used, *truth);
    } else {
      (void)used;
      (void)truth;
      u = strategy_(pred);
    }
    mopo::detail::check_shape(u, {pred.mean.size(1)},
                              std::string("penalty ") + std::string(StrategyT::kName));
    return u;
  }

  /// r̃ = r̂ − λ·u for the transitions `used` (their reward [B] is r̂).
  [[nodiscard]] PenalizedReward apply(const EnsemblePrediction& pred, const EnsembleSample& used,
                                      const GroundTruth* truth = nullptr) const {
    torch::NoGradGuard no_grad;
    mopo::detail::check_shape(used.reward, {pred.mean.size(1)}, "PenaltyPolicy::apply reward");
    PenalizedReward out;
    out.penalty = uncertainty(pred, &used, truth);
    if constexpr (is_halting_v<StrategyT>) {
      // MOReL (Kidambi et al. 2020): unknown state-action pairs lead to an absorbing HALT state with a
      // fixed negative reward instead of a graded penalty.
      out.halted = strategy_.halts(out.penalty).to(torch::kBool);
      out.reward =
          torch::where(out.halted, torch::full_like(used.reward, strategy_.halt_reward()), used.reward);
    } else {
      out.halted = torch::zeros_like(used.reward, torch::kBool);
      out.reward = lambda_ == 0.0 ? used.reward.clone() : used.reward - lambda_ * out.penalty;
    }
    return out;
  }

 private:
  double lambda_;
  StrategyT strategy_;
};

namespace detail {
inline void check_prediction(const EnsemblePrediction& pred, const char* who) {
  mopo::detail::check_shape(pred.mean, {-1, -1, -1}, std::string(who) + " prediction mean");
  mopo::detail::check_shape(pred.std, {pred.mean.size(0), pred.mean.size(1), pred.mean.size(2)},
                            std::string(who) + " prediction std");
}
}  // namespace detail

}  // namespace mopo::penalty
