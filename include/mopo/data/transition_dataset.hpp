/// @file transition_dataset.hpp
/// @brief An offline dataset of transitions in D4RL's flat layout, D4RL's `qlearning_dataset` rules, seeded
/// batch sampling and episode statistics.
///
/// A TransitionDataset holds N rows. As read from a D4RL file ("raw"), row i is the step taken in
/// observations[i]; `timeouts` marks the last step of an episode cut by the time limit and `terminals` a step
/// that reached a terminal state. `qlearning_dataset()` turns raw rows into (s, a, r, s', d) transitions with
/// D4RL's exact rules (see docs/datasets.md and environments.md §10.4). Shapes (N rows):
/// | field               | shape    | dtype   | notes                                              |
/// |---------------------|----------|---------|----------------------------------------------------|
/// | `observations`      | [N, O]   | float32 |                                                    |
/// | `actions`           | [N, A]   | float32 |                                                    |
/// | `rewards`           | [N]      | float32 |                                                    |
/// | `terminals`         | [N]      | bool    |                                                    |
/// | `timeouts`          | [N]      | bool    | undefined when the source has none (D4RL v0 files) |
/// | `next_observations` | [N, O]   | float32 | optional                                           |
/// | `qpos`, `qvel`      | [N, nq/nv] | float32 | optional full MuJoCo state *before* the action   |
/// | `infos`             | [N, …]   | any     | other per-step arrays (e.g. `action_log_probs`)   |
/// `metadata` holds scalar metadata (strings, numbers, nested groups as objects) and `metadata_arrays` array
/// metadata keyed by path (e.g. "policy/fc0/weight").
///
/// Length: ~460 lines, the type with its D4RL rules and input checks, which are its invariants.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/core/types.hpp"

namespace mopo::data {

/// Options of qlearning_dataset(). The defaults reproduce `d4rl.qlearning_dataset(env)` exactly.
struct QLearningOptions {
  /// D4RL's `terminate_on_end`: keep the time-out rows instead of dropping them.
  bool terminate_on_end = false;
  /// Episode length used to detect time-outs when the source has no `timeouts` (D4RL:
  /// env._max_episode_steps).
  int64_t max_episode_steps = 1000;
  /// Take s' from the stored `next_observations` (OfflineRL-Kit's variant: exact s' at terminals, needed to
  /// train dynamics models) instead of D4RL's observations[i + 1]. Throws if the dataset has none.
  bool use_next_observations = false;

  template <class V>
  void visit(V&& v) {
    v("terminate_on_end", terminate_on_end);
    v("max_episode_steps", max_episode_steps);
    v("use_next_observations", use_next_observations);
  }
  void validate() const {
    if (max_episode_steps < 1) {
      throw ConfigError("max_episode_steps: must be >= 1, got " + std::to_string(max_episode_steps));
    }
  }
};

/// Returns of the complete episodes in a dataset.
struct EpisodeStats {
  int64_t count = 0;         ///< complete episodes (ended by a terminal or a time-out)
  double mean_return = 0.0;  ///< undiscounted; 0 when count == 0
  double std_return = 0.0;   ///< population standard deviation
  double min_return = 0.0;
  double max_return = 0.0;
  double mean_length = 0.0;
  int64_t incomplete_steps = 0;  ///< rows after the last episode end (a cut final trajectory)
};

/// An offline dataset in D4RL's flat layout; see the file comment for shapes.
struct TransitionDataset {
  torch::Tensor observations;
  torch::Tensor actions;
  torch::Tensor rewards;
  torch::Tensor terminals;
  torch::Tensor timeouts;
  torch::Tensor next_observations;
  torch::Tensor qpos;
  torch::Tensor qvel;
  std::map<std::string, torch::Tensor> infos;
  nlohmann::json metadata = nlohmann::json::object();
  std::map<std::string, torch::Tensor> metadata_arrays;

  /// Number of rows N (0 if empty).
  [[nodiscard]] int64_t size() const { return observations.defined() ? observations.size(0) : 0; }
  [[nodiscard]] int64_t observation_dim() const { return observations.defined() ? observations.size(1) : 0; }
  [[nodiscard]] int64_t action_dim() const { return actions.defined() ? actions.size(1) : 0; }
  [[nodiscard]] bool has_timeouts() const { return timeouts.defined(); }
  [[nodiscard]] bool has_next_observations() const { return next_observations.defined(); }
  /// True when the full MuJoCo state (qpos and qvel) is present.
  [[nodiscard]] bool has_state() const { return qpos.defined() && qvel.defined(); }

