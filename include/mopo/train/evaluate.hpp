/// @file evaluate.hpp
/// @brief Policy evaluation on a real environment: deterministic episodes of a SAC agent (the policy
/// tanh(μ(s)), mopo-algorithm.md §8), actions mapped from [−1, 1] to the environment's box.
///
/// Used by the online SAC trainer, MopoTrainer, the dataset zoo and any hand-composed loop
/// (examples/compose_mopo.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/env/environment.hpp"

namespace mopo::train {

/// One evaluation: statistics of the undiscounted returns of deterministic episodes.
struct EvalResult {
  int64_t step = 0;
  double return_mean = 0;
  double return_std = 0;
  double return_min = 0;
  double return_max = 0;
  double length_mean = 0;
};

/// Maps an action in [−1, 1]^A to the environment's box: low + (a + 1)(high − low)/2.
class ActionScaler {
 public:
  explicit ActionScaler(const env::Box& box) : low_(box.low), high_(box.high) {
    if (low_.size() != high_.size()) throw ShapeError("action_space: low and high differ in size");
    for (std::size_t i = 0; i < low_.size(); ++i) {
      if (!std::isfinite(low_[i]) || !std::isfinite(high_[i]) || !(low_[i] < high_[i])) {
        throw ValueError("action_space: SAC needs finite bounds low < high, got [" + std::to_string(low_[i]) +
                         ", " + std::to_string(high_[i]) + "] at index " + std::to_string(i));
      }
    }
  }
  [[nodiscard]] env::Vector operator()(const env::Vector& a) const {
    env::Vector out(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) out[i] = low_[i] + (a[i] + 1.0) * 0.5 * (high_[i] - low_[i]);
    return out;
  }
  [[nodiscard]] std::size_t size() const { return low_.size(); }

 private:
  env::Vector low_, high_;
};

/// Runs `episodes` deterministic episodes of `agent` on `env`, episode e reset with the seed `next_seed()`
/// returns (any callable giving uint64_t). The one evaluation of the library: the online SAC trainer,
/// MopoTrainer, the dataset zoo's checkpoints and hand-composed loops all use it.
/// `return_mean` is the sum of every reward, in episode order, divided by `episodes` (so the zoo's
/// checkpoint choice keeps its bits); std/min/max are over the per-episode returns.
/// @param max_episode_steps extra time limit (0 = rely on the environment's `truncated`).
template <class EnvT, class NextSeed, class = std::enable_if_t<std::is_invocable_r_v<uint64_t, NextSeed&>>>
EvalResult evaluate(EnvT& env, agents::SACAgent& agent, int64_t episodes, NextSeed&& next_seed,
                    int64_t max_episode_steps = 0) {
  static_assert(env::is_environment_v<EnvT>, "EnvT must satisfy the environment concept (docs/concepts.md)");
  if (episodes <= 0) throw ValueError("evaluate: episodes must be > 0, got " + std::to_string(episodes));
  const ActionScaler scale(env.action_space());
  std::vector<double> returns;
  double total_length = 0;
  double total_reward = 0;
  for (int64_t e = 0; e < episodes; ++e) {
    auto obs = env.reset(next_seed());
    double ret = 0;
    int64_t len = 0;
    for (;;) {
      const auto res = env.step(scale(agent.act(obs, /*deterministic=*/true)));
      ret += res.reward;
      total_reward += res.reward;
      ++len;
      obs = res.observation;
      if (res.terminated || res.truncated || (max_episode_steps > 0 && len >= max_episode_steps)) break;
      if (max_episode_steps == 0 && len >= 100'000'000) {
        throw ValueError(
            "evaluate: episode exceeded 1e8 steps; the environment never ends episodes "
            "(set max_episode_steps)");
      }
    }
    returns.push_back(ret);
    total_length += static_cast<double>(len);
  }
  EvalResult r;
  const double n = static_cast<double>(returns.size());
  r.return_mean = total_reward / n;
  double sq = 0;
  for (double x : returns) sq += (x - r.return_mean) * (x - r.return_mean);
  r.return_std = std::sqrt(sq / n);
  r.return_min = *std::min_element(returns.begin(), returns.end());
  r.return_max = *std::max_element(returns.begin(), returns.end());
  r.length_mean = total_length / n;
  return r;
}

/// evaluate() with the episodes' reset seeds drawn from `rng` (rng.next_seed()).
template <class EnvT>
EvalResult evaluate(EnvT& env, agents::SACAgent& agent, int64_t episodes, RandomState& rng,
                    int64_t max_episode_steps = 0) {
  return evaluate(
      env, agent, episodes, [&rng] { return rng.next_seed(); }, max_episode_steps);
}

}  // namespace mopo::train
