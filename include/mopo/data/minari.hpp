/// @file minari.hpp
/// @brief Read Minari datasets (HDF5 storage) into a TransitionDataset (environments.md §11).
///
/// Minari stores one group `episode_<id>` per episode in `data/main_data.hdf5`, with `observations` of T + 1
/// rows (the final observation included), `actions`, `rewards`, `terminations` and `truncations` of T rows,
/// and optional `infos/<key>` of T + 1 rows. `data/metadata.json` describes the dataset. Because the final
/// observation is stored, every step is a valid transition with an exact s':
/// observations = o[0:T], next_observations = o[1:T+1], terminals = terminations, timeouts = truncations,
/// and infos (qpos, qvel, …) take the rows o[0:T] refer to (the state before each action).
/// The result can be sampled directly; do **not** pass it through qlearning_dataset() unless D4RL's
/// rules are wanted (they would drop every truncated step and the last row).
///
/// @code
/// auto data = mopo::data::load_minari(mopo::data::minari_dataset_path("mujoco/hopper/medium-v0"));
/// auto batch = data.sample(256, rng);
/// @endcode
#pragma once

#include <hdf5.h>

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/data/hdf5.hpp"
#include "mopo/data/transition_dataset.hpp"

namespace mopo::data {

/// What load_minari() reads.
struct MinariReadOptions {
  bool load_infos = true;    ///< infos/* arrays (qpos and qvel go to the state fields)
  int64_t max_episodes = 0;  ///< read only the first episodes (by id); 0 = all
  /// If set, the task metadata.json must name when it names one (env_spec's id or dataset_id;
  /// check_dataset_task()), e.g. "hopper" for "mujoco/hopper/medium-v0".
  std::string task;

  template <class V>
  void visit(V&& v) {
    v("load_infos", load_infos);
    v("max_episodes", max_episodes);
    v("task", task);
  }
};

/// Where Minari keeps dataset `id` (e.g. "D4RL/door/human-v2"): $MINARI_DATASETS_PATH/<id>, else
/// ~/.minari/datasets/<id>.
inline std::filesystem::path minari_dataset_path(const std::string& id) {
  if (const char* root = std::getenv("MINARI_DATASETS_PATH"); root != nullptr && *root != '\0') {
    return std::filesystem::path(root) / id;
  }
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home != nullptr ? home : ".") / ".minari" / "datasets" / id;
}

/// Reads a Minari dataset. `path` may be the dataset directory, its `data/` directory or the
/// `main_data.hdf5` file itself. `metadata.json`, when found beside the file, is stored under
/// `metadata["minari"]` and its `total_steps` / `total_episodes` are checked against the file.
/// @throws IoError if nothing can be opened; DatasetError naming the file and the key (e.g.
/// "episode_3/observations") for wrong row counts, missing keys, Dict/Tuple spaces, NaN/Inf, no episodes.
inline TransitionDataset load_minari(const std::filesystem::path& path,
                                     const MinariReadOptions& options = {});

/// Applies a Minari `metadata.json` (its text; `meta_name` names it in errors) to `data` read from `name`
/// (by load_minari()): unless options.max_episodes cut the episodes, its integer `total_steps` and
/// `total_episodes` must equal data.size() and data.metadata["episodes"]; it is then stored under
/// `data.metadata["minari"]`, and options.task is checked against the task it names (check_dataset_task()).
/// @throws DatasetError naming `meta_name` (malformed JSON, a count that differs) or `name` (another task);
/// ValueError if data.metadata is not a JSON object.
inline void apply_minari_metadata(TransitionDataset& data, const std::string& text,
                                  const std::string& meta_name, const std::string& name,
                                  const MinariReadOptions& options = {});

/// Reads the episodes of a Minari `main_data.hdf5` held in memory as an HDF5 file image, with the same
/// checks as load_minari() (no metadata.json: there is no directory). `name` names the image in errors.
/// @throws DatasetError naming `name` and the key.
inline TransitionDataset load_minari_image(const void* data, std::size_t size, const std::string& name,
                                           const MinariReadOptions& options = {});

// ---------------------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------------------

