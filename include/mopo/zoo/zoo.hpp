/// @file zoo.hpp
/// @brief A local dataset zoo: D4RL's recipe (environments.md §10.3, §10.6) at a configurable scale.
///
/// One online SAC run per task gives every behaviour policy and the replay data:
///  - **expert**: the checkpoint with the best deterministic evaluation return within the SAC budget;
///  - **medium**: the checkpoint whose evaluation return is closest to `medium_fraction` (1/3, as D4RL's
///    "trained to approximately 1/3 the performance of the expert") of the expert's;
///  - **mixed** (D4RL "medium-replay"): every transition the run collected up to the medium checkpoint;
/// then, as D4RL's collect_data.py: **random** = uniform actions, **medium** / **expert** = actions *sampled*
/// from the policy, episodes appended whole and the arrays cut to `size`; a step at the time limit is a
/// time-out only (terminal = done and t != max_path); **medium-expert** = medium cut after its last complete
/// episode, then expert (stitch_dataset.py). Every dataset keeps the full state (infos/qpos, infos/qvel)
/// when the environment exposes it, and a JSON card beside each file records the recipe and statistics.
///
/// Environment-agnostic: templates take any type satisfying mopo::env::is_environment_v; the full state is
/// recorded when the type has `qpos()` and `qvel()` (MujocoEnv). examples/make_datasets.cpp maps task
/// names onto the MuJoCo types.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/json_config.hpp"
#include "mopo/core/random.hpp"
#include "mopo/data/d4rl_hdf5.hpp"
#include "mopo/data/transition_dataset.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/detail/detected.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/rollout/replay_buffer.hpp"

namespace mopo::zoo {

/// The zoo's recipe. Defaults: 100 000 transitions per dataset (D4RL: 1 000 000, ratio 1/10).
struct ZooOptions {
  int64_t size = 100'000;              ///< transitions per random/medium/expert dataset (D4RL: 1e6)
  int64_t max_path = 1'000;            ///< episode length limit (D4RL's max_path / max_episode_steps)
  double medium_fraction = 1.0 / 3.0;  ///< medium policy's target return as a fraction of the expert's
  int64_t sac_steps = 300'000;         ///< SAC budget (environment steps) of the behaviour run
  int64_t warmup_steps = 5'000;        ///< uniform random actions before SAC updates start
  int64_t eval_every = 10'000;         ///< checkpoint + deterministic evaluation period
  int64_t eval_episodes = 5;
  uint64_t seed = 0;
  int gzip_level = 4;    ///< as D4RL's h5py compression='gzip'
  bool float64 = false;  ///< store floats as float64 (D4RL's replay files) instead of float32
  agents::SACOptions sac;

  template <class V>
  void visit(V&& v) {
    v("size", size);
    v("max_path", max_path);
    v("medium_fraction", medium_fraction);
    v("sac_steps", sac_steps);
    v("warmup_steps", warmup_steps);
    v("eval_every", eval_every);
    v("eval_episodes", eval_episodes);
    v("seed", seed);
    v("gzip_level", gzip_level);
    v("float64", float64);
    v("sac", sac);
  }
  void validate() const {
    auto positive = [](const char* key, int64_t v) {
      if (v <= 0) throw ConfigError(std::string(key) + ": must be > 0, got " + std::to_string(v));
    };
    positive("size", size);
    positive("max_path", max_path);
    positive("sac_steps", sac_steps);
    positive("eval_every", eval_every);
    positive("eval_episodes", eval_episodes);
    if (warmup_steps < 0)
      throw ConfigError("warmup_steps: must be >= 0, got " + std::to_string(warmup_steps));
    if (!(medium_fraction > 0.0 && medium_fraction <= 1.0)) {
      throw ConfigError("medium_fraction: must be in (0, 1], got " + std::to_string(medium_fraction));
    }
    if (gzip_level < 0 || gzip_level > 9) {
      throw ConfigError("gzip_level: must be in 0..9, got " + std::to_string(gzip_level));
    }
    sac.validate();
  }
};

