/// @file sac_trainer.hpp
/// @brief Online SAC on an environment: random warm-up, one update per environment step, periodic
/// deterministic evaluation, CSV/JSONL metrics, progress bar and checkpoints.
///
/// The loop follows softlearning's online SAC (mopo-algorithm.md §8): uniform random actions for the
/// first `warmup_steps` steps, then actions sampled from π; after the warm-up, `updates_per_step`
/// gradient steps per environment step on uniformly sampled minibatches; evaluation every `eval_every`
/// steps with the deterministic policy tanh(μ(s)) over `eval_episodes` episodes.
///
/// Terminal vs time-out: a transition is stored with d = 1 only when the environment reports
/// `terminated`; a `truncated` step (time limit) is stored with d = 0, so the critic bootstraps from s'
/// (Pardo et al. 2018). Either ends the episode.
///
/// Files written under `out_dir` (nothing when it is empty):
/// | file | content |
/// |---|---|
/// | `config.json` | the effective SACTrainerOptions |
/// | `train.csv` | every `log_every` steps: episode returns finished in the window, mean update metrics,
/// speed | | `eval.csv` | every evaluation: step, mean/std/min/max return, mean episode length | |
/// `metrics.jsonl` | the rows of both CSVs as JSON lines (eval keys prefixed with `eval/`) | |
/// `checkpoints/agent_<step>.pt` | SACAgent::save every `checkpoint_every` steps (0 = none) | | `agent.pt`,
/// `result.json` | final agent and a summary (best/final evaluation return, time) |
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
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/config/json_config.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/json_text.hpp"
#include "mopo/core/metrics.hpp"
#include "mopo/core/progress.hpp"
#include "mopo/core/random.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/rollout/replay_buffer.hpp"
#include "mopo/train/evaluate.hpp"

namespace mopo::train {

/// Options of train_sac_online (JSON-loadable; nested `sac` holds the agent's options).
struct SACTrainerOptions {
  int64_t total_steps = 1'000'000;  ///< environment steps
  int64_t warmup_steps = 5'000;     ///< uniform random actions, no updates, before learning starts
  int64_t updates_per_step = 1;     ///< gradient steps per environment step after the warm-up
  int64_t buffer_capacity = 1'000'000;
  int64_t eval_every = 5'000;     ///< evaluation period in environment steps (0 = only at the end)
  int64_t eval_episodes = 10;     ///< deterministic evaluation episodes
  int64_t log_every = 1'000;      ///< train.csv period in environment steps
  int64_t checkpoint_every = 0;   ///< checkpoint period in environment steps (0 = final agent only)
  int64_t max_episode_steps = 0;  ///< extra time limit enforced by the trainer (0 = the env's own)
  uint64_t seed = 0;              ///< seeds the agent (by the caller), env resets and minibatches
  std::string out_dir;            ///< where files go; empty = write nothing
  bool progress = true;           ///< progress bar on stderr
  agents::SACOptions sac;         ///< agent hyper-parameters

  template <class V>
  void visit(V&& v) {
    v("total_steps", total_steps);
    v("warmup_steps", warmup_steps);
    v("updates_per_step", updates_per_step);
    v("buffer_capacity", buffer_capacity);
    v("eval_every", eval_every);
    v("eval_episodes", eval_episodes);
    v("log_every", log_every);
    v("checkpoint_every", checkpoint_every);
    v("max_episode_steps", max_episode_steps);
    v("seed", seed);
    v("out_dir", out_dir);
    v("progress", progress);
    v("sac", sac);
  }