  /// Checks ranks, row counts, dtypes and finiteness of every field.
  /// @param where names the dataset (a file name) in messages: "<where>: <key>: …".
  /// @throws DatasetError naming the key and its shape, or the first non-finite value.
  void validate(const std::string& where) const;

  /// The rows `index` (int64 [M]) of every per-row field; metadata is copied.
  [[nodiscard]] TransitionDataset select(const torch::Tensor& index) const;

  /// Rows [begin, end).
  [[nodiscard]] TransitionDataset slice(int64_t begin, int64_t end) const {
    return select(torch::arange(begin, end, torch::kLong));
  }

  /// Draws `batch_size` rows uniformly with replacement from the seeded generator of `rng`.
  /// Requires `next_observations` (call qlearning_dataset() on raw data first).
  /// @returns a mopo::Batch with terminals as float32 0/1.
  [[nodiscard]] Batch sample(int64_t batch_size, RandomState& rng) const;

  /// All rows as one Batch (requires next_observations).
  [[nodiscard]] Batch as_batch() const;

  /// Returns of the complete episodes, split where `terminals | timeouts` (as D4RL's sequence_dataset).
  [[nodiscard]] std::vector<double> episode_returns() const;
  /// Count, mean/std/min/max return and mean length of the complete episodes.
  [[nodiscard]] EpisodeStats episode_stats() const;
};

/// Row-wise concatenation of datasets with the same layout (metadata from the first). Used to stitch
/// medium-expert data as D4RL's stitch_dataset.py does.
inline TransitionDataset concatenate(const std::vector<TransitionDataset>& parts);

/// D4RL's `qlearning_dataset` (Farama-Foundation/D4RL d4rl/__init__.py), reproduced exactly:
/// loop over rows i = 0 … N−2 (the last row is never used); s' = observations[i + 1] (or the stored
/// next_observations with `use_next_observations`); `final` = timeouts[i], or, without timeouts,
/// episode_step == max_episode_steps − 1; a final row is dropped unless terminate_on_end; episode_step is
/// reset after a terminal or final row. Consequence: at a terminal row D4RL's s' is the first observation of
/// the next episode (harmless for Q-learning, wrong for dynamics learning). qpos/qvel/infos rows follow
/// their transitions. The result has `timeouts` all false and `next_observations` set.
inline TransitionDataset qlearning_dataset(const TransitionDataset& raw,
                                           const QLearningOptions& options = {});

/// The task a dataset's metadata names, if any: `metadata["task"]` (written by the dataset zoo,
/// mopo::zoo::save_with_card) or, for a Minari dataset (load_minari()), the environment id in
/// `metadata["minari"]["env_spec"]` (a JSON string, as Minari writes it, or an object; "HalfCheetah-v4" →
/// "halfcheetah") or the second part of
/// `metadata["minari"]["dataset_id"]` ("mujoco/hopper/medium-v0" → "hopper"). Lower case.
inline std::optional<std::string> dataset_task(const nlohmann::json& metadata);

/// Checks that the dataset read from `source` was collected on `task` when its metadata says
/// (dataset_task()); a dataset without that metadata (e.g. D4RL's own files) passes.
/// @throws DatasetError "<source>: the dataset's metadata names task 'hopper' (metadata/task), expected
/// 'halfcheetah'".
inline void check_dataset_task(const TransitionDataset& data, const std::string& task,
                               const std::string& source);

// ---------------------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------------------

namespace detail {

inline std::string shape_of(const torch::Tensor& t) {
  if (!t.defined()) return "<missing>";
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "] " + std::string(c10::toString(t.scalar_type()));
}

inline void dataset_check(bool ok, const std::string& where, const std::string& key, const std::string& what,
                          const torch::Tensor& t) {
  if (!ok) throw DatasetError(where + ": " + key + ": " + what + ", got " + shape_of(t));
}

inline void dataset_check_finite(const torch::Tensor& t, const std::string& where, const std::string& key) {
  if (!t.defined() || !t.is_floating_point() || t.numel() == 0) return;
  const auto bad = torch::logical_not(torch::isfinite(t));
  if (!bad.any().item<bool>()) return;
  const auto first = bad.nonzero()[0];
  std::string idx;
  for (int64_t i = 0; i < first.numel(); ++i)
    idx += (i ? ", " : "") + std::to_string(first[i].item<int64_t>());
  const auto flat = bad.reshape({-1}).nonzero()[0][0].item<int64_t>();
  const double value = t.reshape({-1})[flat].item<double>();
  throw DatasetError(where + ": " + key + ": contains " + std::to_string(bad.sum().item<int64_t>()) +
                     " non-finite value(s); first at [" + idx + "] = " + (std::isnan(value) ? "nan" : "inf"));
}

}  // namespace detail

inline void TransitionDataset::validate(const std::string& where) const {
  using detail::dataset_check;
  dataset_check(observations.defined(), where, "observations", "missing", observations);
  dataset_check(observations.dim() == 2, where, "observations", "expected rank 2 (N, obs_dim)", observations);
  const int64_t n = observations.size(0);
  if (n == 0) throw DatasetError(where + ": observations: empty dataset (0 rows)");
  dataset_check(observations.size(1) > 0, where, "observations", "obs_dim must be > 0", observations);
  dataset_check(observations.is_floating_point(), where, "observations", "expected floating point",
                observations);
  dataset_check(actions.defined(), where, "actions", "missing", actions);
  dataset_check(
      actions.dim() == 2 && actions.size(0) == n && actions.size(1) > 0 && actions.is_floating_point(), where,
      "actions", "expected float (" + std::to_string(n) + ", act_dim)", actions);
  dataset_check(rewards.defined(), where, "rewards", "missing", rewards);
  dataset_check(rewards.dim() == 1 && rewards.size(0) == n && rewards.is_floating_point(), where, "rewards",
                "expected float (" + std::to_string(n) + ",)", rewards);
  dataset_check(terminals.defined(), where, "terminals", "missing", terminals);
  dataset_check(terminals.dim() == 1 && terminals.size(0) == n && terminals.scalar_type() == torch::kBool,
                where, "terminals", "expected bool (" + std::to_string(n) + ",)", terminals);
  if (timeouts.defined()) {
    dataset_check(timeouts.dim() == 1 && timeouts.size(0) == n && timeouts.scalar_type() == torch::kBool,
                  where, "timeouts", "expected bool (" + std::to_string(n) + ",)", timeouts);
  }
  if (next_observations.defined()) {
    dataset_check(next_observations.sizes() == observations.sizes() && next_observations.is_floating_point(),
                  where, "next_observations",
                  "expected the shape of observations " + detail::shape_of(observations), next_observations);
  }
  for (const auto& [key, t] : {std::pair<std::string, const torch::Tensor*>{"infos/qpos", &qpos},
                               std::pair<std::string, const torch::Tensor*>{"infos/qvel", &qvel}}) {
    if (t->defined()) {
      dataset_check(t->dim() == 2 && t->size(0) == n && t->is_floating_point(), where, key,
                    "expected float (" + std::to_string(n) + ", dim)", *t);
    }
  }
  if (qpos.defined() != qvel.defined()) {
    throw DatasetError(where + ": " + std::string(qpos.defined() ? "infos/qvel" : "infos/qpos") +
                       ": missing (qpos and qvel must both be present or both absent)");
  }
  for (const auto& [key, t] : infos) {
    dataset_check(t.defined() && t.dim() >= 1 && t.size(0) == n, where, "infos/" + key,
                  "expected " + std::to_string(n) + " rows", t);
  }
  detail::dataset_check_finite(observations, where, "observations");
  detail::dataset_check_finite(actions, where, "actions");
  detail::dataset_check_finite(rewards, where, "rewards");
  detail::dataset_check_finite(next_observations, where, "next_observations");
  detail::dataset_check_finite(qpos, where, "infos/qpos");
  detail::dataset_check_finite(qvel, where, "infos/qvel");
}

inline TransitionDataset TransitionDataset::select(const torch::Tensor& index) const {
  auto pick = [&](const torch::Tensor& t) {
    return t.defined() ? t.index_select(0, index) : torch::Tensor();
  };
  TransitionDataset out;
  out.observations = pick(observations);
  out.actions = pick(actions);
  out.rewards = pick(rewards);
  out.terminals = pick(terminals);
  out.timeouts = pick(timeouts);
  out.next_observations = pick(next_observations);
  out.qpos = pick(qpos);
  out.qvel = pick(qvel);
  for (const auto& [key, t] : infos) out.infos[key] = pick(t);
  out.metadata = metadata;
  out.metadata_arrays = metadata_arrays;
  return out;
}

inline Batch TransitionDataset::as_batch() const {
  if (!next_observations.defined()) {
    throw ValueError(
        "TransitionDataset: next_observations are missing; build transitions with qlearning_dataset() first");
  }
  return {observations, actions, rewards, next_observations, terminals.to(torch::kFloat32)};
}

inline Batch TransitionDataset::sample(int64_t batch_size, RandomState& rng) const {
  if (batch_size < 1)
    throw ValueError("TransitionDataset::sample: batch_size must be >= 1, got " + std::to_string(batch_size));
  if (size() == 0) throw ValueError("TransitionDataset::sample: the dataset is empty");
  if (!next_observations.defined()) {
    throw ValueError(
        "TransitionDataset::sample: next_observations are missing; build transitions with "
        "qlearning_dataset() "
        "first");
  }
  const auto idx = rng.randint(size(), batch_size);
  return {observations.index_select(0, idx), actions.index_select(0, idx), rewards.index_select(0, idx),
          next_observations.index_select(0, idx), terminals.index_select(0, idx).to(torch::kFloat32)};
}

inline std::vector<double> TransitionDataset::episode_returns() const {
  std::vector<double> returns;
  const int64_t n = size();
  if (n == 0) return returns;
  const auto r = rewards.to(torch::kFloat64).contiguous();
  auto ends = terminals.to(torch::kBool);
  if (timeouts.defined()) ends = ends.logical_or(timeouts);
  ends = ends.contiguous();
  const double* rp = r.data_ptr<double>();
  const bool* ep = ends.data_ptr<bool>();
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    acc += rp[i];
    if (ep[i]) {
      returns.push_back(acc);
      acc = 0.0;
    }
  }
  return returns;
}