/// One evaluated checkpoint of the behaviour run.
struct Checkpoint {
  int64_t step = 0;            ///< environment steps when it was taken
  double eval_return = 0.0;    ///< mean deterministic return over eval_episodes
  std::filesystem::path file;  ///< SACAgent::save file
};

/// Result of the behaviour SAC run.
struct BehaviourRun {
  std::vector<Checkpoint> checkpoints;
  Checkpoint expert;              ///< best evaluation return
  Checkpoint medium;              ///< return closest to medium_fraction · expert
  TransitionDataset replay;       ///< the online transitions up to the medium checkpoint (raw rows)
  TransitionDataset full_replay;  ///< every online transition of the run, in order
};

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
  }
  void clear() {
    obs.clear(), next_obs.clear(), act.clear(), rew.clear(), qpos.clear(), qvel.clear();
    term.clear(), timeout.clear();
    n = 0;
  }

  [[nodiscard]] TransitionDataset to_dataset(int64_t rows) const {
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
    TransitionDataset d;
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

/// low + (a + 1)(high − low)/2: an agent action in [−1, 1] to the environment's box.
inline env::Vector scale_action(const env::Box& box, const env::Vector& a) {
  env::Vector out(a.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    out[i] = box.low[i] + (a[i] + 1.0) * 0.5 * (box.high[i] - box.low[i]);
  return out;
}
}  // namespace detail

/// Runs whole episodes of `policy` (obs → action in the environment's units) and records D4RL rows until
/// at least `size` rows exist, then cuts to `size` (collect_data.py: the last episode may be cut).
/// terminal = terminated and t != max_path; timeout = (t == max_path) or the environment truncated.
/// Records qpos/qvel *before* each action when EnvT exposes them.
template <class EnvT, class PolicyT>
TransitionDataset collect(EnvT& env, PolicyT&& policy, int64_t size, int64_t max_path, uint64_t seed) {
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
      if constexpr (detail::has_state_v<EnvT>) {
        const auto qp = env.qpos();
        const auto qv = env.qvel();
        all.nq = episode.nq = static_cast<int64_t>(qp.size());
        all.nv = episode.nv = static_cast<int64_t>(qv.size());
        episode.qpos.insert(episode.qpos.end(), qp.begin(), qp.end());
        episode.qvel.insert(episode.qvel.end(), qv.begin(), qv.end());
      }
      const env::Vector action = policy(obs);
      const auto res = env.step(action);
      const bool timeout = t == max_path || res.truncated;
      episode.obs.insert(episode.obs.end(), obs.begin(), obs.end());
      episode.next_obs.insert(episode.next_obs.end(), res.observation.begin(), res.observation.end());
      episode.act.insert(episode.act.end(), action.begin(), action.end());
      episode.rew.push_back(res.reward);
      episode.term.push_back(res.terminated && !timeout);  // collect_data.py: a time-out only
      episode.timeout.push_back(timeout);
      ++episode.n;
      obs = res.observation;
      if (res.terminated || timeout) break;
    }
    all.append(episode);
  }
  return all.to_dataset(size);
}

