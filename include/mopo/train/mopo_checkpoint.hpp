/// @file mopo_checkpoint.hpp
/// @brief The files of a MopoTrainer checkpoint (reliability.md "Crash safety"): `latest.json` (the index,
/// written last), `epoch-<k>/agent.pt`, `epoch-<k>/model.pt` (once a model exists) and `epoch-<k>/trainer.pt`
/// (counters, both RNG states, the last rollout's statistics and the model buffer D_model). Readers check
/// every entry and name the file and entry at fault (fuzzed by tests/fuzz).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "mopo/config/json_config.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/detail/torch_archive.hpp"
#include "mopo/rollout/model_rollout.hpp"
#include "mopo/rollout/rollout_buffer.hpp"
#include "mopo/train/mopo_config.hpp"

namespace mopo::train {

/// The counters and rollout statistics of trainer.pt.
struct TrainerState {
  int64_t epoch = 0;
  int64_t total_steps = 0;
  rollout::RolloutStats last_rollout;
  double rollout_seconds = 0;
};

namespace detail {

/// What checkpoint/latest.json names: the epoch, the checkpoint's directory and whether it holds a model.
struct CheckpointIndex {
  int64_t epoch = 0;
  std::string dir;  ///< a directory name inside the checkpoint directory ("epoch-<k>")
  bool model = false;
};

/// Checks a parsed latest.json and that it was written by a run of the same algorithm as `config` with
/// penalty `penalty` (MopoTrainer::load_checkpoint; fuzzed by tests/fuzz). @throws IoError naming `file` for
/// a malformed index, ConfigError naming the setting for another algorithm's checkpoint.
inline CheckpointIndex read_checkpoint_index(const nlohmann::json& latest, const std::filesystem::path& file,
                                             const MopoConfig& config, const std::string& penalty) {
  const std::string where = file.string() + ": ";
  if (!latest.is_object() || !latest.contains("dir") || !latest.contains("epoch")) {
    throw IoError(where + "not a mopo checkpoint index (keys dir, epoch)");
  }
  CheckpointIndex index;
  const auto& dir = latest["dir"];
  const auto& epoch = latest["epoch"];
  if (!dir.is_string()) throw IoError(where + "dir: expected a string, got " + dir.dump());
  index.dir = dir.get<std::string>();
  // save_checkpoint() writes "epoch-<k>"; a path or ".." would read files outside the checkpoint directory.
  if (index.dir.empty() || index.dir == "." || index.dir == ".." ||
      index.dir.find_first_of(std::string("/\\\0", 3)) != std::string::npos) {
    throw IoError(where + "dir: expected a directory name inside the checkpoint directory, got " +
                  dir.dump());
  }
  if (!epoch.is_number_integer() || epoch.get<int64_t>() < 0) {
    throw IoError(where + "epoch: expected an integer >= 0, got " + epoch.dump());
  }
  index.epoch = epoch.get<int64_t>();
  if (latest.contains("model")) {
    if (!latest["model"].is_boolean()) {
      throw IoError(where + "model: expected true or false, got " + latest["model"].dump());
    }
    index.model = latest["model"].get<bool>();
  }
  // A checkpoint of another algorithm (penalty, baseline, ensemble size, task) must not be resumed silently
  // as this one.
  auto differs = [&](const std::string& what, const nlohmann::json& saved, const nlohmann::json& now) {
    if (saved != now) {
      throw ConfigError(where + "the checkpoint was written with " + what + " = " + saved.dump() +
                        ", this trainer has " + now.dump() + "; resume with the same settings");
    }
  };
  if (latest.contains("penalty")) differs("penalty", latest["penalty"], penalty);
  if (!latest.contains("config")) return index;
  const auto& c = latest["config"];
  const auto now = config::to_json(config);
  for (const char* key : {"task", "real_only", "behavior_cloning"}) {
    if (c.contains(key)) differs(key, c[key], now[key]);
  }
  if (c.contains("ensemble") && c["ensemble"].contains("ensemble_size")) {
    differs("ensemble.ensemble_size", c["ensemble"]["ensemble_size"], now["ensemble"]["ensemble_size"]);
  }
  return index;
}

/// Reads the archive of trainer.pt: the counters, the RNG states (into `rng`) and the model buffer (into
/// `buffer`, whose dims must match). On error `rng` and `buffer` may be partly overwritten. @throws IoError
/// naming `file` and the entry (MopoTrainer::load_checkpoint; fuzzed by tests/fuzz).
inline TrainerState read_trainer_state(torch::serialize::InputArchive& archive,
                                       rollout::RolloutBuffer& buffer, RandomState& rng,
                                       const std::string& file) {
  const std::string where = file + ": ";
  auto scalar = [&](const char* key) {
    torch::Tensor t;
    archive.read(key, t, true);
    mopo::detail::check_storage(t, where + key);
    if (t.scalar_type() != torch::kLong || t.numel() != 1) {
      throw IoError(where + key + ": expected one int64, got " + mopo::detail::describe(t));
    }
    return t.item<int64_t>();
  };
  try {
    TrainerState state;
    state.epoch = scalar("epoch");
    state.total_steps = scalar("total_steps");
    if (state.epoch < 0 || state.total_steps < 0) {
      throw IoError(where + "epoch / total_steps: negative (" + std::to_string(state.epoch) + ", " +
                    std::to_string(state.total_steps) + ")");
    }
    torch::Tensor gen, engine;
    archive.read("rng.generator", gen, true);
    archive.read("rng.engine", engine, true);
    mopo::detail::check_storage(gen, where + "rng.generator");
    mopo::detail::check_storage(engine, where + "rng.engine");
    if (engine.scalar_type() != torch::kUInt8 || engine.dim() != 1) {
      throw IoError(where + "rng.engine: expected a uint8 vector, got " + mopo::detail::describe(engine));
    }
    const auto bytes = engine.contiguous();
    std::istringstream is(std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()),
                                      static_cast<std::size_t>(bytes.numel())));
    std::mt19937_64 parsed;
    if (!(is >> parsed)) throw IoError(where + "rng.engine: not a std::mt19937_64 state");
    try {
      buffer.load(archive);
    } catch (const Error& e) {  // the buffer's ShapeError / ValueError / IoError, without the file name
      throw IoError(where + e.what());
    }
    torch::Tensor stats;
    if (archive.try_read("rollout.stats", stats, true)) {  // absent in checkpoints of older versions
      mopo::detail::check_storage(stats, where + "rollout.stats");
      if (stats.numel() != 11 || stats.scalar_type() != torch::kFloat64) {
        throw IoError(where + "rollout.stats: expected 11 float64 values, got " +
                      mopo::detail::describe(stats));
      }
      const auto values = stats.contiguous();
      const auto* v = values.data_ptr<double>();
      // The counts are whole numbers written as doubles: anything else (NaN, 1e300) would make the
      // conversion undefined.
      for (int i = 0; i < 5; ++i) {
        if (!(v[i] >= 0 && v[i] <= 9.0e15 && std::floor(v[i]) == v[i])) {
          throw IoError(where + "rollout.stats: count " + std::to_string(i) + " is " + std::to_string(v[i]));
        }
      }
      auto& st = state.last_rollout;
      st.starts = static_cast<int64_t>(v[0]);
      st.transitions = static_cast<int64_t>(v[1]);
      st.terminated = static_cast<int64_t>(v[2]);
      st.halted = static_cast<int64_t>(v[3]);
      st.nonfinite = static_cast<int64_t>(v[4]);
      st.mean_raw_reward = v[5];
      st.mean_penalty = v[6];
      st.max_penalty = v[7];
      st.mean_reward = v[8];
      st.mean_length = v[9];
      state.rollout_seconds = v[10];
    }
    rng.set_generator_state(gen);
    rng.engine() = parsed;
    return state;
  } catch (const IoError&) {
    throw;
  } catch (const Error& e) {  // the buffer's ShapeError / ValueError
    throw IoError(where + e.what());
  } catch (const std::exception& e) {  // c10::Error, torch::jit::ErrorReport
    throw IoError(where + "cannot read trainer state (" + mopo::detail::torch_message(e) + ")");
  }
}