  void validate() const {
    auto positive = [](const char* key, int64_t value, bool allow_zero) {
      if (value < 0 || (!allow_zero && value == 0)) {
        throw ConfigError(std::string(key) + ": must be " + (allow_zero ? ">= 0" : "> 0") + ", got " +
                          std::to_string(value));
      }
    };
    positive("total_steps", total_steps, false);
    positive("warmup_steps", warmup_steps, true);
    positive("updates_per_step", updates_per_step, true);
    positive("buffer_capacity", buffer_capacity, false);
    positive("eval_every", eval_every, true);
    positive("eval_episodes", eval_episodes, false);
    positive("log_every", log_every, false);
    positive("checkpoint_every", checkpoint_every, true);
    positive("max_episode_steps", max_episode_steps, true);
    try {
      sac.validate();
    } catch (const ConfigError& e) {
      throw ConfigError(std::string("sac.") + e.what());
    }
  }
};

/// What train_sac_online returns.
struct SACTrainResult {
  std::vector<EvalResult> evaluations;
  double best_return = -std::numeric_limits<double>::infinity();   ///< best mean evaluation return
  double final_return = std::numeric_limits<double>::quiet_NaN();  ///< last mean evaluation return
  int64_t env_steps = 0;
  int64_t updates = 0;
  int64_t episodes = 0;
  double seconds = 0;
};

/// One environment step of the online loop, as the `on_transition` hook sees it.
struct OnlineTransition {
  int64_t step = 0;                          ///< environment step, 1-based
  const env::Vector* observation = nullptr;  ///< s
  const env::Vector* action = nullptr;       ///< the agent's action in [−1, 1] (what the buffer stores)
  const env::Vector* env_action = nullptr;   ///< the same action in the environment's box (env.step's)
  const env::StepResult* result = nullptr;   ///< reward, s', terminated, truncated
  bool time_limit = false;                   ///< truncated, or the trainer's max_episode_steps reached
  [[nodiscard]] bool episode_end() const { return result->terminated || time_limit; }
};

/// Optional hooks (e.g. for tests, to record data, or to stop early by throwing). None may change the
/// environment's or the agent's state; the loop's random stream is the same with or without them.
struct SACTrainerCallbacks {
  /// After every evaluation (the built-in one, or `evaluate`'s result with `step` set).
  std::function<void(const EvalResult&)> on_eval;
  std::function<void(int64_t step, const Metrics& row)> on_log;
  /// Before env.step at every step, with the observation the action is chosen from (e.g. to record the
  /// simulator's full state before the action, as the dataset zoo does).
  std::function<void(int64_t step, const env::Vector& observation)> before_step;
  /// After env.step, before the transition's episode may end and before the update (the zoo records
  /// its D4RL rows here).
  std::function<void(const OnlineTransition&)> on_transition;
  /// Replaces the built-in evaluation (`evaluate` on eval_env with the trainer's evaluation seeds) when
  /// set; called at the same steps.
  std::function<EvalResult(int64_t step)> evaluate;
};

namespace detail {
inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace detail

/// Trains `agent` online on `env`, evaluating on `eval_env` (a separate instance, so evaluation does
/// not disturb the training episode). `buffer` receives every transition (actions in [−1, 1]).
/// @throws ConfigError for invalid options, ShapeError if the env's dims differ from the agent's/buffer's.
template <class EnvT>
SACTrainResult train_sac_online(EnvT& env, EnvT& eval_env, agents::SACAgent& agent,
                                rollout::ReplayBuffer& buffer, const SACTrainerOptions& options,
                                const SACTrainerCallbacks& callbacks = {}) {
  static_assert(env::is_environment_v<EnvT>, "EnvT must satisfy the environment concept (docs/concepts.md)");
  namespace fs = std::filesystem;
  options.validate();
  if (env.observation_dim() != agent.obs_dim() || env.action_dim() != agent.act_dim() ||
      buffer.obs_dim() != agent.obs_dim() || buffer.act_dim() != agent.act_dim() ||
      eval_env.observation_dim() != agent.obs_dim() || eval_env.action_dim() != agent.act_dim()) {
    std::ostringstream os;
    os << "train_sac_online: dims differ: env (obs " << env.observation_dim() << ", act " << env.action_dim()
       << "), eval env (" << eval_env.observation_dim() << ", " << eval_env.action_dim() << "), agent ("
       << agent.obs_dim() << ", " << agent.act_dim() << "), buffer (" << buffer.obs_dim() << ", "
       << buffer.act_dim() << ")";
    throw ShapeError(os.str());
  }
  const ActionScaler scale(env.action_space());
  if (static_cast<int64_t>(scale.size()) != agent.act_dim()) {
    throw ShapeError("train_sac_online: action_space has " + std::to_string(scale.size()) + " dims, agent " +
                     std::to_string(agent.act_dim()));
  }

  RandomState rng(options.seed);
  RandomState eval_rng = rng.spawn(0xE7A1);
  std::uniform_real_distribution<double> uniform(-1.0, 1.0);
  const int64_t batch_size = agent.options().batch_size;
  const fs::path out = options.out_dir;
  const bool write = !options.out_dir.empty();
  std::unique_ptr<CsvWriter> train_csv, eval_csv;
  std::unique_ptr<JsonlWriter> jsonl;
  if (write) {
    config::save_file(out / "config.json", options);
    train_csv = std::make_unique<CsvWriter>(out / "train.csv");
    eval_csv = std::make_unique<CsvWriter>(out / "eval.csv");
    jsonl = std::make_unique<JsonlWriter>(out / "metrics.jsonl");
  }
  std::unique_ptr<ProgressBar> bar;
  if (options.progress) bar = std::make_unique<ProgressBar>(options.total_steps, "sac");

  SACTrainResult result;
  const auto t0 = std::chrono::steady_clock::now();
  auto window_t0 = t0;
  double window_update_s = 0;
  int64_t window_updates = 0;
  std::vector<double> window_metrics;  // running sums of the update metrics
  std::vector<std::string> metric_names;
  for (const auto& m : agents::SACUpdateMetrics{}.to_metrics()) metric_names.push_back(m.name);
  window_metrics.assign(metric_names.size(), 0.0);
  double window_return_sum = 0, window_length_sum = 0;
  int64_t window_episodes = 0;
  std::string last_eval = "eval n/a";

  auto obs = env.reset(rng.next_seed());
  double ep_return = 0;
  int64_t ep_length = 0;
  std::vector<double> action(static_cast<std::size_t>(agent.act_dim()));

  auto run_eval = [&](int64_t step) {
    EvalResult ev = callbacks.evaluate ? callbacks.evaluate(step)
                                       : evaluate(eval_env, agent, options.eval_episodes, eval_rng,
                                                  options.max_episode_steps);
    ev.step = step;
    result.evaluations.push_back(ev);
    result.best_return = std::max(result.best_return, ev.return_mean);
    result.final_return = ev.return_mean;
    std::ostringstream os;
    os.precision(1);
    os << std::fixed << "eval " << ev.return_mean << " (best " << result.best_return << ")";
    last_eval = os.str();
    if (write) {
      Metrics row{{"step", static_cast<double>(step)},  {"return_mean", ev.return_mean},
                  {"return_std", ev.return_std},        {"return_min", ev.return_min},
                  {"return_max", ev.return_max},        {"length_mean", ev.length_mean},
                  {"time_s", detail::seconds_since(t0)}};
      eval_csv->write(row);
      Metrics j{{"step", static_cast<double>(step)}};
      j.merge(row, "eval/");
      jsonl->write(j);
    }
    if (callbacks.on_eval) callbacks.on_eval(ev);
  };

  for (int64_t step = 1; step <= options.total_steps; ++step) {
    if (step <= options.warmup_steps) {
      for (auto& a : action) a = uniform(rng.engine());
    } else {
      action = agent.act(obs, /*deterministic=*/false);
    }
    if (callbacks.before_step) callbacks.before_step(step, obs);
    const env::Vector env_action = scale(action);
    const env::StepResult res = env.step(env_action);
    ep_return += res.reward;
    ++ep_length;
    const bool time_limit =
        res.truncated || (options.max_episode_steps > 0 && ep_length >= options.max_episode_steps);
    if (callbacks.on_transition) {
      callbacks.on_transition(OnlineTransition{step, &obs, &action, &env_action, &res, time_limit});
    }
    // d = terminated only: a time-out is not a terminal state (it bootstraps).
    buffer.add(obs, action, res.reward, res.observation, res.terminated);
    obs = res.observation;
    if (res.terminated || time_limit) {
      ++result.episodes;
      window_return_sum += ep_return;
      window_length_sum += static_cast<double>(ep_length);
      ++window_episodes;
      obs = env.reset(rng.next_seed());
      ep_return = 0;
      ep_length = 0;
    }

    if (step > options.warmup_steps && buffer.size() >= batch_size) {
      const auto u0 = std::chrono::steady_clock::now();
      for (int64_t u = 0; u < options.updates_per_step; ++u) {
        const auto m = agent.update(buffer.sample(batch_size, rng));
        std::size_t i = 0;
        for (const auto& metric : m.to_metrics()) window_metrics[i++] += metric.value;
        ++window_updates;
        ++result.updates;
      }
      window_update_s += detail::seconds_since(u0);
    }

    if (step % options.log_every == 0) {
      const double nan = std::numeric_limits<double>::quiet_NaN();
      const double window_s = detail::seconds_since(window_t0);
      Metrics row{{"step", static_cast<double>(step)},
                  {"episodes", static_cast<double>(result.episodes)},
                  {"episode_return",
                   window_episodes ? window_return_sum / static_cast<double>(window_episodes) : nan},
                  {"episode_length",
                   window_episodes ? window_length_sum / static_cast<double>(window_episodes) : nan},
                  {"updates", static_cast<double>(result.updates)}};
      for (std::size_t i = 0; i < metric_names.size(); ++i) {
        row.set(metric_names[i],
                window_updates ? window_metrics[i] / static_cast<double>(window_updates) : nan);
      }
      row.set("steps_per_s", static_cast<double>(options.log_every) / std::max(window_s, 1e-9));
      row.set("update_ms",
              window_updates ? 1e3 * window_update_s / static_cast<double>(window_updates) : nan);
      row.set("time_s", detail::seconds_since(t0));
      if (write) {
        train_csv->write(row);
        jsonl->write(row);
      }
      if (callbacks.on_log) callbacks.on_log(step, row);
      window_t0 = std::chrono::steady_clock::now();
      window_update_s = 0;
      window_updates = 0;
      window_metrics.assign(metric_names.size(), 0.0);
      window_return_sum = window_length_sum = 0;
      window_episodes = 0;
    }
    if ((options.eval_every > 0 && step % options.eval_every == 0) ||
        (step == options.total_steps && (options.eval_every == 0 || step % options.eval_every != 0))) {
      run_eval(step);
    }
    if (write && options.checkpoint_every > 0 && step % options.checkpoint_every == 0) {
      agent.save(out / "checkpoints" / ("agent_" + std::to_string(step) + ".pt"));
    }
    if (bar) bar->update(step, last_eval);
  }
  if (bar) bar->finish(last_eval);

  result.env_steps = options.total_steps;
  result.seconds = detail::seconds_since(t0);
  if (write) {
    agent.save(out / "agent.pt");
    nlohmann::ordered_json j;
    j["env_steps"] = result.env_steps;
    j["updates"] = result.updates;
    j["episodes"] = result.episodes;
    j["best_return"] = result.best_return;
    j["final_return"] = result.final_return;
    j["seconds"] = result.seconds;
    atomic_write(out / "result.json", json_text(j));
  }
  return result;
}

}  // namespace mopo::train
