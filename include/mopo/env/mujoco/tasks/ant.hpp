/// @file ant.hpp
/// @brief Ant (Gym v2 / D4RL semantics by default; Gymnasium v4 option).
///
/// MJCF written from environments.md §5.5 (gym's ant.xml): RK4, timestep 0.01, frame skip 5, free root.
/// Observation (§6): qpos[2:15] (13) ++ qvel (14) ++ clip(cfrc_ext, −1, 1) (84) = 111. Under Gym v2 semantics
/// mj_rnePostConstraint is never called, so cfrc_ext — and with it slots 27–110 and the contact cost — are
/// zero, exactly as in the D4RL data (pitfall #3). Gymnasium v4: 27 values, or 111 with contact forces.
/// Reward (§7): x_velocity of the torso xpos (pitfall #8: read before/after the frame loop, no extra
/// mj_forward) − 0.5·Σa² − 5e-4·Σ clip(cfrc_ext)² + 1. Termination (§8.1): not (all finite and
/// 0.2 ≤ z ≤ 1.0), bounds inclusive. Reset noise (§8.3): qpos + U(−0.1, 0.1) including the quaternion (not
/// renormalised), qvel + 0.1·N(0, 1). Action order = XML actuator order: hip_4, ankle_4, hip_1, ankle_1,
/// hip_2, ankle_2, hip_3, ankle_3 (not the qpos order).
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

/// Ant MJCF (local coordinates, degrees).
inline constexpr const char* kAntXml = R"MJCF(
<mujoco model="ant">
  <compiler angle="degree" coordinate="local" inertiafromgeom="true"/>
  <option integrator="RK4" timestep="0.01"/>
  <default>
    <joint armature="1" damping="1" limited="true"/>
    <geom conaffinity="0" condim="3" density="5.0" friction="1 0.5 0.5" margin="0.01"/>
  </default>
  <worldbody>
    <geom name="floor" type="plane" pos="0 0 0" size="40 40 40" conaffinity="1" condim="3"/>
    <body name="torso" pos="0 0 0.75">
      <geom name="torso_geom" type="sphere" pos="0 0 0" size="0.25"/>
      <joint name="root" type="free" pos="0 0 0" armature="0" damping="0" limited="false" margin="0.01"/>
      <body name="front_left_leg" pos="0 0 0">
        <geom name="aux_1_geom" type="capsule" fromto="0.0 0.0 0.0 0.2 0.2 0.0" size="0.08"/>
        <body name="aux_1" pos="0.2 0.2 0">
          <joint name="hip_1" type="hinge" axis="0 0 1" pos="0.0 0.0 0.0" range="-30 30"/>
          <geom name="left_leg_geom" type="capsule" fromto="0.0 0.0 0.0 0.2 0.2 0.0" size="0.08"/>
          <body pos="0.2 0.2 0">
            <joint name="ankle_1" type="hinge" axis="-1 1 0" pos="0.0 0.0 0.0" range="30 70"/>
            <geom name="left_ankle_geom" type="capsule" fromto="0.0 0.0 0.0 0.4 0.4 0.0" size="0.08"/>
          </body>
        </body>
      </body>
      <body name="front_right_leg" pos="0 0 0">
        <geom name="aux_2_geom" type="capsule" fromto="0.0 0.0 0.0 -0.2 0.2 0.0" size="0.08"/>
        <body name="aux_2" pos="-0.2 0.2 0">
          <joint name="hip_2" type="hinge" axis="0 0 1" pos="0.0 0.0 0.0" range="-30 30"/>
          <geom name="right_leg_geom" type="capsule" fromto="0.0 0.0 0.0 -0.2 0.2 0.0" size="0.08"/>
          <body pos="-0.2 0.2 0">
            <joint name="ankle_2" type="hinge" axis="1 1 0" pos="0.0 0.0 0.0" range="-70 -30"/>
            <geom name="right_ankle_geom" type="capsule" fromto="0.0 0.0 0.0 -0.4 0.4 0.0" size="0.08"/>
          </body>
        </body>
      </body>
      <body name="back_leg" pos="0 0 0">
        <geom name="aux_3_geom" type="capsule" fromto="0.0 0.0 0.0 -0.2 -0.2 0.0" size="0.08"/>
        <body name="aux_3" pos="-0.2 -0.2 0">
          <joint name="hip_3" type="hinge" axis="0 0 1" pos="0.0 0.0 0.0" range="-30 30"/>
          <geom name="back_leg_geom" type="capsule" fromto="0.0 0.0 0.0 -0.2 -0.2 0.0" size="0.08"/>
          <body pos="-0.2 -0.2 0">
            <joint name="ankle_3" type="hinge" axis="-1 1 0" pos="0.0 0.0 0.0" range="-70 -30"/>
            <geom name="third_ankle_geom" type="capsule" fromto="0.0 0.0 0.0 -0.4 -0.4 0.0" size="0.08"/>
          </body>
        </body>
      </body>
      <body name="right_back_leg" pos="0 0 0">
        <geom name="aux_4_geom" type="capsule" fromto="0.0 0.0 0.0 0.2 -0.2 0.0" size="0.08"/>
        <body name="aux_4" pos="0.2 -0.2 0">
          <joint name="hip_4" type="hinge" axis="0 0 1" pos="0.0 0.0 0.0" range="-30 30"/>
          <geom name="rightback_leg_geom" type="capsule" fromto="0.0 0.0 0.0 0.2 -0.2 0.0" size="0.08"/>
          <body pos="0.2 -0.2 0">
            <joint name="ankle_4" type="hinge" axis="1 1 0" pos="0.0 0.0 0.0" range="30 70"/>
            <geom name="fourth_ankle_geom" type="capsule" fromto="0.0 0.0 0.0 0.4 -0.4 0.0" size="0.08"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="hip_4" ctrllimited="true" ctrlrange="-1.0 1.0" gear="150"/>
    <motor joint="ankle_4" ctrllimited="true" ctrlrange="-1.0 1.0" gear="150"/>
    <motor joint="hip_1" ctrllimited="true" ctrlrange="-1.0 1.0" gear="150"/>
    <motor joint="ankle_1" ctrllimited="true" ctrlrange="-1.0 1.0" gear="150"/>
    <motor joint="hip_2" ctrllimited="true" ctrlrange="-1.0 1.0" gear="150"/>
    <motor joint="ankle_2" ctrllimited="true" ctrlrange="-1.0 1.0" gear="150"/>
    <motor joint="hip_3" ctrllimited="true" ctrlrange="-1.0 1.0" gear="150"/>
    <motor joint="ankle_3" ctrllimited="true" ctrlrange="-1.0 1.0" gear="150"/>
  </actuator>
