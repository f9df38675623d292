/// @file d4rl_hdf5.hpp
/// @brief Read and write offline datasets in D4RL's HDF5 layout (environments.md §10.2).
///
/// Keys: `observations` (N, O), `actions` (N, A), `rewards` (N,) [or (N, 1) in old files], `terminals` (N,)
/// bool, `timeouts` (N,) bool, optional `next_observations` (N, O), `infos/qpos` (N, nq), `infos/qvel` (N,
/// nv), other `infos/*` arrays with N rows, and `metadata/*` (scalar strings/numbers, nested groups, arrays
/// such as the behaviour policy's weights). Files written here open in h5py with D4RL's keys, dtypes (float32
/// or float64; bools as numpy bool) and shapes, gzip-compressed like D4RL's.
///
/// @code
/// auto raw = mopo::data::load_d4rl_hdf5("hopper_medium-v2.hdf5");           // rows as stored
/// auto data = mopo::data::qlearning_dataset(raw);                            // d4rl.qlearning_dataset rules
/// mopo::data::save_d4rl_hdf5("copy.hdf5", raw, {torch::kFloat64, 4});       // atomic write
/// @endcode
#pragma once

#include <hdf5.h>

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/data/hdf5.hpp"
#include "mopo/data/transition_dataset.hpp"

namespace mopo::data {

/// What load_d4rl_hdf5() reads besides the four required keys.
struct D4rlReadOptions {
  bool load_state = true;     ///< infos/qpos and infos/qvel
  bool load_infos = true;     ///< other infos/* arrays with N rows (e.g. action_log_probs)
  bool load_metadata = true;  ///< metadata/*
  /// If > 0, the observation / action widths the file must have (like d4rl's get_dataset checks against
  /// the environment's spaces).
  int64_t observation_dim = 0;
  int64_t action_dim = 0;
  /// If set, the task the file's metadata must name when it names one (metadata/task, written by the
  /// dataset zoo; check_dataset_task()). Checked before the widths, and needs load_metadata.
  std::string task;

  template <class V>
  void visit(V&& v) {
    v("load_state", load_state);
    v("load_infos", load_infos);
    v("load_metadata", load_metadata);
    v("observation_dim", observation_dim);
    v("action_dim", action_dim);
    v("task", task);
  }
};

/// How save_d4rl_hdf5() stores floating-point arrays.
struct D4rlWriteOptions {
  /// torch::kFloat32 (D4RL's random/medium/expert files) or torch::kFloat64 (its replay files).
  torch::Dtype dtype = torch::kFloat32;
  /// gzip (deflate) level 1–9, 0 = uncompressed. D4RL's files use h5py's compression='gzip' (level 4).
  int gzip_level = 4;

