// The fuzz targets' inputs in the normal (g++) suite (issue 16, docs/reliability.md#fuzzing): every committed
// seed (tests/fuzz/corpus/<target>/, real files a user would have) is accepted, every input a fuzzer found
// (tests/fuzz/regressions/<target>/) is refused with a mopo::Error naming what is at fault, each through the
// same function the fuzzer ran (tests/fuzz/fuzz_targets.hpp). The hidden case [fuzz_seeds] regenerates the
// seeds (tests/fuzz/README.md).
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fuzz/fuzz_targets.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/data/hdf5.hpp"
#include "mopo/deploy/export.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

const fs::path kFuzzDir = fs::path(MOPO_TEST_SOURCE_DIR) / "fuzz";

std::string run(mopo::fuzz::Target target, const std::string& bytes) {
  return target(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

// Turns read_torch_archive's CRC-32 comparison off for a scope, as in the fuzz builds.
struct CrcChecksOff {
  CrcChecksOff() { mopo::detail::archive_crc_checks() = false; }
  ~CrcChecksOff() { mopo::detail::archive_crc_checks() = true; }
  CrcChecksOff(const CrcChecksOff&) = delete;
  CrcChecksOff& operator=(const CrcChecksOff&) = delete;
};

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file()) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// What each input a fuzzer found must now be refused with (a part of the message). A regression file
// without an entry here fails the test, so none is kept without a check.
const std::map<std::string, std::string>& expected_refusals() {
  static const std::map<std::string, std::string> all = {
      {"config_json/number-overflow-8888E888",
       "config.json: malformed JSON: [json.exception.out_of_range.406]"},
      {"d4rl_hdf5/bool-enum-8-byte-elements", "bool enum of 8-byte elements (expected 1 byte)"},
      {"d4rl_hdf5/metadata-group-cycle", "metadata groups nested deeper than 16 levels"},
      {"ensemble_load/jit-error-report", "model.pt: not a mopo GaussianEnsemble file"},
      {"trainer_state/zip-rejected-after-open",
       "trainer.pt: damaged file: record 'trainer.pt.tmp.15240/data/9': no local header at offset 23056"},
      {"trainer_state/storage-larger-than-record-1", "rng.engine: tensor storage of 6379 bytes, but only"},
      {"trainer_state/storage-larger-than-record-2", "rng.engine: tensor storage of 6379 bytes, but only"},
      {"sac_load/zip-rejected-after-open", "agent.pt: not a mopo SACAgent checkpoint"},
      {"config_json/override-invalid-utf8", "not valid UTF-8"},
      {"minari_hdf5/episode-id-20-digits", "episode_99999999999999999999: episode id out of range"},
      {"d4rl_hdf5/unwritten-2e31-rows",
       "dataset.hdf5: observations: shape (2147483648, 17) needs 2.92e+11 bytes"},
      {"deploy_header/shape-product-wraps", "has more values than the blob of 16 floats"},
      {"d4rl_hdf5/contiguous-no-storage", "but no data written (storage size 0"},
      {"d4rl_hdf5/float-type-odd-bit-layout", "unsupported float type"},
      {"d4rl_hdf5/chunk-wider-than-dataset",
       "actions: chunks of shape (8, 17) do not fit a dataset of rank 2 and shape (8, 6)"},
      {"d4rl_hdf5/chunk-larger-than-file", "timeouts: 4294377484 bytes stored, more than the file's"},
      {"d4rl_hdf5/unfiltered-chunk-short",
       "actions: 263 bytes stored, but 384 needed for 1 unfiltered chunk of 48 elements of 8 bytes"},
      {"d4rl_hdf5/chunk-filter-skipped",
       "actions: the chunk at (0, 0) skips its filters (mask 1) so is stored raw, but holds 263 bytes, not a "
       "chunk's 384"},
  };
  return all;
}

}  // namespace

TEST_CASE("fuzz seeds: every committed seed is a valid input its target accepts", "[unit][fuzz]") {
  for (const auto& [name, target] : mopo::fuzz::targets()) {
    const auto seeds = files_in(kFuzzDir / "corpus" / name);
    INFO("target " << name);
    CHECK(!seeds.empty());
    for (const auto& file : seeds) {
      INFO("seed " << file);
      CHECK(run(target, mopo::read_file(file)) == "");
    }
  }
}