</mujoco>
)MJCF";

/// Body id of the Ant torso (compiled order: 0 world, 1 torso, …; environments.md §5.5).
inline constexpr int kAntTorsoBody = 1;

/// Shared pieces of Ant and ant-angle.
struct AntBase {
  static constexpr int kFrameSkip = 5;
  static constexpr double kCtrlCost = 0.5;
  static constexpr double kContactCost = 0.5 * 1e-3;
  static constexpr double kHealthyReward = 1.0;

  [[nodiscard]] const char* xml() const { return kAntXml; }
  /// Whether the observation carries the 84 clipped cfrc_ext values (always in Gym v2).
  [[nodiscard]] static bool has_contact_forces(const MujocoOptions& o) {
    return o.semantics == Semantics::kGymV2 || o.use_contact_forces;
  }
  [[nodiscard]] int64_t observation_dim(const MujocoOptions& o) const {
    return has_contact_forces(o) ? 111 : 27;
  }
  void observe(const mjModel* m, const mjData* d, const MujocoOptions& o, double* out) const {
    for (int i = 2; i < m->nq; ++i) *out++ = d->qpos[i];
    for (int i = 0; i < m->nv; ++i) *out++ = d->qvel[i];
    if (has_contact_forces(o)) {
      for (int i = 0; i < 6 * m->nbody; ++i) *out++ = std::clamp(d->cfrc_ext[i], -1.0, 1.0);
    }
  }
  /// Torso xpos (x, y): lags one mj_step behind qpos after a step, exactly as gym reads it (pitfall #8).
  [[nodiscard]] Planar position(const mjModel* /*m*/, const mjData* d) const {
    return {d->xpos[3 * kAntTorsoBody + 0], d->xpos[3 * kAntTorsoBody + 1]};
  }
  /// 5e-4·Σ clip(cfrc_ext, −1, 1)²; zero under Gym v2 semantics (cfrc_ext never computed).
  [[nodiscard]] static double contact_cost(const StepContext& c) {
    if (c.options->semantics == Semantics::kGymnasiumV4 && !c.options->use_contact_forces) return 0.0;
    double s = 0.0;
    for (int i = 0; i < 6 * c.model->nbody; ++i) {
      const double f = std::clamp(c.data->cfrc_ext[i], -1.0, 1.0);
      s += f * f;
    }
    return kContactCost * s;
  }
  /// not (all of qpos, qvel finite and 0.2 ≤ z ≤ 1.0) — inclusive bounds.
  [[nodiscard]] bool terminated(const mjModel* m, const mjData* d) const {
    for (int i = 0; i < m->nq; ++i) {
      if (!std::isfinite(d->qpos[i])) return true;
    }
    for (int i = 0; i < m->nv; ++i) {
      if (!std::isfinite(d->qvel[i])) return true;
    }
    const double z = d->qpos[2];
    return !(z >= 0.2 && z <= 1.0);
  }
  void reset_noise(const mjModel* m, mjData* d, std::mt19937_64& rng) const {
    std::uniform_real_distribution<double> u(-0.1, 0.1);
    std::normal_distribution<double> n(0.0, 1.0);
    for (int i = 0; i < m->nq; ++i) d->qpos[i] = m->qpos0[i] + u(rng);
    for (int i = 0; i < m->nv; ++i) d->qvel[i] = 0.1 * n(rng);
  }
  /// x = y = 0; z, quaternion and hinges from slots 0–12; qvel from slots 13–26. Contact-force slots are
  /// outputs of the step, not state, and are ignored.
  void state_from_observation(const mjModel* m, const double* obs, double* qpos, double* qvel) const {
    qpos[0] = 0.0;
    qpos[1] = 0.0;
    for (int i = 2; i < m->nq; ++i) qpos[i] = obs[i - 2];
    for (int i = 0; i < m->nv; ++i) qvel[i] = obs[m->nq - 2 + i];
  }
};

/// Ant-v2 task: r = x_velocity − 0.5·Σa² − contact cost + 1 (healthy bonus also on the terminating step).
struct AntTask : AntBase {
  [[nodiscard]] std::string name() const { return "ant"; }
  [[nodiscard]] double reward(const StepContext& c) const {
    return c.x_velocity() - kCtrlCost * c.sum_sq_action() - contact_cost(c) + kHealthyReward;
  }
};

}  // namespace mujoco

/// Ant with Gym v2 / D4RL semantics by default (obs 111 with zero contact forces, act 8, dt 0.05).
using Ant = MujocoEnv<mujoco::AntTask>;

}  // namespace mopo::env
