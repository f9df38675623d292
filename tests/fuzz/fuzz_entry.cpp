// libFuzzer entry point of one fuzz target; tests/fuzz/CMakeLists.txt builds it once per target with
// MOPO_FUZZ_TARGET naming the function in fuzz_targets.hpp.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "fuzz/fuzz_targets.hpp"

// LibTorch files are read only after their records' CRC-32s match (mopo/detail/torch_archive.hpp), which
// nearly every mutation breaks; the fuzz builds compare no CRC, so that the trainer_state, ensemble_load and
// sac_load campaigns reach LibTorch and mopo's checks after it. MOPO_FUZZ_ARCHIVE_CRC=1 turns the comparison
// on (to see which of a campaign's inputs a user's build refuses at the CRC).
// The torch_archive target compares CRCs either way.
extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  const char* crc = std::getenv("MOPO_FUZZ_ARCHIVE_CRC");
  mopo::detail::archive_crc_checks() = crc != nullptr && std::strcmp(crc, "1") == 0;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  (void)mopo::fuzz::MOPO_FUZZ_TARGET(data, size);
  return 0;
}
