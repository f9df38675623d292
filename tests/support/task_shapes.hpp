// Observation and action sizes of the registry's tasks (mopo/env/registry.hpp), for tests that need
// the shapes but not the simulators. tests/mujoco/test_ood_registry.cpp checks this table against
// env::make(); the variants (halfcheetah-jump, ant-angle-*) share their base task's shapes.
#pragma once

#include <cstdint>
#include <vector>

namespace mopo::testing {

struct TaskShape {
  const char* task;
  int64_t obs_dim;
  int64_t act_dim;
};

inline const std::vector<TaskShape>& registry_task_shapes() {
  static const std::vector<TaskShape> shapes = {
      {"halfcheetah", 17, 6}, {"hopper", 11, 3}, {"walker2d", 17, 6}, {"ant", 111, 8}, {"hiv", 6, 2}};
  return shapes;
}

}  // namespace mopo::testing
