/// @file hopper.hpp
/// @brief Hopper (Gym v2 / D4RL semantics).
///
/// MJCF written from environments.md §5.3 (gym's hopper.xml after the May-2022 foot fix, global
/// coordinates, accepted by MuJoCo 2.2.2): RK4, timestep 0.002, frame skip 4. Observation (11):
/// qpos[1:6] ++ clip(qvel, −10, 10). Reward (§7): x_velocity + 1 − 1e-3·Σa², the healthy bonus also paid
/// on the terminating step (pitfall #9). Termination (§8.1) on the unclipped state s = (qpos, qvel):
/// not (all finite and |s[2:]| < 100 and height > 0.7 and |angle| < 0.2).
/// Reset noise (§8.3): U(−0.005, 0.005) on qpos and qvel.
#pragma once

#include <mujoco/mujoco.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>

#include "mopo/env/mujoco/mujoco_env.hpp"

namespace mopo::env {
namespace mujoco {

/// Hopper MJCF. Global coordinates (MuJoCo ≤ 2.3.3), degrees. Foot body at (0.13, 0, 0) — the value old
/// MuJoCo read from the pre-2022 "0.13/2 0 0.1" (pitfall #2).
inline constexpr const char* kHopperXml = R"MJCF(
<mujoco model="hopper">
  <compiler angle="degree" coordinate="global" inertiafromgeom="true"/>
  <default>
    <joint armature="1" damping="1" limited="true"/>
    <geom conaffinity="1" condim="1" contype="1" margin="0.001" solimp=".8 .8 .01" solref=".02 1"/>
    <motor ctrllimited="true" ctrlrange="-.4 .4"/>
  </default>
  <option integrator="RK4" timestep="0.002"/>
  <worldbody>
    <geom name="floor" type="plane" pos="0 0 0" size="20 20 .125" conaffinity="1" condim="3" friction="1 .005 .0001"/>
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
          <body name="foot" pos="0.13 0 0">
            <joint name="foot_joint" type="hinge" axis="0 -1 0" pos="0 0 0.1" range="-45 45"/>
            <geom name="foot_geom" type="capsule" fromto="-0.13 0 0.1 0.26 0 0.1" size="0.06" friction="2.0"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="thigh_joint" ctrllimited="true" ctrlrange="-1.0 1.0" gear="200.0"/>
    <motor joint="leg_joint" ctrllimited="true" ctrlrange="-1.0 1.0" gear="200.0"/>
    <motor joint="foot_joint" ctrllimited="true" ctrlrange="-1.0 1.0" gear="200.0"/>
  </actuator>
</mujoco>
)MJCF";

/// Planar walkers (Hopper, Walker2d): x = qpos[0], height = qpos[1], angle = qpos[2]; the observation is
/// qpos[1:] ++ clip(qvel, −10, 10); reset noise U(−0.005, 0.005) on qpos and qvel.
struct PlanarWalkerBase {
  static constexpr int kFrameSkip = 4;
  static constexpr double kVelocityClip = 10.0;
  static constexpr double kHealthyReward = 1.0;
  static constexpr double kCtrlCost = 1e-3;
  static constexpr double kResetNoise = 5e-3;

  [[nodiscard]] Planar position(const mjModel* /*m*/, const mjData* d) const { return {d->qpos[0], 0.0}; }
  void observe(const mjModel* m, const mjData* d, const MujocoOptions& /*options*/, double* out) const {
    for (int i = 1; i < m->nq; ++i) *out++ = d->qpos[i];
    for (int i = 0; i < m->nv; ++i) *out++ = std::clamp(d->qvel[i], -kVelocityClip, kVelocityClip);
  }
  void reset_noise(const mjModel* m, mjData* d, std::mt19937_64& rng) const {
    std::uniform_real_distribution<double> u(-kResetNoise, kResetNoise);
    for (int i = 0; i < m->nq; ++i) d->qpos[i] = m->qpos0[i] + u(rng);
    for (int i = 0; i < m->nv; ++i) d->qvel[i] = u(rng);
  }
  void state_from_observation(const mjModel* m, const double* obs, double* qpos, double* qvel) const {
    qpos[0] = 0.0;
    for (int i = 1; i < m->nq; ++i) qpos[i] = obs[i - 1];
    for (int i = 0; i < m->nv; ++i) qvel[i] = obs[m->nq - 1 + i];
  }
  /// r = x_velocity + 1 − 1e-3·Σa². The healthy bonus is paid on every step, including the terminating
  /// one (v2 adds it unconditionally; v3/v4 pay it when terminate_when_unhealthy — pitfall #9).
  [[nodiscard]] double reward(const StepContext& c) const {
    return c.x_velocity() + kHealthyReward - kCtrlCost * c.sum_sq_action();
  }
};

/// Hopper-v2 termination (environments.md §8.1), on the unclipped (qpos, qvel).
inline bool hopper_unhealthy(const mjModel* m, const mjData* d) {
  for (int i = 0; i < m->nq; ++i) {
    if (!std::isfinite(d->qpos[i])) return true;
  }
  for (int i = 0; i < m->nv; ++i) {
    if (!std::isfinite(d->qvel[i])) return true;
  }
  // state_vector()[2:] = qpos[2:] ++ qvel, strictly inside (−100, 100).
  for (int i = 2; i < m->nq; ++i) {
    if (!(std::abs(d->qpos[i]) < 100.0)) return true;
  }
  for (int i = 0; i < m->nv; ++i) {
    if (!(std::abs(d->qvel[i]) < 100.0)) return true;
  }
  const double height = d->qpos[1];
  const double angle = d->qpos[2];
  return !(height > 0.7 && std::abs(angle) < 0.2);
}

/// Hopper-v2 task.
struct HopperTask : PlanarWalkerBase {
  [[nodiscard]] std::string name() const { return "hopper"; }
  [[nodiscard]] const char* xml() const { return kHopperXml; }
  [[nodiscard]] int64_t observation_dim(const MujocoOptions& /*options*/) const { return 11; }
  [[nodiscard]] bool terminated(const mjModel* m, const mjData* d) const { return hopper_unhealthy(m, d); }
};

}  // namespace mujoco

/// Hopper with Gym v2 / D4RL semantics by default (obs 11, act 3, dt 0.008).
using Hopper = MujocoEnv<mujoco::HopperTask>;

}  // namespace mopo::env
