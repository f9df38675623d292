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
///
/// Layering: zoo/ sits above data/, agents/ and train/. The behaviour run *is* the library's online SAC
/// loop (train::train_sac_online) recording its rows through the loop's hooks; evaluation is
/// train::evaluate, action scaling train::ActionScaler, reference scores env::ReferenceScores, policy files
/// agents::save_policy / load_policy. Parts: zoo/options.hpp (ZooOptions and run records),
/// zoo/collect.hpp (episode collection), this header (the behaviour run, cards, the builders).
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "mopo/agents/policy_file.hpp"
#include "mopo/agents/sac_agent.hpp"
#include "mopo/config/json_config.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/json_text.hpp"
#include "mopo/core/random.hpp"
#include "mopo/data/d4rl_hdf5.hpp"
#include "mopo/data/transition_dataset.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/env/scores.hpp"
#include "mopo/rollout/replay_buffer.hpp"
#include "mopo/train/evaluate.hpp"
#include "mopo/train/sac_trainer.hpp"
#include "mopo/zoo/collect.hpp"
#include "mopo/zoo/options.hpp"

namespace mopo::zoo {

namespace detail {
/// A checkpoint's evaluation: options.eval_episodes deterministic episodes of at most max_path steps, the
/// resets seeded from splitmix64(seed ^ 0xE7A1).
template <class EnvT>
train::EvalResult evaluate_checkpoint(EnvT& eval_env, agents::SACAgent& agent, const ZooOptions& options,
                                      uint64_t seed) {
  std::mt19937_64 seeds(splitmix64(seed ^ 0xE7A1ull));
  return train::evaluate(eval_env, agent, options.eval_episodes, seeds, options.max_path);
}
}  // namespace detail

/// The behaviour SAC run: the library's online SAC loop (train::train_sac_online: uniform warm-up, one
/// update per step, sac.batch_size; the buffer stores d = terminated, so a time-out bootstraps), recording
/// every transition as a raw D4RL row through the loop's hooks and saving a checkpoint
/// `<checkpoint_dir>/policy_<step>.pt` (agents::save_policy) at every evaluation. Picks the expert (best)
/// and medium (closest to medium_fraction · expert) checkpoints.
template <class EnvT>
BehaviourRun train_behaviour(EnvT& env, EnvT& eval_env, const ZooOptions& options,
                             const std::filesystem::path& checkpoint_dir,
                             const std::function<void(const Checkpoint&)>& on_checkpoint = {}) {
  options.validate();
  const int64_t obs_dim = env.observation_dim();
  const int64_t act_dim = env.action_dim();
  agents::SACAgent agent(obs_dim, act_dim, options.sac, splitmix64(options.seed ^ 0x5ACull));
  rollout::ReplayBuffer buffer(options.sac_steps, obs_dim, act_dim);
  train::SACTrainerOptions loop;
  loop.total_steps = options.sac_steps;
  loop.warmup_steps = options.warmup_steps;
  loop.updates_per_step = 1;
  loop.buffer_capacity = options.sac_steps;
  loop.eval_every = options.eval_every;
  loop.eval_episodes = options.eval_episodes;
  loop.log_every = options.sac_steps;
  loop.max_episode_steps = options.max_path;
  loop.seed = splitmix64(options.seed ^ 0xB0Full);
  loop.progress = false;
  loop.sac = options.sac;

  detail::Rows rows;
  rows.obs_dim = obs_dim;
  rows.act_dim = act_dim;
  BehaviourRun run;
  std::vector<int64_t> rows_at;  // replay rows at each checkpoint
  train::SACTrainerCallbacks hooks;
  if constexpr (detail::has_state_v<EnvT>) {
    hooks.before_step = [&](int64_t, const env::Vector&) { rows.add_state(env); };
  }
  hooks.on_transition = [&](const train::OnlineTransition& t) {
    rows.add(*t.observation, *t.env_action, t.result->reward, t.result->observation, t.result->terminated,
             t.time_limit);
  };
  hooks.evaluate = [&](int64_t step) {
    return detail::evaluate_checkpoint(eval_env, agent, options, options.seed + static_cast<uint64_t>(step));
  };
  hooks.on_eval = [&](const train::EvalResult& ev) {
    Checkpoint c;
    c.step = ev.step;
    c.eval_return = ev.return_mean;
    c.file = checkpoint_dir / ("policy_" + std::to_string(ev.step) + ".pt");
    agents::save_policy(agent, c.file);
    run.checkpoints.push_back(c);
    rows_at.push_back(rows.n);
    if (on_checkpoint) on_checkpoint(c);
  };
  train::train_sac_online(env, eval_env, agent, buffer, loop, hooks);

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
inline data::TransitionDataset stitch(const data::TransitionDataset& first,
                                      const data::TransitionDataset& second) {
  auto ends = first.terminals.logical_or(first.timeouts.defined() ? first.timeouts : first.terminals);
  const auto idx = ends.nonzero();
  if (idx.size(0) == 0) return second;
  const int64_t last = idx[idx.size(0) - 1][0].item<int64_t>();
  return data::concatenate({first.slice(0, last + 1), second});
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
inline nlohmann::json make_card(const std::string& name, const std::string& kind,
                                const data::TransitionDataset& d, const ZooOptions& options,
                                const nlohmann::json& behaviour) {
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
      "infos/qpos, infos/qvel, metadata/*); load with mopo::data::load_d4rl_hdf5 + qlearning_dataset";
  return card;
}

/// Saves `d` as `<dir>/<name>.hdf5` with its card `<dir>/<name>.json` (both written atomically).
/// `metadata/task` records the task the data belongs to (train_mopo checks it against --task,
/// mopo::data::check_dataset_task).
inline void save_with_card(const std::filesystem::path& dir, const std::string& name, const std::string& kind,
                           data::TransitionDataset d, const ZooOptions& options,
                           const nlohmann::json& behaviour, const std::string& task) {
  d.metadata["task"] = task;
  d.metadata["algorithm"] = kind == "random" ? "uniform random" : "SAC";
  d.metadata["zoo_kind"] = kind;
  d.metadata["seed"] = static_cast<int64_t>(options.seed);
  data::save_d4rl_hdf5(dir / (name + ".hdf5"), d,
                       {options.float64 ? torch::kFloat64 : torch::kFloat32, options.gzip_level});
  atomic_write(dir / (name + ".json"), json_text(make_card(name, kind, d, options, behaviour)));
}

/// Builds `<task>-random`, `-medium`, `-mixed` (D4RL medium-replay), `-expert` and `-medium-expert` under
/// `out_dir` (HDF5 + JSON card each); the behaviour checkpoints go to `out_dir/policies/<task>/`.
/// `on_run`, if set, receives the behaviour SAC run (not called with pretrained policies), e.g. to save
/// its whole replay relabelled as an out-of-distribution task (save_replay_dataset()) without a second
/// SAC run.
/// @returns a summary: per dataset its card, plus the behaviour run's checkpoints.
template <class EnvT>
nlohmann::json build_task(const std::string& task, EnvT& env, EnvT& eval_env, const ZooOptions& options,
                          const std::filesystem::path& out_dir,
                          const std::optional<env::ReferenceScores>& reference = std::nullopt,
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
    if (reference && std::isfinite(c.eval_return)) {
      j["d4rl_normalized_score"] = 100.0 * env::normalized_score(*reference, c.eval_return, "zoo " + task);
    }
    return j;
  };
  Checkpoint medium;
  Checkpoint expert;
  if (pretrained.given()) {
    medium.file = pretrained.medium;
    expert.file = pretrained.expert;
    for (Checkpoint* c : {&medium, &expert}) {
      agents::SACAgent a(env.observation_dim(), env.action_dim(), options.sac, options.seed);
      agents::load_policy(a, c->file);
      c->eval_return = detail::evaluate_checkpoint(eval_env, a, options, options.seed).return_mean;
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
  auto save = [&](const std::string& kind, const data::TransitionDataset& d, nlohmann::json behaviour) {
    save_with_card(out_dir, task + "-" + kind, kind, d, options, behaviour, task);
    summary["datasets"][kind] = make_card(task + "-" + kind, kind, d, options, behaviour);
    say(kind + ": " + std::to_string(d.size()) + " transitions, mean episode return " +
        std::to_string(d.episode_stats().mean_return));
  };
  const auto random = collect_random(env, options.size, options.max_path, splitmix64(options.seed ^ 1));
  save("random", random, {{"policy", "uniform random actions"}});
  auto load_agent = [&](const Checkpoint& c) {
    agents::SACAgent a(env.observation_dim(), env.action_dim(), options.sac, splitmix64(options.seed ^ 2));
    agents::load_policy(a, c.file);
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
  atomic_write(out_dir / (task + "-summary.json"), json_text(summary));
  return summary;
}

/// Saves the **whole** replay of a behaviour run (`run.full_replay`, moved out) as `<out_dir>/<name>.hdf5`
/// with its card, the rewards optionally relabelled (`relabel(data)` → [N]; the behaviour rewards are kept
/// as `infos/behaviour_rewards`). @returns the card.
inline nlohmann::json save_replay_dataset(
    const std::string& name, const std::string& behaviour_task, BehaviourRun& run, const ZooOptions& options,
    const std::filesystem::path& out_dir, const std::string& recipe,
    const std::function<torch::Tensor(const data::TransitionDataset&)>& relabel,
    const std::function<void(const std::string&)>& log = {}) {
  data::TransitionDataset data = std::move(run.full_replay);
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
nlohmann::json build_replay_task(
    const std::string& name, EnvT& env, EnvT& eval_env, const ZooOptions& options,
    const std::filesystem::path& out_dir, const std::string& recipe,
    const std::function<torch::Tensor(const data::TransitionDataset&)>& relabel = {},
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