TEST_CASE("fuzz regressions: every input a fuzzer found is refused with a mopo::Error", "[unit][fuzz]") {
  // The LibTorch campaigns compare no CRC-32 (tests/fuzz/fuzz_entry.cpp), so neither does this case: each
  // input must be refused by the check it was found for, not by the CRC before it (the next case).
  const CrcChecksOff crc_off;
  std::set<std::string> seen;
  for (const auto& [name, target] : mopo::fuzz::targets()) {
    for (const auto& file : files_in(kFuzzDir / "regressions" / name)) {
      const std::string key = name + "/" + file.filename().string();
      INFO("regression input " << key);
      const auto it = expected_refusals().find(key);
      REQUIRE(it != expected_refusals().end());
      seen.insert(key);
      std::string message;
      REQUIRE_NOTHROW(message = run(target, mopo::read_file(file)));
      CHECK_THAT(message, Contains(it->second));
    }
  }
  for (const auto& [key, expected] : expected_refusals()) {
    INFO("listed regression input without a file: " << key);
    CHECK(seen.count(key) == 1);
  }
}

TEST_CASE("fuzz regressions: with CRC-32 checks on, every LibTorch input the campaigns found is refused",
          "[unit][fuzz]") {
  // What a user's build does with them (mopo/detail/torch_archive.hpp): the LibTorch targets' regressions
  // and tests/fuzz/torch-crashes/, inputs on which LibTorch itself crashes when it reads them.
  REQUIRE(mopo::detail::archive_crc_checks());
  const std::map<std::string, std::string> by_prefix = {
      {"sac", "sac_load"}, {"trainer", "trainer_state"}, {"ensemble", "ensemble_load"}};
  std::vector<std::pair<std::string, fs::path>> inputs;
  for (const auto& [prefix, name] : by_prefix) {
    for (const auto& file : files_in(kFuzzDir / "regressions" / name)) inputs.emplace_back(name, file);
  }
  for (const auto& file : files_in(kFuzzDir / "torch-crashes")) {
    const std::string stem = file.filename().string();
    const auto it = by_prefix.find(stem.substr(0, stem.find('-')));
    INFO("torch-crashes/" << stem << " must start with sac-, trainer- or ensemble-");
    REQUIRE(it != by_prefix.end());
    inputs.emplace_back(it->second, file);
  }
  CHECK(inputs.size() >= 14);
  for (const auto& [name, file] : inputs) {
    INFO(name << ": " << file);
    mopo::fuzz::Target target = nullptr;
    for (const auto& [n, t] : mopo::fuzz::targets()) {
      if (n == name) target = t;
    }
    REQUIRE(target != nullptr);
    std::string message;
    REQUIRE_NOTHROW(message = run(target, mopo::read_file(file)));
    CHECK_THAT(message, Contains(": damaged file: record '"));
  }
}

