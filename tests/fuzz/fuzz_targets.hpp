// The fuzz targets' bodies (issue 16), shared by the libFuzzer entry point (tests/fuzz/fuzz_entry.cpp, clang,
// -DMOPO_BUILD_FUZZERS=ON) and the g++ regression test (tests/unit/core/test_fuzz_inputs.cpp), so every input
// the fuzzer found goes through exactly the code it crashed.
//
// Each target feeds the bytes to one input surface, the way a user's file reaches it, and returns "" if the
// input was accepted or the mopo::Error message if it was refused. Anything else — another exception type,
// a crash, a sanitizer report, a broken invariant (thrown as std::logic_error) — escapes: that is a bug.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/config/json_config.hpp"
#include "mopo/core/error.hpp"
#include "mopo/data/d4rl_hdf5.hpp"
#include "mopo/data/minari.hpp"
#include "mopo/data/transition_dataset.hpp"
#include "mopo/deploy/format.hpp"
#include "mopo/detail/torch_archive.hpp"
#include "mopo/models/gaussian_ensemble.hpp"
#include "mopo/rollout/rollout_buffer.hpp"
#include "mopo/train/mopo_trainer.hpp"
#include "mopo/train/sac_trainer.hpp"
#include "mopo/zoo/options.hpp"

namespace mopo::fuzz {

/// HalfCheetah's widths: the seed checkpoint is a real (tiny) halfcheetah MOPO run.
inline constexpr int64_t kObsDim = 17;
inline constexpr int64_t kActDim = 6;

/// The configuration of the seed run (tests/fuzz/README.md); the checkpoint targets read files against it.
inline train::MopoConfig seed_config() {
  train::MopoConfig c;
  c.task = "halfcheetah";
  c.rollout.rollout_batch = 16;
  c.rollout.horizon = 2;
  c.rollout_freq = 5;
  c.retain_epochs = 2;
  c.epochs = 1;
  c.steps_per_epoch = 10;
  c.seed = 16;
  c.ensemble.ensemble_size = 3;
  c.ensemble.num_elites = 2;
  c.ensemble.hidden = {8, 8};
  c.ensemble.weight_decay = {2.5e-5, 5e-5, 1e-4};
  c.model_training.max_epochs = 2;
  c.sac.hidden = {8, 8};
  c.sac.batch_size = 16;
  return c;
}

namespace detail {

inline std::string text(const uint8_t* data, std::size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

/// Runs `body`; "" if it returned, the message of a mopo::Error it threw. Anything else propagates.
template <class F>
std::string refused(F&& body) {
  try {
    body();
    return "";
  } catch (const Error& e) {
    return e.what();
  }
}

/// Loads `T` from JSON text and checks that what it saves loads back to the same JSON (configs are
/// written beside results and into checkpoints, then read again).
template <class T>
T load_and_round_trip(const config::json& j, const char* what) {
  T options;
  config::from_json(j, options);
  const auto saved = config::to_json(options);
  T again;
  try {
    config::from_json(config::parse(saved.dump(), "saved"), again);
  } catch (const Error& e) {
    throw std::logic_error(std::string(what) + ": a loaded config does not load back: " + e.what());
  }
  if (config::to_json(again) != saved) throw std::logic_error(std::string(what) + ": round trip changed it");
  return options;
}

}  // namespace detail

/// JSON options: bytes = JSON text, then optional `--set`-style overrides "a.b=value", each after a NUL
/// byte. Loaded as MopoConfig (train_mopo --config, with the overrides), SACTrainerOptions (train_sac),
/// ZooOptions (make_datasets) and EnsembleOptions (inside model.pt); "" if one of them accepts it.
inline std::string config_json(const uint8_t* data, std::size_t size) {
  std::vector<std::string> parts(1);
  for (std::size_t i = 0; i < size; ++i) {
    if (data[i] == 0) {
      parts.emplace_back();
    } else {
      parts.back().push_back(static_cast<char>(data[i]));
    }
  }
  std::string messages;
  bool accepted = false;  // a file is meant for one of the loaders
  auto note = [&](const std::string& m) {
    accepted = accepted || m.empty();
    if (!m.empty()) messages += (messages.empty() ? "" : "\n") + m;
  };
  config::json j;
  const auto parse_error = detail::refused([&] { j = config::parse(parts[0], "config.json"); });
  if (!parse_error.empty()) return parse_error;
  note(detail::refused([&] {
    auto cfg = detail::load_and_round_trip<train::MopoConfig>(j, "MopoConfig");
    for (std::size_t i = 1; i < parts.size(); ++i) config::apply_override(cfg, parts[i]);
    (void)detail::load_and_round_trip<train::MopoConfig>(config::to_json(cfg), "MopoConfig + overrides");
  }));
  note(
      detail::refused([&] { (void)detail::load_and_round_trip<train::SACTrainerOptions>(j, "SACTrainer"); }));
  note(detail::refused([&] { (void)detail::load_and_round_trip<zoo::ZooOptions>(j, "ZooOptions"); }));
  note(detail::refused([&] { (void)detail::load_and_round_trip<models::EnsembleOptions>(j, "Ensemble"); }));
  return accepted ? std::string() : messages;
}

/// A deploy export (docs/deploy.md): bytes = the file. Decoded as a policy or a dynamics export, whichever
/// its format tag names; every array must have as many values as its shape says.
inline std::string deploy_header(const uint8_t* data, std::size_t size) {
  const std::string bytes = detail::text(data, size);
  const char* format = bytes.find(deploy::kDynamicsFormat) != std::string::npos ? deploy::kDynamicsFormat
                                                                                : deploy::kPolicyFormat;
  return detail::refused([&] {
    const auto bundle = deploy::detail::decode(bytes, "export.mopo", format);
    for (const auto& [name, a] : bundle.arrays) {
      std::uint64_t n = 1;
      for (const auto d : a.shape) n *= static_cast<std::uint64_t>(d);
      if (n != a.data.size())
        throw std::logic_error("decode: array " + name + " size differs from its shape");
    }
  });
}

/// A D4RL-layout HDF5 file: bytes = the file, opened as an in-memory file image, then the D4RL
/// qlearning_dataset() rules train_mopo applies.
inline std::string d4rl_hdf5(const uint8_t* data, std::size_t size) {
  return detail::refused([&] {
    const auto raw = mopo::data::load_d4rl_hdf5_image(data, size, "dataset.hdf5");
    (void)mopo::data::qlearning_dataset(raw);
  });
}

/// A Minari main_data.hdf5: bytes = the file, opened as an in-memory file image.
inline std::string minari_hdf5(const uint8_t* data, std::size_t size) {
  return detail::refused([&] { (void)mopo::data::load_minari_image(data, size, "main_data.hdf5"); });
}

/// A Minari metadata.json (its text), applied as load_minari() does to 13 steps in 3 episodes read from
/// main_data.hdf5, with the task check of `train_mopo --task halfcheetah`.
inline std::string minari_metadata(const uint8_t* data, std::size_t size) {
  static const auto steps = [] {
    mopo::data::TransitionDataset d;
    d.observations = torch::zeros({13, kObsDim});
    d.metadata["episodes"] = 3;
    return d;
  }();
  return detail::refused([&] {
    auto d = steps;  // metadata copied (apply_minari_metadata writes into it), the tensor shared
    mopo::data::MinariReadOptions options;
    options.task = "halfcheetah";
    mopo::data::apply_minari_metadata(d, detail::text(data, size), "metadata.json", "main_data.hdf5",
                                      options);
  });
}

/// checkpoint/latest.json as `train_mopo --resume` reads it, against the seed run's config (max_std).
inline std::string checkpoint_index(const uint8_t* data, std::size_t size) {
  static const auto config = seed_config();
  return detail::refused([&] {
    (void)train::detail::read_checkpoint_index(config::parse(detail::text(data, size), "latest.json"),
                                               "latest.json", config, "max_std");
  });
}

/// checkpoint/epoch-<k>/trainer.pt (LibTorch archive: counters, RNG states, the model buffer), read into
/// a model buffer of the seed run's size.
inline std::string trainer_state(const uint8_t* data, std::size_t size) {
  static const auto c = seed_config();
  return detail::refused([&] {
    torch::serialize::InputArchive archive;
    train::detail::load_trainer_archive(archive, "trainer.pt", reinterpret_cast<const char*>(data), size);
    rollout::RolloutBuffer buffer(c.retain_epochs, c.rollout.rollout_batch * c.rollout.horizon, kObsDim,
                                  kActDim);
    RandomState rng(0);
    (void)train::detail::read_trainer_state(archive, buffer, rng, "trainer.pt");
  });
}

/// A GaussianEnsemble file (model.pt, `train_mopo --model`).
inline std::string ensemble_load(const uint8_t* data, std::size_t size) {
  return detail::refused(
      [&] { (void)models::GaussianEnsemble::load(reinterpret_cast<const char*>(data), size, "model.pt"); });
}

/// A SACAgent file (agent.pt, behaviour policies), loaded into a fresh agent of the seed run's shape.
inline std::string sac_load(const uint8_t* data, std::size_t size) {
  static const auto c = seed_config();
  return detail::refused([&] {
    agents::SACAgent agent(kObsDim, kActDim, c.sac, 0);
    agent.load(reinterpret_cast<const char*>(data), size, "agent.pt");
  });
}

/// The zip directory and CRC-32 check every LibTorch file passes before LibTorch reads it
/// (mopo/detail/torch_archive.hpp), alone and with the CRC-32s compared: thousands of inputs a second where
/// the three targets above, which reach LibTorch, run a few hundred.
inline std::string torch_archive(const uint8_t* data, std::size_t size) {
  return detail::refused([&] {
    mopo::detail::check_torch_archive(reinterpret_cast<const char*>(data), size, "agent.pt",
                                      /*compare_crcs=*/true);
  });
}

using Target = std::string (*)(const uint8_t*, std::size_t);

/// Every target by the name of its corpus folder (tests/fuzz/corpus/<name>, regressions/<name>).
inline const std::vector<std::pair<std::string, Target>>& targets() {
  static const std::vector<std::pair<std::string, Target>> all = {{"config_json", config_json},
                                                                  {"deploy_header", deploy_header},
                                                                  {"d4rl_hdf5", d4rl_hdf5},
                                                                  {"minari_hdf5", minari_hdf5},
                                                                  {"minari_metadata", minari_metadata},
                                                                  {"checkpoint_index", checkpoint_index},
                                                                  {"trainer_state", trainer_state},
                                                                  {"ensemble_load", ensemble_load},
                                                                  {"sac_load", sac_load},
                                                                  {"torch_archive", torch_archive}};
  return all;
}

}  // namespace mopo::fuzz
