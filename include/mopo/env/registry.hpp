/// @file registry.hpp
/// @brief Tasks by name: `mopo::env::make("hopper")` → std::unique_ptr<Environment>.
///
/// `mopo::env::make_task("hopper")` → the Task (task.hpp) MopoTrainer takes, with that environment.
///
/// Names: "halfcheetah", "hopper", "walker2d", "ant", "halfcheetah-jump" (test reward),
/// "halfcheetah-jump-behaviour" (behaviour reward, for data collection), "ant-angle" (30°),
/// "ant-angle-<degrees>" (e.g. "ant-angle-45"), "hiv". D4RL dataset names are accepted too and resolve to
/// their task ("hopper-medium-v2" → hopper). Reference scores: mopo/env/scores.hpp.
///
/// The MuJoCo tasks are available when the program links `mopo::mujoco` (which defines
/// MOPO_HAS_MUJOCO=1 for every translation unit); with `mopo::mopo` alone only "hiv" can be made, and
/// asking for a MuJoCo task throws a mopo::ValueError that says so. Every task made here also
/// implements TrueDynamics (see as_true_dynamics()).
#pragma once

#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/env/hiv.hpp"
#include "mopo/env/ood.hpp"
#include "mopo/env/options.hpp"
#include "mopo/env/scores.hpp"
#include "mopo/env/task.hpp"
#include "mopo/env/true_dynamics.hpp"

#if defined(MOPO_HAS_MUJOCO)
#include "mopo/env/mujoco/tasks/ant.hpp"
#include "mopo/env/mujoco/tasks/ant_angle.hpp"
#include "mopo/env/mujoco/tasks/half_cheetah.hpp"
#include "mopo/env/mujoco/tasks/half_cheetah_jump.hpp"
#include "mopo/env/mujoco/tasks/hopper.hpp"
#include "mopo/env/mujoco/tasks/walker2d.hpp"
#endif

namespace mopo::env {

// kHasMujoco and make() differ with MOPO_HAS_MUJOCO: each variant lives in its own inline namespace, so a
// program whose translation units link `mopo::mopo` and `mopo::mujoco` side by side gets two distinct
// entities (mopo::env::with_mujoco::make, mopo::env::without_mujoco::make) instead of one inline function
// with two bodies (a one-definition-rule violation the linker would resolve by picking either).
#if defined(MOPO_HAS_MUJOCO)
inline namespace with_mujoco {
#else
inline namespace without_mujoco {
#endif
/// Whether this build can make the MuJoCo tasks.
inline constexpr bool kHasMujoco =
#if defined(MOPO_HAS_MUJOCO)
    true;
#else
    false;
#endif
}  // namespace with_mujoco / without_mujoco

/// The task names make() accepts (ant-angle also as "ant-angle-<degrees>").
inline std::vector<std::string> task_names() {
  return {"halfcheetah",
          "hopper",
          "walker2d",
          "ant",
          "halfcheetah-jump",
          "halfcheetah-jump-behaviour",
          "ant-angle",
          "ant-angle-45",
          "ant-angle-60",
          "ant-angle-90",
          "hiv"};
}

/// The angle of "ant-angle[-<degrees>]" (30 for "ant-angle"); the suffix of a dataset name
/// ("ant-angle-medium") is not an angle. @throws ValueError for a malformed angle ("ant-angle-4x5").
inline double ant_angle_degrees(const std::string& name) {
  const std::string prefix = "ant-angle-";
  if (name.size() <= prefix.size()) return kAntAngleDefaultDegrees;
  const std::string rest = name.substr(prefix.size());
  char* end = nullptr;
  const double deg = std::strtod(rest.c_str(), &end);
  if (end == rest.c_str()) return kAntAngleDefaultDegrees;  // not a number: a dataset suffix
  if (!std::isfinite(deg) || (*end != '\0' && *end != '-')) {
    throw ValueError("ant-angle: cannot read the angle in '" + name + "' (expected e.g. ant-angle-45)");
  }
  return deg;
}

#if defined(MOPO_HAS_MUJOCO)
inline namespace with_mujoco {
#else
inline namespace without_mujoco {
#endif
/// Makes a task by name. `options` applies to the MuJoCo tasks (HIV uses its defaults).
/// Throws mopo::ValueError for unknown names, or MuJoCo tasks in a build without MuJoCo.
inline std::unique_ptr<Environment> make(const std::string& name, const MujocoOptions& options = {}) {
  const std::string base = base_task(name);  // throws for unknown names, listing the known ones
  if (base == "hiv") return std::make_unique<Hiv>();
#if defined(MOPO_HAS_MUJOCO)
  if (base == "halfcheetah") return std::make_unique<HalfCheetah>(options);
  if (base == "hopper") return std::make_unique<Hopper>(options);
  if (base == "walker2d") return std::make_unique<Walker2d>(options);
  if (base == "ant") return std::make_unique<Ant>(options);
  if (base == "halfcheetah-jump") {
    return std::make_unique<HalfCheetahJump>(make_halfcheetah_jump(JumpReward::kTest, options));
  }
  if (base == "halfcheetah-jump-behaviour") {
    return std::make_unique<HalfCheetahJump>(make_halfcheetah_jump(JumpReward::kBehaviour, options));
  }
  if (base == "ant-angle") {
    return std::make_unique<AntAngle>(make_ant_angle(ant_angle_degrees(name), options));
  }
#else
  (void)options;
#endif
  throw ValueError("task '" + name + "' needs MuJoCo: link the mopo::mujoco target (MOPO_WITH_MUJOCO=ON)");
}

/// The registry's task as a Task (task.hpp) with its evaluation environment: env::task(name) plus
/// make_env = make(name, options). @throws ValueError for unknown names (a MuJoCo task in a build without
/// MuJoCo throws when make_env is called).
inline Task make_task(const std::string& name, const MujocoOptions& options = {},
                      HopperTermination hopper_mode = HopperTermination::kCorrected) {
  Task t = task(name, hopper_mode);
  t.make_env = [name, options] { return make(name, options); };
  return t;
}
}  // namespace with_mujoco / without_mujoco

/// The TrueDynamics side of a task made by make() (every built-in task has one), or nullptr.
inline TrueDynamics* as_true_dynamics(Environment& env) { return dynamic_cast<TrueDynamics*>(&env); }

}  // namespace mopo::env
