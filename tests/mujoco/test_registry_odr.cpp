// env::make in translation units with and without MOPO_HAS_MUJOCO in one program: each keeps its own
// definition (inline namespaces with_mujoco / without_mujoco), so neither silently takes the other's body.
#include <torch/torch.h>  // before Catch: glog's CHECK must not replace Catch's
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "mopo/env/registry.hpp"

using Catch::Matchers::Contains;

namespace mopo_test {
std::string make_without_mujoco(const std::string& name);  // registry_without_mujoco.cpp
}

TEST_CASE("env::make with and without MuJoCo in one program: no ODR clash", "[mujoco][env]") {
  static_assert(mopo::env::kHasMujoco, "the MuJoCo test binary links mopo::mujoco");
  // Through a volatile pointer, as in registry_without_mujoco.cpp: the linked definition, not an inlined one.
  static std::unique_ptr<mopo::env::Environment> (*volatile make)(
      const std::string&, const mopo::env::MujocoOptions&) = &mopo::env::make;
  CHECK(make("hopper", {})->name() == "hopper");
  CHECK_THAT(mopo_test::make_without_mujoco("hopper"), Contains("needs MuJoCo"));
  CHECK(mopo_test::make_without_mujoco("hiv") == "hiv");
  CHECK(mopo::env::make("hiv")->name() == "hiv");
}
