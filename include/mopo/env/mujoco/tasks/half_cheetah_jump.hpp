/// @file half_cheetah_jump.hpp
/// @brief halfcheetah-jump, MOPO's out-of-distribution task (paper §5.2; formulas in mopo/env/ood.hpp).
///
/// HalfCheetah physics, observation and termination; only the reward differs:
///  - `JumpReward::kBehaviour` (data collection): min(v_x, 3) − 0.1·‖a‖², v_x as in HalfCheetah
///    (finite difference of qpos[0] over the env step);
///  - `JumpReward::kTest` (evaluation, the relabelled reward): the behaviour reward + 15·(z − z_init),
///    with z − z_init = qpos[1] after the step (nominal z_init).
#pragma once

#include <mujoco/mujoco.h>

#include <algorithm>
#include <string>

#include "mopo/env/mujoco/mujoco_env.hpp"
#include "mopo/env/mujoco/tasks/half_cheetah.hpp"
#include "mopo/env/ood.hpp"

namespace mopo::env {

/// Which reward halfcheetah-jump pays.
enum class JumpReward {
  kBehaviour,  ///< min(v_x, 3) − 0.1·‖a‖² (how the offline data is collected)
  kTest,       ///< behaviour + 15·(z − z_init) (what the policy is evaluated on)
};

namespace mujoco {

/// halfcheetah-jump task.
struct HalfCheetahJumpTask : HalfCheetahBase {
  JumpReward mode = JumpReward::kTest;
  [[nodiscard]] std::string name() const {
    return mode == JumpReward::kTest ? "halfcheetah-jump" : "halfcheetah-jump-behaviour";
  }
  [[nodiscard]] double behaviour_reward(const StepContext& c) const {
    return std::min(c.x_velocity(), kJumpVelocityCap) - kJumpCtrlCost * c.sum_sq_action();
  }
  [[nodiscard]] double reward(const StepContext& c) const {
    const double rb = behaviour_reward(c);
    return mode == JumpReward::kTest ? rb + kJumpHeightWeight * c.data->qpos[1] : rb;
  }
};

}  // namespace mujoco

/// halfcheetah-jump (test reward by default). `HalfCheetahJump env({}, {{}, JumpReward::kBehaviour})`
/// pays the behaviour reward instead.
using HalfCheetahJump = MujocoEnv<mujoco::HalfCheetahJumpTask>;

/// Convenience constructor for a given reward mode.
inline HalfCheetahJump make_halfcheetah_jump(JumpReward mode, const MujocoOptions& options = {}) {
  mujoco::HalfCheetahJumpTask task;
  task.mode = mode;
  return HalfCheetahJump(options, task);
}

}  // namespace mopo::env