// Writes the seed corpora into $MOPO_FUZZ_SEEDS/<target>/ (default tests/fuzz/corpus): real files from a tiny
// real MOPO run and mopo's writers. Hidden, and tagged [slow] as well: Catch2 v2 runs hidden cases for a
// spec made only of exclusions, such as unit.core's "~[slow]". Run it by tag (tests/fuzz/README.md).
TEST_CASE("fuzz seeds: regenerate", "[.][fuzz_seeds][slow]") {
  const char* env = std::getenv("MOPO_FUZZ_SEEDS");
  const fs::path out = env != nullptr && *env != '\0' ? fs::path(env) : kFuzzDir / "corpus";
  auto put = [&](const std::string& target, const std::string& name, const std::string& bytes) {
    fs::create_directories(out / target);
    mopo::atomic_write(out / target / name, bytes);
  };
  namespace cfg = mopo::config;
  const std::string nul(1, '\0');

  put("config_json", "mopo-defaults.json", cfg::to_json(mopo::train::MopoConfig{}).dump(2) + "\n");
  put("config_json", "quickstart-with-overrides.json",
      mopo::read_file(fs::path(MOPO_TEST_SOURCE_DIR) / ".." / "configs" / "quickstart-halfcheetah.json") +
          nul + "sac.actor_lr=1e-3" + nul + "rollout.horizon=3" + nul + "task=hopper");
  put("config_json", "zoo-defaults.json", cfg::to_json(mopo::zoo::ZooOptions{}).dump(2) + "\n");
  put("config_json", "sac-trainer-defaults.json",
      cfg::to_json(mopo::train::SACTrainerOptions{}).dump(2) + "\n");
  put("config_json", "ensemble-defaults.json", cfg::to_json(mopo::models::EnsembleOptions{}).dump(2) + "\n");

  // A tiny real run: 64 random halfcheetah-shaped rows, the ensemble trained, one MOPO epoch with rollouts
  // and its checkpoint.
  torch::manual_seed(16);
  mopo::data::TransitionDataset d;
  const int64_t n = 64;
  d.observations = torch::randn({n, mopo::fuzz::kObsDim});
  d.actions = torch::rand({n, mopo::fuzz::kActDim}) * 2 - 1;
  d.rewards = torch::randn({n});
  d.next_observations = d.observations + 0.1 * torch::randn({n, mopo::fuzz::kObsDim});
  d.terminals = torch::zeros({n}, torch::kBool);
  d.timeouts = torch::zeros({n}, torch::kBool);
  d.timeouts[n - 1] = true;
  const auto dir = fs::temp_directory_path() / ("mopo_fuzz_seeds_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  mopo::train::Mopo trainer(mopo::fuzz::seed_config(), d);
  trainer.fit(static_cast<mopo::env::Environment*>(nullptr), dir);
  const auto ckpt = dir / "checkpoint";
  const auto sub = ckpt / ("epoch-" + std::to_string(trainer.epoch()));
  REQUIRE(trainer.model_buffer().size() > 0);
  put("checkpoint_index", "latest.json", mopo::read_file(ckpt / "latest.json"));
  put("trainer_state", "trainer.pt", mopo::read_file(sub / "trainer.pt"));
  put("ensemble_load", "model.pt", mopo::read_file(sub / "model.pt"));
  put("sac_load", "agent.pt", mopo::read_file(sub / "agent.pt"));
  put("torch_archive", "agent.pt", mopo::read_file(sub / "agent.pt"));
  put("torch_archive", "model.pt", mopo::read_file(sub / "model.pt"));
  put("torch_archive", "trainer.pt", mopo::read_file(sub / "trainer.pt"));
  put("deploy_header", "policy.mopo",
      mopo::deploy::detail::encode(mopo::deploy::policy_bundle(trainer.agent())));
  put("deploy_header", "dynamics.mopo",
      mopo::deploy::detail::encode(mopo::deploy::dynamics_bundle(trainer.model())));

  // D4RL layout: 8 rows with every optional key, uncompressed float32 and gzip float64 (D4RL's replay files).
  auto raw = d;
  raw.observations = d.observations.slice(0, 0, 8);
  raw.actions = d.actions.slice(0, 0, 8);
  raw.rewards = d.rewards.slice(0, 0, 8);
  raw.terminals = torch::zeros({8}, torch::kBool);
  raw.terminals[3] = true;
  raw.timeouts = torch::zeros({8}, torch::kBool);
  raw.timeouts[7] = true;
  raw.next_observations = d.next_observations.slice(0, 0, 8);
  raw.qpos = torch::randn({8, 9});
  raw.qvel = torch::randn({8, 9});
  raw.infos["action_log_probs"] = torch::randn({8});
  raw.metadata = {{"algorithm", "fuzz seed"}, {"policy", {{"nonlinearity", "relu"}, {"seed", 16}}}};
  raw.metadata_arrays["policy/fc0/weight"] = torch::randn({2, 3});
  for (const auto& [name, options] :
       {std::pair<const char*, mopo::data::D4rlWriteOptions>{"d4rl-f32.hdf5", {torch::kFloat32, 0}},
        std::pair<const char*, mopo::data::D4rlWriteOptions>{"d4rl-f64-gzip.hdf5", {torch::kFloat64, 4}}}) {
    const auto file = dir / name;
    mopo::data::save_d4rl_hdf5(file, raw, options);
    put("d4rl_hdf5", name, mopo::read_file(file));
  }

  // Minari: two episodes of 3 and 2 steps (observations T + 1 rows), qpos/qvel infos.
  {
    namespace h5 = mopo::data::detail::h5;
    const auto file = dir / "main_data.hdf5";
    {
      const h5::ErrorSilencer silence;
      h5::Handle f(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      REQUIRE(f.valid());
      for (const int64_t t : {3, 2}) {
        const std::string g = "episode_" + std::to_string(t == 3 ? 0 : 1) + "/";
        h5::write_tensor(f.get(), g + "observations", torch::randn({t + 1, 4}), torch::kFloat64, 0, "seed");
        h5::write_tensor(f.get(), g + "actions", torch::rand({t, 2}), torch::kFloat32, 0, "seed");
        h5::write_tensor(f.get(), g + "rewards", torch::ones({t}), torch::kFloat64, 0, "seed");
        auto term = torch::zeros({t}, torch::kBool);
        term[t - 1] = t == 3;
        h5::write_tensor(f.get(), g + "terminations", term, torch::kFloat32, 0, "seed");
        h5::write_tensor(f.get(), g + "truncations", torch::logical_not(term), torch::kFloat32, 0, "seed");
        h5::write_tensor(f.get(), g + "infos/qpos", torch::randn({t + 1, 3}), torch::kFloat64, 0, "seed");
        h5::write_tensor(f.get(), g + "infos/qvel", torch::randn({t + 1, 3}), torch::kFloat64, 0, "seed");
      }
    }
    put("minari_hdf5", "main_data.hdf5", mopo::read_file(file));
  }

  // Inputs found by reading the code, kept beside the fuzzers' finds (docs/reliability.md#fuzzing).
  const auto regressions = out.parent_path() / "regressions";
  auto put_regression = [&](const std::string& target, const std::string& name, const std::string& bytes) {
    fs::create_directories(regressions / target);
    mopo::atomic_write(regressions / target / name, bytes);
  };
  {  // a Minari group whose id does not fit in int64 (std::stoll threw std::out_of_range)
    namespace h5 = mopo::data::detail::h5;
    const auto file = dir / "episode-id.hdf5";
    {
      const h5::ErrorSilencer silence;
      h5::Handle f(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      REQUIRE(f.valid());
      h5::write_tensor(f.get(), "episode_99999999999999999999/rewards", torch::ones({2}), torch::kFloat64, 0,
                       "seed");
    }
    put_regression("minari_hdf5", "episode-id-20-digits", mopo::read_file(file));
  }
  {  // observations of 2^31 x 17 float32 never written: 2 KB on disk, 146 GB for the reader to allocate
    namespace h5 = mopo::data::detail::h5;
    const auto file = dir / "unwritten.hdf5";
    {
      const h5::ErrorSilencer silence;
      h5::Handle f(H5Fcreate(file.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
      REQUIRE(f.valid());
      const hsize_t dims[2] = {hsize_t{1} << 31, 17};
      h5::Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose);
      h5::Handle dset(H5Dcreate2(f.get(), "observations", H5T_IEEE_F32LE, space.get(), H5P_DEFAULT,
                                 H5P_DEFAULT, H5P_DEFAULT),
                      H5Dclose);
      REQUIRE(dset.valid());
    }
    put_regression("d4rl_hdf5", "unwritten-2e31-rows", mopo::read_file(file));
  }
  {  // a deploy array of 16 dims of 16 over a 16-float blob: the product wrapped around 2^64 to 0
    const std::string blob(16 * 4, '\0');
    const nlohmann::json header = {
        {"format", mopo::deploy::kPolicyFormat},
        {"version", mopo::deploy::kFormatVersion},
        {"blob_floats", 16},
        {"blob_crc32",
         mopo::deploy::detail::crc32(reinterpret_cast<const unsigned char*>(blob.data()), blob.size())},
        {"tensors", {{"x", {{"shape", std::vector<int64_t>(16, 16)}, {"offset", 0}}}}}};
    const std::string text = header.dump();
    std::string bytes(mopo::deploy::detail::kMagic, sizeof mopo::deploy::detail::kMagic);
    mopo::deploy::detail::put_u64(bytes, text.size());
    put_regression("deploy_header", "shape-product-wraps", bytes + text + blob);
  }
  fs::remove_all(dir);
}
