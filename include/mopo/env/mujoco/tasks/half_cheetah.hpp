/// @file half_cheetah.hpp
/// @brief HalfCheetah (Gym v2 / D4RL semantics; Gymnasium v4 identical apart from mj_rnePostConstraint).
///
/// MJCF written from the parameter table of environments.md §5.2 (gym's half_cheetah.xml):
/// Euler, timestep 0.01, frame skip 5, total mass 14 (settotalmass). Observation (17):
/// qpos[1:9] ++ qvel[0:9], no clipping. Reward (§7): x_velocity − 0.1·Σa². Never terminates.
/// Reset noise (§8.3): qpos + U(−0.1, 0.1), qvel + 0.1·N(0, 1).
#pragma once

#include <mujoco/mujoco.h>

#include <cstdint>
#include <random>
#include <string>

#include "mopo/env/mujoco/mujoco_env.hpp"

namespace mopo::env {
namespace mujoco {

/// HalfCheetah MJCF (local coordinates, radians). Body geoms have conaffinity 0: only body–floor contacts.
inline constexpr const char* kHalfCheetahXml = R"MJCF(
<mujoco model="cheetah">
  <compiler angle="radian" coordinate="local" inertiafromgeom="true" settotalmass="14"/>
  <size nstack="300000" nuser_geom="1"/>
  <option gravity="0 0 -9.81" timestep="0.01"/>
  <default>
    <joint armature=".1" damping=".01" limited="true" solimplimit="0 .8 .03" solreflimit=".02 1" stiffness="8"/>
    <geom conaffinity="0" condim="3" contype="1" friction=".4 .1 .1" solimp="0.0 0.8 0.01" solref="0.02 1"/>
    <motor ctrllimited="true" ctrlrange="-1 1"/>
  </default>
  <worldbody>
    <geom name="floor" type="plane" pos="0 0 0" size="40 40 40" conaffinity="1" condim="3"/>
    <body name="torso" pos="0 0 .7">
      <joint name="rootx" type="slide" axis="1 0 0" pos="0 0 0" armature="0" damping="0" limited="false" stiffness="0"/>
      <joint name="rootz" type="slide" axis="0 0 1" pos="0 0 0" armature="0" damping="0" limited="false" stiffness="0"/>
      <joint name="rooty" type="hinge" axis="0 1 0" pos="0 0 0" armature="0" damping="0" limited="false" stiffness="0"/>
      <geom name="torso" type="capsule" fromto="-.5 0 0 .5 0 0" size="0.046"/>
      <geom name="head" type="capsule" pos=".6 0 .1" axisangle="0 1 0 .87" size="0.046 .15"/>
      <body name="bthigh" pos="-.5 0 0">
        <joint name="bthigh" type="hinge" axis="0 1 0" pos="0 0 0" range="-.52 1.05" stiffness="240" damping="6"/>
        <geom name="bthigh" type="capsule" pos=".1 0 -.13" axisangle="0 1 0 -3.8" size="0.046 .145"/>
        <body name="bshin" pos=".16 0 -.25">
          <joint name="bshin" type="hinge" axis="0 1 0" pos="0 0 0" range="-.785 .785" stiffness="180" damping="4.5"/>
          <geom name="bshin" type="capsule" pos="-.14 0 -.07" axisangle="0 1 0 -2.03" size="0.046 .15"/>
          <body name="bfoot" pos="-.28 0 -.14">
            <joint name="bfoot" type="hinge" axis="0 1 0" pos="0 0 0" range="-.4 .785" stiffness="120" damping="3"/>
            <geom name="bfoot" type="capsule" pos=".03 0 -.097" axisangle="0 1 0 -.27" size="0.046 .094"/>
          </body>
        </body>
      </body>
      <body name="fthigh" pos=".5 0 0">
        <joint name="fthigh" type="hinge" axis="0 1 0" pos="0 0 0" range="-1 .7" stiffness="180" damping="4.5"/>
        <geom name="fthigh" type="capsule" pos="-.07 0 -.12" axisangle="0 1 0 .52" size="0.046 .133"/>
        <body name="fshin" pos="-.14 0 -.24">
          <joint name="fshin" type="hinge" axis="0 1 0" pos="0 0 0" range="-1.2 .87" stiffness="120" damping="3"/>
          <geom name="fshin" type="capsule" pos=".065 0 -.09" axisangle="0 1 0 -.6" size="0.046 .106"/>
          <body name="ffoot" pos=".13 0 -.18">
            <joint name="ffoot" type="hinge" axis="0 1 0" pos="0 0 0" range="-.5 .5" stiffness="60" damping="1.5"/>
            <geom name="ffoot" type="capsule" pos=".045 0 -.07" axisangle="0 1 0 -.6" size="0.046 .07"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="bthigh" joint="bthigh" gear="120"/>
    <motor name="bshin" joint="bshin" gear="90"/>
    <motor name="bfoot" joint="bfoot" gear="60"/>
    <motor name="fthigh" joint="fthigh" gear="120"/>
    <motor name="fshin" joint="fshin" gear="60"/>
    <motor name="ffoot" joint="ffoot" gear="30"/>
  </actuator>
</mujoco>
)MJCF";

/// Reward weights of HalfCheetah (v2 = v3/v4 defaults).
inline constexpr double kHalfCheetahCtrlCost = 0.1;

/// Shared pieces of the planar HalfCheetah (also used by halfcheetah-jump).
struct HalfCheetahBase {
  static constexpr int kFrameSkip = 5;
  [[nodiscard]] const char* xml() const { return kHalfCheetahXml; }
  [[nodiscard]] int64_t observation_dim(const MujocoOptions& /*options*/) const { return 17; }
  /// qpos[1:9] ++ qvel[0:9] (environments.md §6), unclipped.
  void observe(const mjModel* m, const mjData* d, const MujocoOptions& /*options*/, double* out) const {
    for (int i = 1; i < m->nq; ++i) *out++ = d->qpos[i];
    for (int i = 0; i < m->nv; ++i) *out++ = d->qvel[i];
  }
  /// The forward reward differentiates qpos[0] (rootx); no xpos lag.
  [[nodiscard]] Planar position(const mjModel* /*m*/, const mjData* d) const { return {d->qpos[0], 0.0}; }
  [[nodiscard]] bool terminated(const mjModel* /*m*/, const mjData* /*d*/) const { return false; }
  /// qpos += U(−0.1, 0.1), qvel += 0.1·N(0, 1) (environments.md §8.3).
  void reset_noise(const mjModel* m, mjData* d, std::mt19937_64& rng) const {
    std::uniform_real_distribution<double> u(-0.1, 0.1);
    std::normal_distribution<double> n(0.0, 1.0);
    for (int i = 0; i < m->nq; ++i) d->qpos[i] = m->qpos0[i] + u(rng);
    for (int i = 0; i < m->nv; ++i) d->qvel[i] = 0.1 * n(rng);
  }
  /// rootx := 0; the rest is read back from the observation.
  void state_from_observation(const mjModel* m, const double* obs, double* qpos, double* qvel) const {
    qpos[0] = 0.0;
    for (int i = 1; i < m->nq; ++i) qpos[i] = obs[i - 1];
    for (int i = 0; i < m->nv; ++i) qvel[i] = obs[m->nq - 1 + i];
  }
};

/// HalfCheetah-v2: r = x_velocity − 0.1·Σa² (environments.md §7).
struct HalfCheetahTask : HalfCheetahBase {
  [[nodiscard]] std::string name() const { return "halfcheetah"; }
  [[nodiscard]] double reward(const StepContext& c) const {
    return c.x_velocity() - kHalfCheetahCtrlCost * c.sum_sq_action();
  }
};

}  // namespace mujoco

/// HalfCheetah with Gym v2 / D4RL semantics by default (obs 17, act 6, dt 0.05).
using HalfCheetah = MujocoEnv<mujoco::HalfCheetahTask>;

}  // namespace mopo::env