  void validate() const {
    if (dtype != torch::kFloat32 && dtype != torch::kFloat64) {
      throw ValueError(std::string("D4rlWriteOptions.dtype: expected float32 or float64, got ") +
                       c10::toString(dtype));
    }
    if (gzip_level < 0 || gzip_level > 9) {
      throw ValueError("D4rlWriteOptions.gzip_level: expected 0..9, got " + std::to_string(gzip_level));
    }
  }
};

/// Reads a D4RL-layout HDF5 file as raw rows (apply qlearning_dataset() to get transitions).
/// Floating arrays become float32, flags bool; (N, 1) rewards/terminals/timeouts are squeezed.
/// @throws IoError if the file cannot be opened; DatasetError naming the file and the key for a file that is
/// not HDF5, truncated, lacks a required key, has a wrong rank, mismatched lengths, NaN/Inf or no rows, or
/// (with the options) names another task or has other widths.
inline TransitionDataset load_d4rl_hdf5(const std::filesystem::path& path,
                                        const D4rlReadOptions& options = {});

/// Reads a D4RL-layout file from an in-memory HDF5 file image (e.g. bytes received over a network, or a
/// fuzzer's input) with the same checks as load_d4rl_hdf5(); HDF5 copies the bytes. `name` names the image in
/// error messages. @throws DatasetError naming `name` and the key.
inline TransitionDataset load_d4rl_hdf5_image(const void* data, std::size_t size, const std::string& name,
                                              const D4rlReadOptions& options = {});

/// Writes `data` in D4RL's layout: the file is built in memory, then written through a temporary file
/// renamed into place (mopo::atomic_write).
/// `timeouts`, `next_observations`, state, infos and metadata are written when present.
/// @throws DatasetError if `data` is invalid (nothing is written), ValueError for bad options, IoError /
/// DatasetError naming the file and key if HDF5 fails; the previous file, if any, is then kept.
inline void save_d4rl_hdf5(const std::filesystem::path& path, const TransitionDataset& data,
                           const D4rlWriteOptions& options = {});

// ---------------------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------------------

namespace detail {

/// Reads `key` as a tensor of `dtype` and checks its rank; (N, 1) is squeezed when `vector` is set.
inline torch::Tensor d4rl_read(hid_t file, const std::string& key, torch::Dtype dtype, bool vector,
                               const std::string& name) {
  auto dset = h5::open_dataset(file, key, name);
  const auto in = h5::info(dset.get(), name, key);
  if (in.type_class != H5T_INTEGER && in.type_class != H5T_FLOAT && !in.is_bool_enum) {
    throw DatasetError(name + ": " + key + ": expected a numeric dataset, got HDF5 type class " +
                       h5::class_name(in.type_class) + " with shape " + in.shape_string());
  }
  if (vector) {
    if (!(in.rank() == 1 || (in.rank() == 2 && in.dims[1] == 1))) {
      throw DatasetError(name + ": " + key + ": expected shape (N,) or (N, 1), got " + in.shape_string());
    }
  } else if (in.rank() != 2) {
    throw DatasetError(name + ": " + key + ": expected rank 2 (N, dim), got shape " + in.shape_string());
  }
  auto t = h5::read_tensor(dset.get(), in, dtype, name, key);
  return vector ? t.reshape({-1}) : t;
}

inline void d4rl_check_rows(const torch::Tensor& t, int64_t n, const std::string& name,
                            const std::string& key) {
  if (t.size(0) != n) {
    throw DatasetError(name + ": " + key + ": has " + std::to_string(t.size(0)) +
                       " rows but observations has " + std::to_string(n));
  }
}

/// Groups nested deeper than this below metadata/ are refused: a damaged file can link a group to itself
/// or to an ancestor, and the recursion would not end (found by the d4rl_hdf5 fuzz target).
inline constexpr int kMaxMetadataDepth = 16;

/// Recursively reads metadata below `group` into json (scalars) and arrays (rank >= 1), keys relative.
inline void d4rl_read_metadata(hid_t file, const std::string& group, const std::string& prefix,
                               nlohmann::json& json, std::map<std::string, torch::Tensor>& arrays,
                               const std::string& name, int depth = 0) {
  if (depth > kMaxMetadataDepth) {
    throw DatasetError(name + ": " + group + ": metadata groups nested deeper than " +
                       std::to_string(kMaxMetadataDepth) + " levels (a group linked into itself?)");
  }
  for (const auto& child : h5::children(file, group, name)) {
    const std::string path = group + "/" + child;
    const std::string rel = prefix.empty() ? child : prefix + "/" + child;
    const auto kind = h5::kind_of(file, path);
    if (kind == h5::ObjectKind::kGroup) {
      nlohmann::json sub = nlohmann::json::object();
      d4rl_read_metadata(file, path, rel, sub, arrays, name, depth + 1);
      if (!sub.empty()) json[child] = std::move(sub);
      continue;
    }
    if (kind != h5::ObjectKind::kDataset) continue;
    auto dset = h5::open_dataset(file, path, name);
    const auto in = h5::info(dset.get(), name, path);
    if (in.type_class == H5T_STRING) {
      if (in.rank() == 0) json[child] = h5::read_string(dset.get(), in, name, path);
      continue;  // string arrays are not represented
    }
    const bool numeric = in.type_class == H5T_INTEGER || in.type_class == H5T_FLOAT || in.is_bool_enum;
    if (!numeric) continue;  // compound, opaque, … are skipped
    const torch::Dtype dtype = in.is_bool_enum                ? torch::kBool
                               : in.type_class == H5T_INTEGER ? torch::kInt64
                               : in.type_size > 4             ? torch::kFloat64
                                                              : torch::kFloat32;
    auto t = h5::read_tensor(dset.get(), in, dtype, name, path);
    if (in.rank() == 0) {
      if (dtype == torch::kBool) {
        json[child] = t.item<bool>();
      } else if (dtype == torch::kInt64) {
        json[child] = t.item<int64_t>();
      } else {
        json[child] = t.item<double>();
      }
    } else {
      arrays[rel] = dtype == torch::kFloat64 ? t.to(torch::kFloat32) : t;
    }
  }
}

inline void d4rl_write_metadata(hid_t file, const std::string& group, const nlohmann::json& json,
                                const std::string& name) {
  for (auto it = json.begin(); it != json.end(); ++it) {
    const std::string key = group + "/" + it.key();
    const auto& v = it.value();
    if (v.is_object()) {
      d4rl_write_metadata(file, key, v, name);
    } else if (v.is_string()) {
      h5::write_string(file, key, v.get<std::string>(), name);
    } else if (v.is_boolean()) {
      h5::write_tensor(file, key, torch::tensor(v.get<bool>()), torch::kFloat64, 0, name);
    } else if (v.is_number_integer()) {
      h5::write_tensor(file, key, torch::tensor(v.get<int64_t>(), torch::kLong), torch::kFloat64, 0, name);
    } else if (v.is_number()) {
      h5::write_tensor(file, key, torch::tensor(v.get<double>(), torch::kFloat64), torch::kFloat64, 0, name);
    } else if (!v.is_null()) {
      throw ValueError(name + ": " + key + ": metadata of JSON type " + std::string(v.type_name()) +
                       " cannot be stored (use metadata_arrays for arrays)");
    }
  }
}

}  // namespace detail

namespace detail {

/// The reader behind load_d4rl_hdf5() and load_d4rl_hdf5_image(): `f` is open, `name` names it in errors.
inline TransitionDataset d4rl_load(hid_t f, const std::string& name, const D4rlReadOptions& options) {
  TransitionDataset d;
  d.observations = detail::d4rl_read(f, "observations", torch::kFloat32, false, name);
  const int64_t n = d.observations.size(0);
  if (n == 0) throw DatasetError(name + ": observations: empty dataset (0 rows)");
  d.actions = detail::d4rl_read(f, "actions", torch::kFloat32, false, name);
  detail::d4rl_check_rows(d.actions, n, name, "actions");
  d.rewards = detail::d4rl_read(f, "rewards", torch::kFloat32, true, name);
  detail::d4rl_check_rows(d.rewards, n, name, "rewards");
  d.terminals = detail::d4rl_read(f, "terminals", torch::kBool, true, name);
  detail::d4rl_check_rows(d.terminals, n, name, "terminals");
  if (h5::exists(f, "timeouts")) {
    d.timeouts = detail::d4rl_read(f, "timeouts", torch::kBool, true, name);
    detail::d4rl_check_rows(d.timeouts, n, name, "timeouts");
  }
  if (h5::exists(f, "next_observations")) {
    d.next_observations = detail::d4rl_read(f, "next_observations", torch::kFloat32, false, name);
    detail::d4rl_check_rows(d.next_observations, n, name, "next_observations");
  }
  if (h5::kind_of(f, "infos") == h5::ObjectKind::kGroup && (options.load_state || options.load_infos)) {
    for (const auto& child : h5::children(f, "infos", name)) {
      const std::string key = "infos/" + child;
      const bool is_state = child == "qpos" || child == "qvel";
      if (is_state ? !options.load_state : !options.load_infos) continue;
      if (h5::kind_of(f, key) != h5::ObjectKind::kDataset) continue;
      auto dset = h5::open_dataset(f, key, name);
      const auto in = h5::info(dset.get(), name, key);
      if (is_state) {
        auto t = detail::d4rl_read(f, key, torch::kFloat32, false, name);
        detail::d4rl_check_rows(t, n, name, key);
        (child == "qpos" ? d.qpos : d.qvel) = std::move(t);
        continue;
      }
      const bool numeric = in.type_class == H5T_INTEGER || in.type_class == H5T_FLOAT || in.is_bool_enum;
      if (!numeric || in.rank() < 1) continue;
      const torch::Dtype dtype = in.is_bool_enum                ? torch::kBool
                                 : in.type_class == H5T_INTEGER ? torch::kInt64
                                                                : torch::kFloat32;
      auto t = h5::read_tensor(dset.get(), in, dtype, name, key);
      detail::d4rl_check_rows(t, n, name, key);
      d.infos[child] = std::move(t);
    }
  }
  if (options.load_metadata && h5::kind_of(f, "metadata") == h5::ObjectKind::kGroup) {
    detail::d4rl_read_metadata(f, "metadata", "", d.metadata, d.metadata_arrays, name);
  }
  if (!options.task.empty()) check_dataset_task(d, options.task, name);
  if (options.observation_dim > 0 && d.observation_dim() != options.observation_dim) {
    throw DatasetError(name + ": observations: width " + std::to_string(d.observation_dim()) +
                       " does not match the environment's observation_dim " +
                       std::to_string(options.observation_dim));
  }
  if (options.action_dim > 0 && d.action_dim() != options.action_dim) {
    throw DatasetError(name + ": actions: width " + std::to_string(d.action_dim()) +
                       " does not match the environment's action_dim " + std::to_string(options.action_dim));
  }
  d.validate(name);
  return d;
}

}  // namespace detail

inline TransitionDataset load_d4rl_hdf5(const std::filesystem::path& path, const D4rlReadOptions& options) {
  const std::string name = path.string();
  const detail::h5::ErrorSilencer silence;
  const auto file = detail::h5::open_file(name);
  return detail::d4rl_load(file.get(), name, options);
}

inline TransitionDataset load_d4rl_hdf5_image(const void* data, std::size_t size, const std::string& name,
                                              const D4rlReadOptions& options) {
  const detail::h5::ErrorSilencer silence;
  const auto file = detail::h5::open_file_image(data, size, name);
  return detail::d4rl_load(file.get(), name, options);
}

inline void save_d4rl_hdf5(const std::filesystem::path& path, const TransitionDataset& data,
                           const D4rlWriteOptions& options) {
  namespace h5 = detail::h5;
  options.validate();
  const std::string name = path.string();
  data.validate(name);
  if (!data.metadata.is_object()) throw ValueError(name + ": metadata: expected a JSON object");
  const h5::ErrorSilencer silence;
  // The file is built in memory (HDF5's core driver without a backing store) and its image written with
  // atomic_write, whose every step is checked. HDF5 never writes to disk itself here: a write or close
  // that fails inside HDF5 (disk full, file too large) leaves a half-closed file in its ID table, and
  // HDF5 1.10 then crashes at exit (H5F__close_cb from H5_term_library).
  std::string image;
  {
    auto fapl = h5::own(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, name, "", "cannot create property list");
    h5::check(H5Pset_fapl_core(fapl.get(), std::size_t{1} << 20, /*backing_store=*/0), name, "",
              "cannot select the in-memory HDF5 driver");
    const std::string memory_name = mopo::detail::temp_path_for(path);  // unique: never a file HDF5 has open
    const h5::Handle fcpl = h5::untimed_create_plist(H5P_FILE_CREATE, name, "");  // the root group's too
    auto file = h5::own(H5Fcreate(memory_name.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()), H5Fclose, name,
                        "", "cannot create the in-memory HDF5 file");
    const hid_t f = file.get();
    const auto dt = options.dtype;
    const int gz = options.gzip_level;
    h5::write_tensor(f, "observations", data.observations, dt, gz, name);
    h5::write_tensor(f, "actions", data.actions, dt, gz, name);
    h5::write_tensor(f, "rewards", data.rewards, dt, gz, name);
    h5::write_tensor(f, "terminals", data.terminals, dt, gz, name);
    if (data.has_timeouts()) h5::write_tensor(f, "timeouts", data.timeouts, dt, gz, name);
    if (data.has_next_observations())
      h5::write_tensor(f, "next_observations", data.next_observations, dt, gz, name);
    if (data.qpos.defined()) h5::write_tensor(f, "infos/qpos", data.qpos, dt, gz, name);
    if (data.qvel.defined()) h5::write_tensor(f, "infos/qvel", data.qvel, dt, gz, name);
    for (const auto& [key, t] : data.infos) h5::write_tensor(f, "infos/" + key, t, dt, gz, name);
    detail::d4rl_write_metadata(f, "metadata", data.metadata, name);
    for (const auto& [key, t] : data.metadata_arrays) {
      h5::write_tensor(f, "metadata/" + key, t,
                       t.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32, 0, name);
    }
    h5::check(H5Fflush(f, H5F_SCOPE_GLOBAL), name, "", "cannot flush the in-memory HDF5 file");
    const ssize_t size = H5Fget_file_image(f, nullptr, 0);
    if (size <= 0) throw DatasetError(h5::message(name, "", "cannot get the HDF5 file image"));
    image.resize(static_cast<std::size_t>(size));
    if (H5Fget_file_image(f, image.data(), image.size()) != size) {
      throw DatasetError(h5::message(name, "", "cannot copy the HDF5 file image"));
    }
    h5::check(file.close(), name, "", "cannot close the in-memory HDF5 file");
  }
  atomic_write(path, image);
}

}  // namespace mopo::data
