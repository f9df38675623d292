// One translation unit of the MuJoCo test binary built as a `mopo::mopo`-only program would be (no
// MOPO_HAS_MUJOCO), for the registry's one-definition-rule test in test_registry_odr.cpp.
#undef MOPO_HAS_MUJOCO
#include "mopo/env/registry.hpp"

#include <memory>
#include <string>

namespace mopo_test {
/// What env::make(name) does in a translation unit without MuJoCo: the task's name, or the error message.
std::string make_without_mujoco(const std::string& name) {
  static_assert(!mopo::env::kHasMujoco, "this translation unit must see the registry without MuJoCo");
  // Called through a volatile pointer: the definition the linker kept runs, not one inlined here (with
  // one `make` for both translation units, one of them would get the other's body).
  static std::unique_ptr<mopo::env::Environment> (*volatile make)(
      const std::string&, const mopo::env::MujocoOptions&) = &mopo::env::make;
  try {
    return make(name, {})->name();
  } catch (const mopo::ValueError& e) {
    return e.what();
  }
}
}  // namespace mopo_test
