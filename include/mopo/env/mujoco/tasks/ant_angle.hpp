/// @file ant_angle.hpp
/// @brief ant-angle, MOPO's out-of-distribution task (paper §5.2, Table 4; formulas in mopo/env/ood.hpp).
///
/// Ant physics, observation and termination; the reward projects the torso's world-frame linear
/// velocity after the step (qvel[0:2] = observation slots 13, 14) onto the direction θ:
/// r = v_x·cos θ + v_y·sin θ − 0.5·‖a‖² − contact cost + 1. θ = 30° by default (45/60/90 in Table 4).
#pragma once

#include <mujoco/mujoco.h>

#include <cmath>
#include <sstream>
#include <string>

#include "mopo/core/error.hpp"
#include "mopo/env/mujoco/mujoco_env.hpp"
#include "mopo/env/mujoco/tasks/ant.hpp"
#include "mopo/env/ood.hpp"

namespace mopo::env {
namespace mujoco {

/// ant-angle task with angle `degrees` (measured from +x towards +y).
struct AntAngleTask : AntBase {
  double degrees = kAntAngleDefaultDegrees;
  [[nodiscard]] std::string name() const {
    std::ostringstream os;
    os << "ant-angle-" << degrees;
    return os.str();
  }
  [[nodiscard]] double reward(const StepContext& c) const {
    const double theta = degrees * kPi / 180.0;
    const double vx = c.data->qvel[0];
    const double vy = c.data->qvel[1];
    return vx * std::cos(theta) + vy * std::sin(theta) - kCtrlCost * c.sum_sq_action() - contact_cost(c) +
           kHealthyReward;
  }
};

}  // namespace mujoco

/// ant-angle (30° by default).
using AntAngle = MujocoEnv<mujoco::AntAngleTask>;

/// ant-angle for a given angle in degrees. Throws mopo::ValueError for a non-finite angle.
inline AntAngle make_ant_angle(double degrees, const MujocoOptions& options = {}) {
  if (!std::isfinite(degrees)) throw ValueError("ant-angle: angle must be finite");
  mujoco::AntAngleTask task;
  task.degrees = degrees;
  return AntAngle(options, task);
}

}  // namespace mopo::env