namespace detail {

/// Reads a numeric dataset of `rows` rows as float32 (or bool), rank 1 → one column when `as_matrix`.
inline torch::Tensor minari_read(hid_t file, const std::string& key, int64_t rows, torch::Dtype dtype,
                                 bool as_matrix, const std::string& name) {
  namespace h5 = detail::h5;
  if (h5::kind_of(file, key) == h5::ObjectKind::kGroup) {
    throw DatasetError(name + ": " + key +
                       ": is a group (Dict/Tuple spaces are not supported; flatten the space first)");
  }
  auto dset = h5::open_dataset(file, key, name);
  const auto in = h5::info(dset.get(), name, key);
  if (in.rank() < 1 || in.rank() > 2) {
    throw DatasetError(name + ": " + key + ": expected rank 1 or 2, got shape " + in.shape_string());
  }
  if (static_cast<int64_t>(in.dims[0]) != rows) {
    throw DatasetError(name + ": " + key + ": has " + std::to_string(in.dims[0]) + " rows, expected " +
                       std::to_string(rows));
  }
  auto t = h5::read_tensor(dset.get(), in, dtype, name, key);
  if (as_matrix && t.dim() == 1) t = t.unsqueeze(1);
  if (!as_matrix && t.dim() == 2) {
    if (t.size(1) != 1) {
      throw DatasetError(name + ": " + key + ": expected shape (T,) or (T, 1), got " + in.shape_string());
    }
    t = t.reshape({-1});
  }
  return t;
}

inline std::filesystem::path minari_main_file(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(path / "data" / "main_data.hdf5", ec)) return path / "data" / "main_data.hdf5";
    if (fs::exists(path / "main_data.hdf5", ec)) return path / "main_data.hdf5";
    throw IoError(path.string() + ": no data/main_data.hdf5 in this Minari dataset directory");
  }
  return path;
}

}  // namespace detail