inline EpisodeStats TransitionDataset::episode_stats() const {
  EpisodeStats s;
  const auto returns = episode_returns();
  s.count = static_cast<int64_t>(returns.size());
  int64_t last_end = -1;
  if (size() > 0) {
    auto ends = terminals.to(torch::kBool);
    if (timeouts.defined()) ends = ends.logical_or(timeouts);
    const auto idx = ends.nonzero();
    if (idx.size(0) > 0) last_end = idx[idx.size(0) - 1][0].item<int64_t>();
  }
  s.incomplete_steps = size() - 1 - last_end;
  if (s.count == 0) return s;
  double sum = 0.0;
  s.min_return = std::numeric_limits<double>::infinity();
  s.max_return = -std::numeric_limits<double>::infinity();
  for (double r : returns) {
    sum += r;
    s.min_return = std::min(s.min_return, r);
    s.max_return = std::max(s.max_return, r);
  }
  s.mean_return = sum / static_cast<double>(s.count);
  double sq = 0.0;
  for (double r : returns) sq += (r - s.mean_return) * (r - s.mean_return);
  s.std_return = std::sqrt(sq / static_cast<double>(s.count));
  s.mean_length = static_cast<double>(last_end + 1) / static_cast<double>(s.count);
  return s;
}

inline TransitionDataset concatenate(const std::vector<TransitionDataset>& parts) {
  if (parts.empty()) throw ValueError("concatenate: no datasets given");
  auto cat = [&](auto member, const char* key) {
    std::vector<torch::Tensor> ts;
    int64_t defined = 0;
    for (const auto& p : parts) {
      const torch::Tensor& t = p.*member;
      if (t.defined()) {
        ts.push_back(t);
        ++defined;
      }
    }
    if (defined == 0) return torch::Tensor();
    if (defined != static_cast<int64_t>(parts.size())) {
      throw ValueError(std::string("concatenate: field '") + key + "' is present in some datasets only");
    }
    return torch::cat(ts);
  };
  TransitionDataset out;
  out.observations = cat(&TransitionDataset::observations, "observations");
  out.actions = cat(&TransitionDataset::actions, "actions");
  out.rewards = cat(&TransitionDataset::rewards, "rewards");
  out.terminals = cat(&TransitionDataset::terminals, "terminals");
  out.timeouts = cat(&TransitionDataset::timeouts, "timeouts");
  out.next_observations = cat(&TransitionDataset::next_observations, "next_observations");
  out.qpos = cat(&TransitionDataset::qpos, "qpos");
  out.qvel = cat(&TransitionDataset::qvel, "qvel");
  for (const auto& [key, t] : parts.front().infos) {
    std::vector<torch::Tensor> ts;
    for (const auto& p : parts) {
      const auto it = p.infos.find(key);
      if (it == p.infos.end()) {
        throw ValueError("concatenate: infos/" + key + " is present in some datasets only");
      }
      ts.push_back(it->second);
    }
    out.infos[key] = torch::cat(ts);
  }
  out.metadata = parts.front().metadata;
  out.metadata_arrays = parts.front().metadata_arrays;
  return out;
}

