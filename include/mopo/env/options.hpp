/// @file options.hpp
/// @brief Options of the MuJoCo tasks (no MuJoCo or LibTorch dependency, so the registry can take them).
#pragma once

#include <cstdint>
#include <string>

#include "mopo/core/error.hpp"

namespace mopo::env {

/// Which Gym generation the step follows where they differ (environments.md §9).
enum class Semantics {
  kGymV2,        ///< Gym v2/v3 on mujoco-py = D4RL: no mj_rnePostConstraint, Ant obs 111 with zero forces
  kGymnasiumV4,  ///< Gymnasium v4: mj_rnePostConstraint after the step; Ant obs 27 (111 with contact forces)
};

/// Options shared by the MuJoCo tasks. The defaults reproduce the environments that generated D4RL.
struct MujocoOptions {
  Semantics semantics = Semantics::kGymV2;
  /// Clip actions to ctrlrange before stepping *and* before the control cost, as D4RL's NormalizedBoxEnv
  /// does (environments.md pitfall #7). false = raw Gym: MuJoCo clamps ctrl internally, but the control
  /// cost is charged on the raw action.
  bool clip_actions = true;
  /// Gym's TimeLimit (1000 for every locomotion task); 0 = unlimited.
  int64_t max_episode_steps = 1000;
  /// Gymnasium v4 Ant only: append the 84 clipped cfrc_ext values and pay the contact cost.
  bool use_contact_forces = false;

  void validate() const {
    if (max_episode_steps < 0) {
      throw ConfigError("max_episode_steps: must be >= 0, got " + std::to_string(max_episode_steps));
    }
  }
};

}  // namespace mopo::env