/// Uniform random actions in the action box (D4RL v2 random datasets: env.action_space.sample()).
template <class EnvT>
TransitionDataset collect_random(EnvT& env, int64_t size, int64_t max_path, uint64_t seed) {
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
TransitionDataset collect_policy(EnvT& env, agents::SACAgent& agent, int64_t size, int64_t max_path,
                                 uint64_t seed) {
  const env::Box box = env.action_space();
  return collect(
      env, [&](const env::Vector& obs) { return detail::scale_action(box, agent.act(obs, false)); }, size,
      max_path, seed);
}

/// Mean undiscounted return of deterministic episodes (tanh(μ(s))).
template <class EnvT>
double evaluate_policy(EnvT& env, agents::SACAgent& agent, int64_t episodes, int64_t max_path,
                       uint64_t seed) {
  const env::Box box = env.action_space();
  std::mt19937_64 seeds(splitmix64(seed ^ 0xE7A1ull));
  double total = 0.0;
  for (int64_t e = 0; e < episodes; ++e) {
    auto obs = env.reset(seeds());
    for (int64_t t = 1;; ++t) {
      const auto res = env.step(detail::scale_action(box, agent.act(obs, true)));
      total += res.reward;
      obs = res.observation;
      if (res.terminated || res.truncated || t >= max_path) break;
    }
  }
  return total / static_cast<double>(episodes);
}

/// Saves only the actor of `agent` (what collecting data needs; ~0.3 MB for 256×256 instead of the full
/// ~3 MB training checkpoint), atomically.
inline void save_policy(agents::SACAgent& agent, const std::filesystem::path& file) {
  atomic_write_with(file, [&](const std::string& tmp) { torch::save(agent.actor(), tmp); });
}

/// Loads an actor written by save_policy() into `agent` (same observation/action sizes and hidden layers).
/// Every parameter's shape is checked first (LibTorch's loader would silently take other shapes), so a
/// policy of another task or network size is refused with what was expected and what the file holds.
/// @throws IoError naming the file if it cannot be read or is not a policy file, ShapeError naming the file
/// and the tensor if its shapes do not fit `agent`.
inline void load_policy(agents::SACAgent& agent, const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) throw IoError(file.string() + ": no such file");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(file.string());
  } catch (const std::exception& e) {  // c10::Error, torch::jit::ErrorReport
    throw IoError(file.string() + ": not a zoo policy file (" + mopo::detail::torch_message(e) + ")");
  }
  auto dims = [](c10::IntArrayRef s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
  };
  for (const auto& p : agent.actor()->named_parameters()) {
    const std::string& key = p.key();  // "l0.weight": sub-archive "l0", tensor "weight"
    torch::serialize::InputArchive* at = &archive;
    std::vector<torch::serialize::InputArchive> subs;
    subs.reserve(key.size());
    std::size_t start = 0;
    bool found = true;
    for (std::size_t dot = key.find('.'); found && dot != std::string::npos; dot = key.find('.', start)) {
      subs.emplace_back();
      found = at->try_read(key.substr(start, dot - start), subs.back());
      at = &subs.back();
      start = dot + 1;
    }
    torch::Tensor t;
    if (!found || !at->try_read(key.substr(start), t)) {
      throw IoError(file.string() + ": not a zoo policy file: no tensor \"" + key + "\"");
    }
    if (t.sizes() != p.value().sizes()) {
      std::string hidden;
      for (const auto h : agent.options().hidden) hidden += (hidden.empty() ? "" : ", ") + std::to_string(h);
      throw ShapeError(file.string() + ": policy tensor " + key + " has shape " + dims(t.sizes()) +
                       ", expected " + dims(p.value().sizes()) + " for obs " +
                       std::to_string(agent.obs_dim()) + ", act " + std::to_string(agent.act_dim()) +
                       ", hidden [" + hidden + "] (a policy of another task or network size?)");
    }
  }
  try {
    agent.actor()->load(archive);
  } catch (const std::exception& e) {
    throw IoError(file.string() + ": cannot load SAC policy (actor): " + mopo::detail::torch_message(e));
  }
}

