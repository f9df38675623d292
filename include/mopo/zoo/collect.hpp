/// @file collect.hpp
/// @brief Recording D4RL rows from an environment: whole episodes of a policy (collect_data.py's rules,
/// environments.md §10.3), and the row storage the behaviour run records through.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/data/transition_dataset.hpp"
#include "mopo/detail/detected.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/train/evaluate.hpp"

namespace mopo::zoo {
namespace detail {
template <class E>
using qpos_t = decltype(std::declval<const E&>().qpos());
template <class E>
using qvel_t = decltype(std::declval<const E&>().qvel());
template <class E>
inline constexpr bool has_state_v =
    mopo::detail::is_detected_v<qpos_t, E>&& mopo::detail::is_detected_v<qvel_t, E>;

/// Growable row storage for a dataset being collected (doubles, converted at the end).
struct Rows {
  std::vector<double> obs, next_obs, act, rew, qpos, qvel;
  std::vector<bool> term, timeout;
  int64_t n = 0, obs_dim = 0, act_dim = 0, nq = 0, nv = 0;

  /// The simulator's full state before the row's action (infos/qpos, infos/qvel).
  template <class EnvT>
  void add_state(const EnvT& env) {
    const auto qp = env.qpos();
    const auto qv = env.qvel();
    nq = static_cast<int64_t>(qp.size());
    nv = static_cast<int64_t>(qv.size());
    qpos.insert(qpos.end(), qp.begin(), qp.end());
    qvel.insert(qvel.end(), qv.begin(), qv.end());
  }
  /// One row; `action` in the environment's units. D4RL: a time-limit step is a time-out, never also a
  /// terminal (collect_data.py: terminal = done and t != max_path).
  void add(const env::Vector& o, const env::Vector& action, double reward, const env::Vector& next,
           bool terminated, bool time_limit) {
    obs.insert(obs.end(), o.begin(), o.end());
    next_obs.insert(next_obs.end(), next.begin(), next.end());
    act.insert(act.end(), action.begin(), action.end());
    rew.push_back(reward);
    term.push_back(terminated && !time_limit);
    timeout.push_back(time_limit);
    ++n;
  }
  void append(const Rows& o) {
    obs.insert(obs.end(), o.obs.begin(), o.obs.end());
    next_obs.insert(next_obs.end(), o.next_obs.begin(), o.next_obs.end());
    act.insert(act.end(), o.act.begin(), o.act.end());
    rew.insert(rew.end(), o.rew.begin(), o.rew.end());
    qpos.insert(qpos.end(), o.qpos.begin(), o.qpos.end());
    qvel.insert(qvel.end(), o.qvel.begin(), o.qvel.end());
    term.insert(term.end(), o.term.begin(), o.term.end());
    timeout.insert(timeout.end(), o.timeout.begin(), o.timeout.end());
    n += o.n;
    nq = std::max(nq, o.nq);
    nv = std::max(nv, o.nv);
  }
  void clear() {
    obs.clear(), next_obs.clear(), act.clear(), rew.clear(), qpos.clear(), qvel.clear();
    term.clear(), timeout.clear();
    n = 0;
  }

  [[nodiscard]] data::TransitionDataset to_dataset(int64_t rows) const {
    rows = std::min(rows, n);
    auto mat = [&](const std::vector<double>& v, int64_t cols) {
      return torch::tensor(std::vector<double>(v.begin(), v.begin() + rows * cols), torch::kFloat64)
          .reshape({rows, cols})
          .to(torch::kFloat32);
    };
    auto flags = [&](const std::vector<bool>& v) {
      auto t = torch::zeros({rows}, torch::kBool);
      auto* p = t.data_ptr<bool>();
      for (int64_t i = 0; i < rows; ++i) p[i] = v[static_cast<std::size_t>(i)];
      return t;
    };
    data::TransitionDataset d;
    d.observations = mat(obs, obs_dim);
    d.next_observations = mat(next_obs, obs_dim);
    d.actions = mat(act, act_dim);
    d.rewards = mat(rew, 1).reshape({-1});
    d.terminals = flags(term);
    d.timeouts = flags(timeout);
    if (nq > 0) {
      d.qpos = mat(qpos, nq);
      d.qvel = mat(qvel, nv);
    }
    return d;
  }
};
}  // namespace detail

/// Runs whole episodes of `policy` (obs → action in the environment's units) and records D4RL rows until
/// at least `size` rows exist, then cuts to `size` (collect_data.py: the last episode may be cut).
/// terminal = terminated and t != max_path; timeout = (t == max_path) or the environment truncated.
/// Records qpos/qvel *before* each action when EnvT exposes them.
template <class EnvT, class PolicyT>
data::TransitionDataset collect(EnvT& env, PolicyT&& policy, int64_t size, int64_t max_path, uint64_t seed) {
  static_assert(env::is_environment_v<EnvT>,
                "EnvT must satisfy mopo::env::is_environment_v (docs/concepts.md)");
  if (size <= 0 || max_path <= 0) throw ValueError("zoo::collect: size and max_path must be > 0");
  detail::Rows all, episode;
  all.obs_dim = episode.obs_dim = env.observation_dim();
  all.act_dim = episode.act_dim = env.action_dim();
  std::mt19937_64 seeds(splitmix64(seed));
  while (all.n < size) {
    episode.clear();
    env::Vector obs = env.reset(seeds());
    for (int64_t t = 1;; ++t) {
      if constexpr (detail::has_state_v<EnvT>) episode.add_state(env);
      const env::Vector action = policy(obs);
      const env::StepResult res = env.step(action);
      const bool timeout = t == max_path || res.truncated;
      episode.add(obs, action, res.reward, res.observation, res.terminated, timeout);
      obs = res.observation;
      if (res.terminated || timeout) break;
    }
    all.append(episode);
  }
  return all.to_dataset(size);
}

/// Uniform random actions in the action box (D4RL v2 random datasets: env.action_space.sample()).
template <class EnvT>
data::TransitionDataset collect_random(EnvT& env, int64_t size, int64_t max_path, uint64_t seed) {
  const env::Box box = env.action_space();
  std::mt19937_64 rng(splitmix64(seed ^ 0xA11CEull));
  std::uniform_real_distribution<double> u(0.0, 1.0);
  return collect(
      env,
      [&](const env::Vector&) {
        env::Vector a(box.size());
        for (std::size_t i = 0; i < a.size(); ++i) a[i] = box.low[i] + u(rng) * (box.high[i] - box.low[i]);
        return a;
      },
      size, max_path, seed);
}

/// Actions *sampled* from the SAC policy (D4RL's policy datasets), scaled to the action box.
template <class EnvT>
data::TransitionDataset collect_policy(EnvT& env, agents::SACAgent& agent, int64_t size, int64_t max_path,
                                       uint64_t seed) {
  const train::ActionScaler scale(env.action_space());
  return collect(
      env, [&](const env::Vector& obs) { return scale(agent.act(obs, false)); }, size, max_path, seed);
}

}  // namespace mopo::zoo
