/// @file options.hpp
/// @brief The dataset zoo's recipe options (ZooOptions, JSON-loadable) and the records of a behaviour run.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/core/error.hpp"
#include "mopo/data/transition_dataset.hpp"

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
  std::filesystem::path file;  ///< agents::save_policy file (actor only)
};

/// Result of the behaviour SAC run.
struct BehaviourRun {
  std::vector<Checkpoint> checkpoints;
  Checkpoint expert;                    ///< best evaluation return
  Checkpoint medium;                    ///< return closest to medium_fraction · expert
  data::TransitionDataset replay;       ///< the online transitions up to the medium checkpoint (raw rows)
  data::TransitionDataset full_replay;  ///< every online transition of the run, in order
};

/// Pre-trained behaviour policies (save_policy() files). When both are set, build_task() trains no SAC
/// and writes no mixed dataset (the replay buffer exists only during the SAC run).
struct PretrainedPolicies {
  std::filesystem::path medium;
  std::filesystem::path expert;
  [[nodiscard]] bool given() const { return !medium.empty() && !expert.empty(); }
};

}  // namespace mopo::zoo