/// The behaviour SAC run: online SAC (uniform warm-up, one update per step, sac.batch_size), recording every
/// transition as a raw D4RL row and saving a checkpoint `<checkpoint_dir>/policy_<step>.pt` at every
/// evaluation (actor only, save_policy()). Picks the expert (best) and medium (closest to medium_fraction ·
/// expert) checkpoints.
template <class EnvT>
BehaviourRun train_behaviour(EnvT& env, EnvT& eval_env, const ZooOptions& options,
                             const std::filesystem::path& checkpoint_dir,
                             const std::function<void(const Checkpoint&)>& on_checkpoint = {}) {
  options.validate();
  const int64_t obs_dim = env.observation_dim();
  const int64_t act_dim = env.action_dim();
  agents::SACAgent agent(obs_dim, act_dim, options.sac, splitmix64(options.seed ^ 0x5ACull));
  ReplayBuffer buffer(options.sac_steps, obs_dim, act_dim);
  RandomState rng(splitmix64(options.seed ^ 0xB0Full));
  const env::Box box = env.action_space();
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  detail::Rows rows;
  rows.obs_dim = obs_dim;
  rows.act_dim = act_dim;
  BehaviourRun run;
  std::vector<int64_t> rows_at;  // replay rows at each checkpoint
  env::Vector obs = env.reset(rng.next_seed());
  int64_t t = 0;
  for (int64_t step = 1; step <= options.sac_steps; ++step) {
    if constexpr (detail::has_state_v<EnvT>) {
      const auto qp = env.qpos();
      const auto qv = env.qvel();
      rows.nq = static_cast<int64_t>(qp.size());
      rows.nv = static_cast<int64_t>(qv.size());
      rows.qpos.insert(rows.qpos.end(), qp.begin(), qp.end());
      rows.qvel.insert(rows.qvel.end(), qv.begin(), qv.end());
    }
    env::Vector a(static_cast<std::size_t>(act_dim));
    if (step <= options.warmup_steps) {
      for (auto& x : a) x = u(rng.engine());
    } else {
      a = agent.act(obs, false);
    }
    const auto action = detail::scale_action(box, a);
    const auto res = env.step(action);
    ++t;
    const bool timeout = t == options.max_path || res.truncated;
    const bool terminal = res.terminated && !timeout;
    buffer.add(obs, a, res.reward, res.observation, terminal);  // time-outs bootstrap (d = 0)
    rows.obs.insert(rows.obs.end(), obs.begin(), obs.end());
    rows.next_obs.insert(rows.next_obs.end(), res.observation.begin(), res.observation.end());
    rows.act.insert(rows.act.end(), action.begin(), action.end());
    rows.rew.push_back(res.reward);
    rows.term.push_back(terminal);
    rows.timeout.push_back(timeout);
    ++rows.n;
    obs = res.observation;
    if (res.terminated || timeout) {
      obs = env.reset(rng.next_seed());
      t = 0;
    }
    if (step > options.warmup_steps) agent.update(buffer.sample(options.sac.batch_size, rng));
    if (step % options.eval_every == 0 || step == options.sac_steps) {
      Checkpoint c;
      c.step = step;
      c.eval_return = evaluate_policy(eval_env, agent, options.eval_episodes, options.max_path,
                                      options.seed + static_cast<uint64_t>(step));
      c.file = checkpoint_dir / ("policy_" + std::to_string(step) + ".pt");
      save_policy(agent, c.file);
      run.checkpoints.push_back(c);
      rows_at.push_back(rows.n);
      if (on_checkpoint) on_checkpoint(c);
    }
  }
  std::size_t best = 0;
  for (std::size_t i = 1; i < run.checkpoints.size(); ++i) {
    if (run.checkpoints[i].eval_return > run.checkpoints[best].eval_return) best = i;
  }
  run.expert = run.checkpoints[best];
  const double target = options.medium_fraction * run.expert.eval_return;
  std::size_t medium = 0;
  for (std::size_t i = 1; i <= best; ++i) {
    if (std::abs(run.checkpoints[i].eval_return - target) <
        std::abs(run.checkpoints[medium].eval_return - target)) {
      medium = i;
    }
  }
  run.medium = run.checkpoints[medium];
  run.replay = rows.to_dataset(rows_at[medium]);
  run.full_replay = rows.to_dataset(rows.n);  // D4RL medium-replay: the buffer up to the medium agent
  return run;
}

/// D4RL's stitch_dataset.py: `first` cut after its last complete episode, then `second`.
inline TransitionDataset stitch(const TransitionDataset& first, const TransitionDataset& second) {
  auto ends = first.terminals.logical_or(first.timeouts.defined() ? first.timeouts : first.terminals);
  const auto idx = ends.nonzero();
  if (idx.size(0) == 0) return second;
  const int64_t last = idx[idx.size(0) - 1][0].item<int64_t>();
  return concatenate({first.slice(0, last + 1), second});
}