/// Loads trainer.pt into `archive`: from the file `file`, or from `size` bytes at `data` if not null (the
/// fuzz target). @throws IoError naming `file` for anything LibTorch throws.
inline void load_trainer_archive(torch::serialize::InputArchive& archive, const std::string& file,
                                 const char* data = nullptr, std::size_t size = 0) {
  mopo::detail::read_torch_archive(archive, file, "cannot read trainer state", data, size);
}

/// Writes trainer.pt (`file`) atomically: the counters and rollout statistics of `state`, both states of
/// `rng` and the model buffer. read_trainer_state() reads it back. @throws IoError naming `file`.
inline void write_trainer_state(const std::filesystem::path& file, const TrainerState& state,
                                RandomState& rng, const rollout::RolloutBuffer& buffer) {
  torch::serialize::OutputArchive archive;
  archive.write("epoch", torch::tensor(state.epoch, torch::kLong), true);
  archive.write("total_steps", torch::tensor(state.total_steps, torch::kLong), true);
  archive.write("rng.generator", rng.generator_state(), true);
  std::ostringstream engine;
  engine << rng.engine();
  const std::string es = engine.str();
  archive.write(
      "rng.engine",
      torch::from_blob(const_cast<char*>(es.data()), {static_cast<int64_t>(es.size())}, torch::kUInt8)
          .clone(),
      true);
  // The last rollout's statistics: an epoch without a rollout of its own reports them (rollout_freq >
  // steps_per_epoch), so a resumed run must too.
  const auto& st = state.last_rollout;
  archive.write(
      "rollout.stats",
      torch::tensor(
          std::vector<double>{static_cast<double>(st.starts), static_cast<double>(st.transitions),
                              static_cast<double>(st.terminated), static_cast<double>(st.halted),
                              static_cast<double>(st.nonfinite), st.mean_raw_reward, st.mean_penalty,
                              st.max_penalty, st.mean_reward, st.mean_length, state.rollout_seconds},
          torch::kFloat64),
      true);
  buffer.save(archive);
  // Straight to the temporary file: the buffer is most of the bytes (42 MB at 250 000 rows), and an
  // in-memory archive plus its string copy would cost two more passes over it.
  atomic_write_with(file, [&](const std::string& tmp) {
    try {
      archive.save_to(tmp);
    } catch (const c10::Error& e) {
      throw IoError(file.string() + ": cannot write " + tmp + ": " + e.what_without_backtrace());
    }
  });
}

/// After a checkpoint `name` is complete (latest.json names it): removes the older `epoch-*` directories
/// of `dir` and the temporary files a process killed mid-write left (atomic_write's
/// "<file>.tmp.<pid>.<n>"). Best effort: a failure to tidy up is not worth stopping for.
inline void remove_stale_checkpoints(const std::filesystem::path& dir, const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path sub = dir / name;
  std::error_code ec;
  auto stale_temp = [](const fs::directory_entry& e) {
    std::error_code e_ec;
    return e.is_regular_file(e_ec) && e.path().filename().string().find(".tmp.") != std::string::npos;
  };
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto fname = it->path().filename().string();
    std::error_code d_ec;
    if ((it->is_directory(d_ec) && fname.rfind("epoch-", 0) == 0 && fname != name) || stale_temp(*it))
      fs::remove_all(it->path(), d_ec);
  }
  ec.clear();
  for (fs::directory_iterator it(sub, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code r_ec;
    if (stale_temp(*it)) fs::remove(it->path(), r_ec);
  }
}

}  // namespace detail
}  // namespace mopo::train