namespace detail {

/// The episodes of an open Minari `main_data.hdf5` (`name` names it in errors), concatenated; behind
/// load_minari() and load_minari_image().
inline TransitionDataset minari_load(hid_t f, const std::string& name, const MinariReadOptions& options) {
  // Episodes in id order ("episode_10" after "episode_9").
  std::vector<std::pair<int64_t, std::string>> episodes;
  for (const auto& child : h5::children(f, "/", name)) {
    if (child.rfind("episode_", 0) != 0) continue;
    const std::string digits = child.substr(8);
    if (digits.empty() ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    // std::stoll would throw std::out_of_range past 19 digits; Minari's ids are small.
    if (digits.size() > 18) throw DatasetError(name + ": " + child + ": episode id out of range");
    episodes.emplace_back(std::stoll(digits), child);
  }
  std::sort(episodes.begin(), episodes.end());
  if (episodes.empty()) throw DatasetError(name + ": no episode_<id> groups (empty or not a Minari file)");
  if (options.max_episodes > 0 && static_cast<int64_t>(episodes.size()) > options.max_episodes) {
    episodes.resize(static_cast<std::size_t>(options.max_episodes));
  }

  std::vector<TransitionDataset> parts;
  parts.reserve(episodes.size());
  for (const auto& [id, group] : episodes) {
    if (h5::kind_of(f, group) != h5::ObjectKind::kGroup) {
      throw DatasetError(name + ": " + group + ": expected a group");
    }
    // T from the rewards (Minari's total_steps attribute equals it).
    auto rewards_dset = h5::open_dataset(f, group + "/rewards", name);
    const auto rin = h5::info(rewards_dset.get(), name, group + "/rewards");
    if (rin.rank() < 1) throw DatasetError(name + ": " + group + "/rewards: expected rank 1, got a scalar");
    const auto t = static_cast<int64_t>(rin.dims[0]);
    if (t == 0) throw DatasetError(name + ": " + group + "/rewards: episode with 0 steps");
    TransitionDataset e;
    const auto obs = detail::minari_read(f, group + "/observations", t + 1, torch::kFloat32, true, name);
    e.observations = obs.slice(0, 0, t);
    e.next_observations = obs.slice(0, 1, t + 1);
    e.actions = detail::minari_read(f, group + "/actions", t, torch::kFloat32, true, name);
    e.rewards = detail::minari_read(f, group + "/rewards", t, torch::kFloat32, false, name);
    e.terminals = detail::minari_read(f, group + "/terminations", t, torch::kBool, false, name);
    e.timeouts = detail::minari_read(f, group + "/truncations", t, torch::kBool, false, name);
    const std::string infos = group + "/infos";
    if (options.load_infos && h5::kind_of(f, infos) == h5::ObjectKind::kGroup) {
      for (const auto& key : h5::children(f, infos, name)) {
        const std::string full = infos + "/" + key;
        if (h5::kind_of(f, full) != h5::ObjectKind::kDataset) continue;  // nested dict infos are skipped
        auto dset = h5::open_dataset(f, full, name);
        const auto in = h5::info(dset.get(), name, full);
        const bool numeric = in.type_class == H5T_INTEGER || in.type_class == H5T_FLOAT || in.is_bool_enum;
        if (!numeric || in.rank() < 1) continue;
        const auto rows = static_cast<int64_t>(in.dims[0]);
        if (rows != t + 1 && rows != t) {
          throw DatasetError(name + ": " + full + ": has " + std::to_string(rows) + " rows, expected " +
                             std::to_string(t + 1) + " (or " + std::to_string(t) + ")");
        }
        const torch::Dtype dtype = in.is_bool_enum ? torch::kBool
                                   : (in.type_class == H5T_INTEGER && key != "qpos" && key != "qvel")
                                       ? torch::kInt64
                                       : torch::kFloat32;
        auto v = h5::read_tensor(dset.get(), in, dtype, name, full).slice(0, 0, t);
        if (key == "qpos" || key == "qvel") {
          if (v.dim() != 2)
            throw DatasetError(name + ": " + full + ": expected rank 2, got " + in.shape_string());
          (key == "qpos" ? e.qpos : e.qvel) = v;
        } else {
          e.infos[key] = v;
        }
      }
    }
    if (e.qpos.defined() != e.qvel.defined()) {  // a lone qpos or qvel is kept as an ordinary info
      if (e.qpos.defined()) e.infos["qpos"] = std::exchange(e.qpos, torch::Tensor());
      if (e.qvel.defined()) e.infos["qvel"] = std::exchange(e.qvel, torch::Tensor());
    }
    e.validate(name + ": " + group);
    parts.push_back(std::move(e));
  }
  // Keep only infos present in every episode.
  for (auto& p : parts) {
    for (auto it = p.infos.begin(); it != p.infos.end();) {
      const bool everywhere = std::all_of(parts.begin(), parts.end(), [&](const TransitionDataset& q) {
        return q.infos.count(it->first) > 0;
      });
      it = everywhere ? std::next(it) : p.infos.erase(it);
    }
  }
  if (!std::all_of(parts.begin(), parts.end(),
                   [&](const TransitionDataset& q) { return q.has_state() == parts.front().has_state(); })) {
    throw DatasetError(name + ": infos/qpos: present in some episodes only");
  }
  for (const auto& p : parts) {
    if (p.observation_dim() != parts.front().observation_dim() ||
        p.action_dim() != parts.front().action_dim()) {
      throw DatasetError(name + ": observations/actions: widths differ between episodes");
    }
  }
  TransitionDataset out = concatenate(parts);
  out.metadata = nlohmann::json::object();
  out.metadata["episodes"] = static_cast<int64_t>(parts.size());
  return out;
}

}  // namespace detail

inline TransitionDataset load_minari(const std::filesystem::path& path, const MinariReadOptions& options) {
  const auto main_file = detail::minari_main_file(path);
  const std::string name = main_file.string();
  TransitionDataset out;
  {
    const detail::h5::ErrorSilencer silence;
    const auto file = detail::h5::open_file(name);
    out = detail::minari_load(file.get(), name, options);
  }
  const auto meta_path = main_file.parent_path() / "metadata.json";
  std::error_code ec;
  if (std::filesystem::exists(meta_path, ec)) {
    std::ifstream in(meta_path, std::ios::binary);
    if (!in.is_open()) throw IoError(meta_path.string() + ": cannot open");
    std::ostringstream text;
    text << in.rdbuf();
    apply_minari_metadata(out, text.str(), meta_path.string(), name, options);
  } else if (!options.task.empty()) {
    check_dataset_task(out, options.task, name);
  }
  return out;
}

inline void apply_minari_metadata(TransitionDataset& data, const std::string& text,
                                  const std::string& meta_name, const std::string& name,
                                  const MinariReadOptions& options) {
  if (!data.metadata.is_object()) throw ValueError(name + ": metadata: expected a JSON object");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& err) {
    throw DatasetError(meta_name + ": malformed JSON: " + err.what());
  }
  if (options.max_episodes == 0 && meta.is_object()) {
    const auto count_differs = [&](const char* key, int64_t held, const char* what) {
      const auto it = meta.find(key);
      if (it == meta.end() || !it->is_number_integer()) return;
      // nlohmann keeps non-negative integers unsigned: compare in that type (2^64 - 1 must not become -1).
      if (it->is_number_unsigned() ? it->get<std::uint64_t>() == static_cast<std::uint64_t>(held)
                                   : it->get<int64_t>() == held) {
        return;
      }
      throw DatasetError(meta_name + ": " + key + ": " + it->dump() + " but " + name + " holds " +
                         std::to_string(held) + " " + what);
    };
    count_differs("total_steps", data.size(), "steps");
    if (const auto it = data.metadata.find("episodes");
        it != data.metadata.end() && it->is_number_integer()) {
      count_differs("total_episodes", it->get<int64_t>(), "episodes");
    }
  }
  data.metadata["minari"] = std::move(meta);
  if (!options.task.empty()) check_dataset_task(data, options.task, name);
}

inline TransitionDataset load_minari_image(const void* data, std::size_t size, const std::string& name,
                                           const MinariReadOptions& options) {
  const detail::h5::ErrorSilencer silence;
  const auto file = detail::h5::open_file_image(data, size, name);
  return detail::minari_load(file.get(), name, options);
}

}  // namespace mopo::data