/// A file named in a card (a behaviour checkpoint), written relative to the card's directory `card_dir`
/// (`policies/<task>/policy_<step>.pt`), never as the building machine's absolute path, so a committed card
/// stays true in any checkout (issue 13). Resolve it with `card_dir / path`.
inline std::string card_relative_path(const std::filesystem::path& file,
                                      const std::filesystem::path& card_dir) {
  return std::filesystem::absolute(file)
      .lexically_normal()
      .lexically_relative(std::filesystem::absolute(card_dir).lexically_normal())
      .generic_string();
}

/// The JSON card written beside each dataset file.
inline nlohmann::json make_card(const std::string& name, const std::string& kind, const TransitionDataset& d,
                                const ZooOptions& options, const nlohmann::json& behaviour) {
  const auto s = d.episode_stats();
  nlohmann::json card;
  card["name"] = name;
  card["kind"] = kind;
  card["transitions"] = d.size();
  card["d4rl_size_ratio"] = static_cast<double>(d.size()) / 1e6;
  card["seed"] = options.seed;
  card["has_state"] = d.has_state();
  card["episodes"] = {{"complete", s.count},
                      {"mean_return", s.mean_return},
                      {"max_return", s.max_return},
                      {"min_return", s.min_return},
                      {"std_return", s.std_return},
                      {"mean_length", s.mean_length},
                      {"incomplete_steps", s.incomplete_steps}};
  card["terminals"] = d.terminals.sum().item<int64_t>();
  card["timeouts"] = d.timeouts.defined() ? d.timeouts.sum().item<int64_t>() : 0;
  card["behaviour"] = behaviour;
  card["recipe"] = config::to_json(options);
  card["format"] =
      "D4RL HDF5 layout (observations, actions, rewards, terminals, timeouts, next_observations, "
      "infos/qpos, infos/qvel, metadata/*); load with mopo::load_d4rl_hdf5 + qlearning_dataset";
  return card;
}

/// Saves `d` as `<dir>/<name>.hdf5` with its card `<dir>/<name>.json` (both written atomically).
/// `metadata/task` records the task the data belongs to (train_mopo checks it against --task,
/// mopo::check_dataset_task).
inline void save_with_card(const std::filesystem::path& dir, const std::string& name, const std::string& kind,
                           TransitionDataset d, const ZooOptions& options, const nlohmann::json& behaviour,
                           const std::string& task) {
  d.metadata["task"] = task;
  d.metadata["algorithm"] = kind == "random" ? "uniform random" : "SAC";
  d.metadata["zoo_kind"] = kind;
  d.metadata["seed"] = static_cast<int64_t>(options.seed);
  save_d4rl_hdf5(dir / (name + ".hdf5"), d,
                 {options.float64 ? torch::kFloat64 : torch::kFloat32, options.gzip_level});
  atomic_write(dir / (name + ".json"), make_card(name, kind, d, options, behaviour).dump(2) + "\n");
}

/// D4RL reference returns for the normalised score (environments.md §10.5); NaN = unknown (no score).
struct ReferenceReturns {
  double random = std::numeric_limits<double>::quiet_NaN();
  double expert = std::numeric_limits<double>::quiet_NaN();
  /// D4RL's get_normalized_score: (R − random) / (expert − random); NaN when unknown.
  [[nodiscard]] double normalized(double r) const { return (r - random) / (expert - random); }
};

/// Pre-trained behaviour policies (save_policy() files). When both are set, build_task() trains no SAC
/// and writes no mixed dataset (the replay buffer exists only during the SAC run).
struct PretrainedPolicies {
  std::filesystem::path medium;
  std::filesystem::path expert;
  [[nodiscard]] bool given() const { return !medium.empty() && !expert.empty(); }
};