inline TransitionDataset qlearning_dataset(const TransitionDataset& raw, const QLearningOptions& options) {
  options.validate();
  raw.validate("qlearning_dataset input");
  if (options.use_next_observations && !raw.has_next_observations()) {
    throw ValueError(
        "qlearning_dataset: use_next_observations is set but the dataset has no next_observations");
  }
  const int64_t n = raw.size();
  const auto terminals = raw.terminals.contiguous();
  const bool* done = terminals.data_ptr<bool>();
  torch::Tensor timeouts;
  const bool* timeout = nullptr;
  if (raw.has_timeouts()) {
    timeouts = raw.timeouts.contiguous();
    timeout = timeouts.data_ptr<bool>();
  }
  std::vector<int64_t> keep;
  keep.reserve(static_cast<std::size_t>(std::max<int64_t>(0, n - 1)));
  int64_t episode_step = 0;
  for (int64_t i = 0; i + 1 < n; ++i) {  // rule 1: the last row is never used
    const bool final_step = timeout != nullptr ? timeout[i] : episode_step == options.max_episode_steps - 1;
    if (final_step && !options.terminate_on_end) {  // rule 4: drop time-out rows
      episode_step = 0;
      continue;
    }
    if (done[i] || final_step) episode_step = 0;  // rule 5 (then incremented below, as in D4RL)
    keep.push_back(i);
    ++episode_step;
  }
  const auto index = torch::tensor(keep, torch::kLong);
  TransitionDataset out = raw.select(index);
  // rule 2: s' = observations[i + 1] unless the stored next_observations are requested.
  out.next_observations = options.use_next_observations ? raw.next_observations.index_select(0, index)
                                                        : raw.observations.index_select(0, index + 1);
  out.timeouts = torch::zeros({index.size(0)}, torch::kBool);  // rule 6: time-outs are not returned
  return out;
}

