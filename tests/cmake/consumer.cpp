// A minimal program consuming mopo as an installed/added/fetched package: uses a core utility and
// (with MuJoCo) the MuJoCo library, so both targets' usage requirements are exercised.
#include <mopo/mopo.hpp>

#include <iostream>
#ifdef MOPO_HAS_MUJOCO
#include <mujoco/mujoco.h>
#endif

int main() {
  mopo::RandomState rng(7);
  const auto x = torch::randn({64, 3}, rng.generator());
  mopo::Normalizer norm;
  norm.fit(x);
  const auto back = norm.inverse(norm.transform(x));
  const double err = (back - x).abs().max().item<double>();
  std::cout << "mopo " << mopo::kVersion << " consumer: normalizer round-trip error " << err;
#ifdef MOPO_HAS_MUJOCO
  std::cout << ", MuJoCo " << mj_versionString();
#endif
  std::cout << "\n";
  return err < 1e-5 ? 0 : 1;
}