/// Builds `<task>-random`, `-medium`, `-mixed` (D4RL medium-replay), `-expert` and `-medium-expert` under
/// `out_dir` (HDF5 + JSON card each); the behaviour checkpoints go to `out_dir/policies/<task>/`.
/// `on_run`, if set, receives the behaviour SAC run (not called with pretrained policies), e.g. to save
/// its whole replay relabelled as an out-of-distribution task (save_replay_dataset()) without a second
/// SAC run.
/// @returns a summary: per dataset its card, plus the behaviour run's checkpoints.
template <class EnvT>
nlohmann::json build_task(const std::string& task, EnvT& env, EnvT& eval_env, const ZooOptions& options,
                          const std::filesystem::path& out_dir, const ReferenceReturns& reference = {},
                          const PretrainedPolicies& pretrained = {},
                          const std::function<void(const std::string&)>& log = {},
                          const std::function<void(BehaviourRun&)>& on_run = {}) {
  options.validate();
  auto say = [&](const std::string& msg) {
    if (log) log(task + ": " + msg);
  };
  nlohmann::json summary;
  summary["task"] = task;
  auto policy_json = [&](const Checkpoint& c) {
    nlohmann::json j = {{"policy", card_relative_path(c.file, out_dir)},
                        {"sac_step", c.step},
                        {"eval_return", c.eval_return}};
    const double score = reference.normalized(c.eval_return);
    if (std::isfinite(score)) j["d4rl_normalized_score"] = 100.0 * score;
    return j;
  };
  Checkpoint medium;
  Checkpoint expert;
  if (pretrained.given()) {
    medium.file = pretrained.medium;
    expert.file = pretrained.expert;
    for (Checkpoint* c : {&medium, &expert}) {
      agents::SACAgent a(env.observation_dim(), env.action_dim(), options.sac, options.seed);
      load_policy(a, c->file);
      c->eval_return = evaluate_policy(eval_env, a, options.eval_episodes, options.max_path, options.seed);
    }
  } else {
    say("training the behaviour SAC for " + std::to_string(options.sac_steps) + " steps");
    auto run = train_behaviour(env, eval_env, options, out_dir / "policies" / task, [&](const Checkpoint& c) {
      say("checkpoint at step " + std::to_string(c.step) + ": eval return " + std::to_string(c.eval_return));
    });
    medium = run.medium;
    expert = run.expert;
    nlohmann::json cps = nlohmann::json::array();
    for (const auto& c : run.checkpoints) cps.push_back(policy_json(c));
    summary["checkpoints"] = cps;
    nlohmann::json b = policy_json(medium);
    b["recipe"] = "replay buffer of the behaviour SAC up to the medium checkpoint (D4RL medium-replay)";
    save_with_card(out_dir, task + "-mixed", "mixed", run.replay, options, b, task);
    summary["datasets"]["mixed"] = make_card(task + "-mixed", "mixed", run.replay, options, b);
    say("mixed: " + std::to_string(run.replay.size()) + " transitions");
    if (on_run) on_run(run);
  }
  auto save = [&](const std::string& kind, const TransitionDataset& d, nlohmann::json behaviour) {
    save_with_card(out_dir, task + "-" + kind, kind, d, options, behaviour, task);
    summary["datasets"][kind] = make_card(task + "-" + kind, kind, d, options, behaviour);
    say(kind + ": " + std::to_string(d.size()) + " transitions, mean episode return " +
        std::to_string(d.episode_stats().mean_return));
  };
  const auto random = collect_random(env, options.size, options.max_path, splitmix64(options.seed ^ 1));
  save("random", random, {{"policy", "uniform random actions"}});
  auto load_agent = [&](const Checkpoint& c) {
    agents::SACAgent a(env.observation_dim(), env.action_dim(), options.sac, splitmix64(options.seed ^ 2));
    load_policy(a, c.file);
    return a;
  };
  auto medium_agent = load_agent(medium);
  const auto medium_data =
      collect_policy(env, medium_agent, options.size, options.max_path, splitmix64(options.seed ^ 3));
  save("medium", medium_data, policy_json(medium));
  auto expert_agent = load_agent(expert);
  const auto expert_data =
      collect_policy(env, expert_agent, options.size, options.max_path, splitmix64(options.seed ^ 4));
  save("expert", expert_data, policy_json(expert));
  save("medium-expert", stitch(medium_data, expert_data),
       {{"medium", policy_json(medium)},
        {"expert", policy_json(expert)},
        {"recipe", "stitch_dataset.py: medium cut after its last complete episode, then expert"}});
  atomic_write(out_dir / (task + "-summary.json"), summary.dump(2) + "\n");
  return summary;
}

