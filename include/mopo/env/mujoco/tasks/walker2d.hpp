/// @file walker2d.hpp
/// @brief Walker2d (Gym v2 / D4RL semantics).
///
/// MJCF written from environments.md §5.4 (gym's walker2d.xml after the May-2022 foot fix, global
/// coordinates): RK4, timestep 0.002, frame skip 4, right foot friction 0.9 and left foot 1.9 (the v5
/// file gives both 1.9). Observation (17): qpos[1:9] ++ clip(qvel, −10, 10). Reward (§7): as Hopper.
/// Termination (§8.1): not (0.8 < height < 2.0 and −1 < angle < 1); no finiteness check in v2.
/// Reset noise (§8.3): U(−0.005, 0.005) on qpos and qvel.
#pragma once

#include <mujoco/mujoco.h>

#include <cstdint>
#include <string>

#include "mopo/env/mujoco/mujoco_env.hpp"
#include "mopo/env/mujoco/tasks/hopper.hpp"

namespace mopo::env {
namespace mujoco {

/// Walker2d MJCF. Global coordinates, degrees; body geoms have conaffinity 0 (no self-collision).
inline constexpr const char* kWalker2dXml = R"MJCF(
<mujoco model="walker2d">
  <compiler angle="degree" coordinate="global" inertiafromgeom="true"/>
  <default>
    <joint armature="0.01" damping=".1" limited="true"/>
    <geom conaffinity="0" condim="3" contype="1" density="1000" friction=".7 .1 .1"/>
  </default>
  <option integrator="RK4" timestep="0.002"/>
  <worldbody>
    <geom name="floor" type="plane" pos="0 0 0" size="40 40 40" conaffinity="1" condim="3" friction=".7 .1 .1"/>
    <body name="torso" pos="0 0 1.25">
      <joint name="rootx" type="slide" axis="1 0 0" pos="0 0 0" armature="0" damping="0" limited="false" stiffness="0"/>
      <joint name="rootz" type="slide" axis="0 0 1" pos="0 0 0" ref="1.25" armature="0" damping="0" limited="false" stiffness="0"/>
      <joint name="rooty" type="hinge" axis="0 1 0" pos="0 0 1.25" armature="0" damping="0" limited="false" stiffness="0"/>
      <geom name="torso_geom" type="capsule" fromto="0 0 1.45 0 0 1.05" size="0.05" friction="0.9"/>
      <body name="thigh" pos="0 0 1.05">
        <joint name="thigh_joint" type="hinge" axis="0 -1 0" pos="0 0 1.05" range="-150 0"/>
        <geom name="thigh_geom" type="capsule" fromto="0 0 1.05 0 0 0.6" size="0.05" friction="0.9"/>
        <body name="leg" pos="0 0 0.35">
          <joint name="leg_joint" type="hinge" axis="0 -1 0" pos="0 0 0.6" range="-150 0"/>
          <geom name="leg_geom" type="capsule" fromto="0 0 0.6 0 0 0.1" size="0.04" friction="0.9"/>
          <body name="foot" pos="0.2 0 0">
            <joint name="foot_joint" type="hinge" axis="0 -1 0" pos="0 0 0.1" range="-45 45"/>
            <geom name="foot_geom" type="capsule" fromto="0 0 0.1 0.2 0 0.1" size="0.06" friction="0.9"/>
          </body>
        </body>
      </body>
      <body name="thigh_left" pos="0 0 1.05">
        <joint name="thigh_left_joint" type="hinge" axis="0 -1 0" pos="0 0 1.05" range="-150 0"/>
        <geom name="thigh_left_geom" type="capsule" fromto="0 0 1.05 0 0 0.6" size="0.05" friction="0.9"/>
        <body name="leg_left" pos="0 0 0.35">
          <joint name="leg_left_joint" type="hinge" axis="0 -1 0" pos="0 0 0.6" range="-150 0"/>
          <geom name="leg_left_geom" type="capsule" fromto="0 0 0.6 0 0 0.1" size="0.04" friction="0.9"/>
          <body name="foot_left" pos="0.2 0 0">
            <joint name="foot_left_joint" type="hinge" axis="0 -1 0" pos="0 0 0.1" range="-45 45"/>
            <geom name="foot_left_geom" type="capsule" fromto="0 0 0.1 0.2 0 0.1" size="0.06" friction="1.9"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="thigh_joint" ctrllimited="true" ctrlrange="-1.0 1.0" gear="100"/>
    <motor joint="leg_joint" ctrllimited="true" ctrlrange="-1.0 1.0" gear="100"/>
    <motor joint="foot_joint" ctrllimited="true" ctrlrange="-1.0 1.0" gear="100"/>
    <motor joint="thigh_left_joint" ctrllimited="true" ctrlrange="-1.0 1.0" gear="100"/>
    <motor joint="leg_left_joint" ctrllimited="true" ctrlrange="-1.0 1.0" gear="100"/>
    <motor joint="foot_left_joint" ctrllimited="true" ctrlrange="-1.0 1.0" gear="100"/>
  </actuator>
</mujoco>
)MJCF";

/// Walker2d-v2 termination (environments.md §8.1): strict bounds on height and angle only.
inline bool walker2d_unhealthy(const mjModel* /*m*/, const mjData* d) {
  const double height = d->qpos[1];
  const double angle = d->qpos[2];
  return !(height > 0.8 && height < 2.0 && angle > -1.0 && angle < 1.0);
}

/// Walker2d-v2 task.
struct Walker2dTask : PlanarWalkerBase {
  [[nodiscard]] std::string name() const { return "walker2d"; }
  [[nodiscard]] const char* xml() const { return kWalker2dXml; }
  [[nodiscard]] int64_t observation_dim(const MujocoOptions& /*options*/) const { return 17; }
  [[nodiscard]] bool terminated(const mjModel* m, const mjData* d) const { return walker2d_unhealthy(m, d); }
};

}  // namespace mujoco

/// Walker2d with Gym v2 / D4RL semantics by default (obs 17, act 6, dt 0.008).
using Walker2d = MujocoEnv<mujoco::Walker2dTask>;

}  // namespace mopo::env
