// libFuzzer entry point of one fuzz target; tests/fuzz/CMakeLists.txt builds it once per target with
// MOPO_FUZZ_TARGET naming the function in fuzz_targets.hpp.
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_targets.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  (void)mopo::fuzz::MOPO_FUZZ_TARGET(data, size);
  return 0;
}