/// Saves the **whole** replay of a behaviour run (`run.full_replay`, moved out) as `<out_dir>/<name>.hdf5`
/// with its card, the rewards optionally relabelled (`relabel(data)` → [N]; the behaviour rewards are kept
/// as `infos/behaviour_rewards`). @returns the card.
inline nlohmann::json save_replay_dataset(
    const std::string& name, const std::string& behaviour_task, BehaviourRun& run, const ZooOptions& options,
    const std::filesystem::path& out_dir, const std::string& recipe,
    const std::function<torch::Tensor(const TransitionDataset&)>& relabel,
    const std::function<void(const std::string&)>& log = {}) {
  TransitionDataset data = std::move(run.full_replay);
  nlohmann::json behaviour;
  behaviour["recipe"] = recipe;
  behaviour["behaviour_task"] = behaviour_task;
  behaviour["behaviour_mean_episode_return"] = data.episode_stats().mean_return;
  if (relabel) {
    auto r = relabel(data).to(torch::kFloat32).reshape({-1});
    if (r.size(0) != data.size()) {
      throw ShapeError("save_replay_dataset " + name + ": relabel returned " + std::to_string(r.size(0)) +
                       " rewards for " + std::to_string(data.size()) + " rows");
    }
    data.infos["behaviour_rewards"] = data.rewards;
    data.rewards = r;
  }
  nlohmann::json cps = nlohmann::json::array();
  for (const auto& c : run.checkpoints) {
    cps.push_back({{"policy", card_relative_path(c.file, out_dir)},
                   {"sac_step", c.step},
                   {"eval_return", c.eval_return}});
  }
  behaviour["checkpoints"] = cps;
  behaviour["best_eval_return"] = run.expert.eval_return;
  save_with_card(out_dir, name, "replay", data, options, behaviour, name);
  if (log) log(name + ": " + std::to_string(data.size()) + " transitions");
  return make_card(name, "replay", data, options, behaviour);
}

/// The replay recipe of MOPO's out-of-distribution tasks and of the HIV task: the **whole** replay buffer of
/// one behaviour SAC run (`sac_steps` transitions, the first steps of an online agent), with the rewards
/// optionally relabelled (`relabel(data)` → [N] rewards, e.g. env::halfcheetah_jump_relabel), saved as
/// `<out_dir>/<name>.hdf5` with its card. The card's `behaviour` holds every checkpoint's evaluation return
/// on the behaviour task; `episodes` are the relabelled returns.
template <class EnvT>
nlohmann::json build_replay_task(const std::string& name, EnvT& env, EnvT& eval_env,
                                 const ZooOptions& options, const std::filesystem::path& out_dir,
                                 const std::string& recipe,
                                 const std::function<torch::Tensor(const TransitionDataset&)>& relabel = {},
                                 const std::function<void(const std::string&)>& log = {}) {
  options.validate();
  if (log) log(name + ": training the behaviour SAC for " + std::to_string(options.sac_steps) + " steps");
  auto run = train_behaviour(env, eval_env, options, out_dir / "policies" / name, [&](const Checkpoint& c) {
    if (log)
      log(name + ": checkpoint at step " + std::to_string(c.step) + ": eval return " +
          std::to_string(c.eval_return));
  });
  return save_replay_dataset(name, env.name(), run, options, out_dir, recipe, relabel, log);
}

}  // namespace mopo::zoo
