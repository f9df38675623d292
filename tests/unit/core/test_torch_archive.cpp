// mopo/detail/torch_archive.hpp: the zip-directory and CRC-32 check in front of every LibTorch reader
// (issue 16: LibTorch 1.13 reads damaged records unchecked and crashes on some of them).
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

#include "fuzz/fuzz_targets.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/detail/torch_archive.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

const fs::path kRoot = fs::path(MOPO_TEST_SOURCE_DIR) / "..";

// "" if check_torch_archive accepts `bytes`, else its IoError's message.
std::string check(const std::string& bytes, bool compare_crcs = true) {
  try {
    mopo::detail::check_torch_archive(bytes.data(), bytes.size(), "agent.pt", compare_crcs);
    return "";
  } catch (const mopo::IoError& e) {
    return e.what();
  }
}

std::string agent_file() { return mopo::read_file(kRoot / "tests/fuzz/corpus/sac_load/agent.pt"); }

void put64(std::string& s, std::size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

std::size_t zip64_eocd(const std::string& s) {
  const auto at = s.rfind(std::string("PK\x06\x06", 4));
  REQUIRE(at != std::string::npos);
  return at;
}

}  // namespace

TEST_CASE("torch archive check: every LibTorch file in the repository passes it", "[unit][torch_archive]") {
  // Behaviour policies (torch::save), study ensembles and the fuzz seeds (OutputArchive::save_to), written on
  // several machines by several mopo versions.
  int files = 0;
  for (const char* dir : {"data", "docs", "tests/fuzz/corpus"}) {
    for (const auto& e : fs::recursive_directory_iterator(kRoot / dir)) {
      if (!e.is_regular_file() || e.path().extension() != ".pt") continue;
      INFO(e.path());
      CHECK(check(mopo::read_file(e.path())) == "");
      ++files;
    }
  }
  CHECK(files >= 20);
}

TEST_CASE("torch archive check: a changed byte in a record is refused at its CRC-32",
          "[unit][torch_archive]") {
  const std::string good = agent_file();
  REQUIRE(check(good) == "");
  // The first record: its local header at offset 0 (30 bytes, then its name and extra field), then its bytes.
  const auto u16 = [&](std::size_t at) {
    return static_cast<std::size_t>(static_cast<unsigned char>(good[at]) |
                                    (static_cast<unsigned char>(good[at + 1]) << 8));
  };
  REQUIRE(good.compare(0, 4, "PK\x03\x04") == 0);
  const std::string name = good.substr(30, u16(26));
  const std::size_t begin = 30 + u16(26) + u16(28);
  for (std::size_t at = begin; at < begin + 16; ++at) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    INFO("byte " << at);
    const std::string message = check(bad);
    CHECK_THAT(message, Contains("agent.pt: damaged file: record '" + name + "' (") &&
                            Contains("has CRC-32 0x") && Contains("but the zip directory says 0x"));
    CHECK(check(bad, /*compare_crcs=*/false) == "");  // the directory itself is intact
  }
}

TEST_CASE("torch archive check: damage anywhere is refused with a mopo::Error, never a crash",
          "[unit][torch_archive]") {
  // Every 53rd byte flipped in turn, then the file cut short at every 997th length, each read the way
  // SACAgent::load reads a file (the sac_load fuzz target) with the CRC-32 checks on: a refusal is a
  // message, anything else escapes or crashes the test.
  const std::string good = agent_file();
  REQUIRE(mopo::detail::archive_crc_checks());
  auto load = [](const std::string& bytes) {
    return mopo::fuzz::sac_load(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  };
  REQUIRE(load(good) == "");
  int refused = 0, at_crc = 0, flips = 0;  // at_crc: refused at a record's CRC-32, size or deflate stream
  for (std::size_t at = 0; at < good.size(); at += 53, ++flips) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x5A);
    INFO("byte " << at);
    std::string message;
    REQUIRE_NOTHROW(message = load(bad));
    refused += message.empty() ? 0 : 1;
    at_crc += message.find("agent.pt: damaged file: record '") != std::string::npos ? 1 : 0;
  }
  // Not every byte is covered: a local header's name and alignment padding are in no CRC (LibTorch reads
  // the central directory's name), but most of the file is record bytes.
  CHECK(at_crc > flips / 2);
  CHECK(refused >= at_crc);
  for (std::size_t size = 0; size < good.size(); size += 997) {
    INFO("cut to " << size << " bytes");
    std::string message;
    REQUIRE_NOTHROW(message = load(good.substr(0, size)));
    CHECK_THAT(message, Contains("agent.pt: "));
  }
}

TEST_CASE("torch archive check: a damaged zip directory is named", "[unit][torch_archive]") {
  const std::string good = agent_file();
  const std::size_t z64 = zip64_eocd(good);
  SECTION("the directory's offset") {
    std::string bad = good;
    put64(bad, z64 + 48, uint64_t{1} << 40);
    CHECK_THAT(check(bad), Contains("agent.pt: damaged file: the zip directory (") &&
                               Contains("bytes at offset 1099511627776) does not end before its end record"));
  }
  SECTION("the number of records") {
    std::string bad = good;
    put64(bad, z64 + 32, 1'000'000);
    CHECK_THAT(check(bad), Contains("damaged file: the zip directory claims 1000000 records in"));
  }
  SECTION("the zip64 locator") {
    std::string bad = good;
    const std::size_t locator = good.rfind(std::string("PK\x06\x07", 4));
    REQUIRE(locator != std::string::npos);
    put64(bad, locator + 8, 7);
    CHECK_THAT(check(bad), Contains("damaged file: its zip64 locator points at 7, where no zip64"));
  }
  SECTION("bytes that are no zip file are left to LibTorch, whose message says so") {
    CHECK(check("not a zip file at all, but long enough to hold an end record") == "");
    const std::string text = "{\"not\": \"a model\"}";
    CHECK_THAT(mopo::fuzz::sac_load(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
               Contains("agent.pt: not a mopo SACAgent checkpoint ("));
  }
}