namespace detail {
inline std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}
// Where dataset_task() found the name, for messages.
inline std::optional<std::pair<std::string, std::string>> dataset_task_and_key(const nlohmann::json& m) {
  if (!m.is_object()) return std::nullopt;
  if (m.contains("task") && m["task"].is_string()) return std::make_pair(lower(m["task"]), "metadata/task");
  if (!m.contains("minari") || !m["minari"].is_object()) return std::nullopt;
  const auto& minari = m["minari"];
  // Minari writes env_spec as a JSON string (gymnasium's EnvSpec.to_json()); accept an object too.
  nlohmann::json spec = minari.contains("env_spec") ? minari["env_spec"] : nlohmann::json();
  if (spec.is_string()) spec = nlohmann::json::parse(spec.get<std::string>(), nullptr, false);
  if (spec.is_object() && spec.contains("id") && spec["id"].is_string()) {
    std::string id = spec["id"];
    if (const auto v = id.rfind("-v"); v != std::string::npos) id.resize(v);  // "HalfCheetah-v4"
    if (const auto slash = id.rfind('/'); slash != std::string::npos) id = id.substr(slash + 1);
    return std::make_pair(lower(id), "metadata.json env_spec.id");
  }
  if (minari.contains("dataset_id") && minari["dataset_id"].is_string()) {
    const std::string id = minari["dataset_id"];  // "<namespace>/<env>/<name>-v<k>"
    const auto first = id.find('/');
    const auto second = first == std::string::npos ? std::string::npos : id.find('/', first + 1);
    if (second != std::string::npos)
      return std::make_pair(lower(id.substr(first + 1, second - first - 1)), "metadata.json dataset_id");
  }
  return std::nullopt;
}
}  // namespace detail

inline std::optional<std::string> dataset_task(const nlohmann::json& metadata) {
  if (auto found = detail::dataset_task_and_key(metadata)) return found->first;
  return std::nullopt;
}

inline void check_dataset_task(const TransitionDataset& data, const std::string& task,
                               const std::string& source) {
  const auto found = detail::dataset_task_and_key(data.metadata);
  if (!found || found->first == detail::lower(task)) return;
  throw DatasetError(source + ": the dataset's metadata names task '" + found->first + "' (" + found->second +
                     "), expected '" + task + "'");
}

}  // namespace mopo::data
