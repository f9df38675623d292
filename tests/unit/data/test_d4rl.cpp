// TransitionDataset, D4RL's qlearning_dataset rules, sampling, episode statistics and D4RL-layout HDF5
// round trips and validation (every bad-input case gets its own error naming the file and the key).
#include <unistd.h>
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "mopo/data/d4rl_hdf5.hpp"
#include "mopo/data/transition_dataset.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

fs::path temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("mopo_test_data_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Raw rows with identifiable contents: observations[i] = (i, 100 + i, 200 + i), rewards[i] = i,
// next_observations[i] = (1000 + i, …) so a test can tell which source D4RL's rules used.
mopo::data::TransitionDataset make_raw(const std::vector<int>& terminal_rows,
                                       const std::vector<int>& timeout_rows, int64_t n,
                                       bool with_timeouts = true) {
  mopo::data::TransitionDataset d;
  const auto i = torch::arange(n, torch::kFloat32).unsqueeze(1);
  d.observations = torch::cat({i, i + 100, i + 200}, 1);
  d.next_observations = d.observations + 1000;
  d.actions = torch::cat({i * 0.01, -i * 0.01}, 1);
  d.rewards = torch::arange(n, torch::kFloat32);
  d.terminals = torch::zeros({n}, torch::kBool);
  for (int r : terminal_rows) d.terminals[r] = true;
  if (with_timeouts) {
    d.timeouts = torch::zeros({n}, torch::kBool);
    for (int r : timeout_rows) d.timeouts[r] = true;
  }
  d.qpos = torch::cat({i, i * 2}, 1);
  d.qvel = torch::cat({-i, i * 3, i * 4}, 1);
  return d;
}

std::vector<int64_t> rows_of(const mopo::data::TransitionDataset& d) {
  const auto r = d.observations.select(1, 0).to(torch::kLong).contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

bool same(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && a.equal(b);
}

// Overwrites (or deletes, if `t` is undefined) one key of an existing HDF5 file.
void patch_key(const fs::path& file, const std::string& key, const torch::Tensor& t,
               torch::Dtype dtype = torch::kFloat32) {
  namespace h5 = mopo::data::detail::h5;
  const h5::ErrorSilencer silence;
  h5::Handle f(H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
  REQUIRE(f.valid());
  if (h5::exists(f.get(), key)) REQUIRE(H5Ldelete(f.get(), key.c_str(), H5P_DEFAULT) >= 0);
  if (t.defined()) h5::write_tensor(f.get(), key, t, dtype, 0, file.string());
}

}  // namespace

TEST_CASE("qlearning_dataset follows D4RL's rules with timeouts", "[unit][data]") {
  // Episode A: rows 0-3, terminal at 3. Episode B: rows 4-8, time-out at 8. Episode C: rows 9-11 (cut).
  const auto raw = make_raw({3}, {8}, 12);
  const auto q = mopo::data::qlearning_dataset(raw);
  // N − 1 − (#timeouts among the first N − 1 rows) = 12 − 1 − 1.
  REQUIRE(q.size() == 10);
  CHECK(rows_of(q) == std::vector<int64_t>({0, 1, 2, 3, 4, 5, 6, 7, 9, 10}));
  // s' = observations[i + 1]: at the terminal row 3 it is the first observation of episode B (D4RL quirk).
  CHECK(q.next_observations[3][0].item<float>() == 4.0f);
  CHECK(q.next_observations[7][0].item<float>() == 8.0f);  // row 7 → 8, the time-out row itself is dropped
  CHECK(q.terminals.to(torch::kLong).sum().item<int64_t>() == 1);
  CHECK(q.terminals[3].item<bool>());
  CHECK_FALSE(q.timeouts.any().item<bool>());
  CHECK(same(q.rewards, torch::tensor({0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 9.f, 10.f})));
  // State rows follow their transitions.
  CHECK(q.qpos.select(1, 0).equal(q.observations.select(1, 0)));
  CHECK(q.qvel.size(0) == 10);

  SECTION("use_next_observations takes the stored s' (exact at terminals)") {
    mopo::data::QLearningOptions o;
    o.use_next_observations = true;
    const auto k = mopo::data::qlearning_dataset(raw, o);
    CHECK(rows_of(k) == rows_of(q));
    CHECK(k.next_observations[3][0].item<float>() == 1003.0f);
  }
  SECTION("terminate_on_end keeps the time-out rows") {
    mopo::data::QLearningOptions o;
    o.terminate_on_end = true;
    const auto k = mopo::data::qlearning_dataset(raw, o);
    CHECK(k.size() == 11);
    CHECK(rows_of(k)[8] == 8);
  }
  SECTION("use_next_observations without stored next_observations is an error") {
    auto r = raw;
    r.next_observations = torch::Tensor();
    mopo::data::QLearningOptions o;
    o.use_next_observations = true;
    CHECK_THROWS_AS(mopo::data::qlearning_dataset(r, o), mopo::ValueError);
  }
}

TEST_CASE("qlearning_dataset without timeouts counts episode steps like D4RL", "[unit][data]") {
  mopo::data::QLearningOptions o;
  o.max_episode_steps = 4;
  SECTION("no terminals: every 4th row is a time-out and is dropped") {
    const auto raw = make_raw({}, {}, 10, /*with_timeouts=*/false);
    const auto q = mopo::data::qlearning_dataset(raw, o);
    CHECK(rows_of(q) == std::vector<int64_t>({0, 1, 2, 4, 5, 6, 8}));
  }
  SECTION("after a terminal the counter restarts at 1 (the documented off-by-one)") {
    // Terminal at row 1: episode_step is reset to 0 and then incremented to 1, so rows 2, 3 count as
    // steps 1, 2 and row 4 (step 3 = max − 1) is taken for a time-out: episodes after a terminal are one
    // step short (environments.md §10.4).
    const auto raw = make_raw({1}, {}, 10, false);
    const auto q = mopo::data::qlearning_dataset(raw, o);
    CHECK(rows_of(q) == std::vector<int64_t>({0, 1, 2, 3, 5, 6, 7}));
  }
}

TEST_CASE("episode statistics split on terminals or timeouts", "[unit][data]") {
  const auto raw = make_raw({3}, {8}, 12);
  const auto s = raw.episode_stats();
  CHECK(s.count == 2);
  CHECK(s.mean_return == Approx((0 + 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8) / 2.0));
  CHECK(s.min_return == Approx(6.0));
  CHECK(s.max_return == Approx(30.0));
  CHECK(s.std_return == Approx(12.0));
  CHECK(s.mean_length == Approx(4.5));
  CHECK(s.incomplete_steps == 3);
  const auto none = make_raw({}, {}, 5).episode_stats();
  CHECK(none.count == 0);
  CHECK(none.incomplete_steps == 5);
}

TEST_CASE("sampling is seeded, uniform over rows and shaped like mopo::Batch", "[unit][data]") {
  const auto q = mopo::data::qlearning_dataset(make_raw({3}, {8}, 12));
  mopo::RandomState a(7);
  mopo::RandomState b(7);
  mopo::RandomState c(8);
  const auto ba = q.sample(64, a);
  const auto bb = q.sample(64, b);
  const auto bc = q.sample(64, c);
  CHECK(ba.observations.equal(bb.observations));
  CHECK_FALSE(ba.observations.equal(bc.observations));
  ba.validate(3, 2, "sampled batch");
  CHECK(ba.terminals.scalar_type() == torch::kFloat32);
  // Rows stay consistent: reward == first observation component (both equal the raw row index).
  CHECK(ba.rewards.equal(ba.observations.select(1, 0)));
  // Every sampled row exists in the dataset; with 20 000 draws every row is hit.
  mopo::RandomState d(1);
  const auto big = q.sample(20000, d);
  const auto counts = torch::bincount(big.observations.select(1, 0).to(torch::kLong), {}, 12);
  CHECK(counts.index({torch::tensor({8, 11})}).sum().item<int64_t>() == 0);  // dropped rows never appear
  CHECK((counts.index({torch::tensor({0, 1, 2, 3, 4, 5, 6, 7, 9, 10})}) > 1500).all().item<bool>());
  mopo::RandomState e(1);
  CHECK_THROWS_AS(make_raw({}, {}, 4).sample(0, e), mopo::ValueError);
  auto raw = make_raw({}, {}, 4);
  raw.next_observations = torch::Tensor();
  CHECK_THROWS_WITH(raw.sample(4, e), Contains("qlearning_dataset"));
}

TEST_CASE("concatenate stitches datasets row-wise", "[unit][data]") {
  const auto a = make_raw({3}, {}, 5);
  const auto b = make_raw({}, {2}, 3);
  const auto c = mopo::data::concatenate({a, b});
  CHECK(c.size() == 8);
  CHECK(c.episode_stats().count == 2);
  c.validate("concatenated");
  auto partial = b;
  partial.qpos = torch::Tensor();
  partial.qvel = torch::Tensor();
  CHECK_THROWS_AS(mopo::data::concatenate({a, partial}), mopo::ValueError);
}

TEST_CASE("D4RL HDF5 round trip is exact for both dtypes, with and without gzip", "[unit][data]") {
  const auto dir = temp_dir("roundtrip");
  auto raw = make_raw({3}, {8}, 12);
  raw.observations += 0.123f;  // values that float32 holds exactly but are not integers
  raw.infos["action_log_probs"] = torch::linspace(-3, -1, 12);
  raw.metadata = {{"algorithm", "SAC"},
                  {"iteration", 42},
                  {"score", 0.5},
                  {"deterministic", false},
                  {"policy", {{"nonlinearity", "relu"}}}};
  raw.metadata_arrays["policy/fc0/weight"] = torch::randn({4, 3});
  raw.metadata_arrays["policy/fc0/bias"] = torch::randn({4});
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    for (int gz : {0, 4}) {
      CAPTURE(c10::toString(dtype), gz);
      const auto file = dir / ("rt_" + std::string(c10::toString(dtype)) + std::to_string(gz) + ".hdf5");
      mopo::data::save_d4rl_hdf5(file, raw, {dtype, gz});
      const auto back = mopo::data::load_d4rl_hdf5(file);
      CHECK(same(back.observations, raw.observations));
      CHECK(same(back.actions, raw.actions));
      CHECK(same(back.rewards, raw.rewards));
      CHECK(same(back.terminals, raw.terminals));
      CHECK(same(back.timeouts, raw.timeouts));
      CHECK(same(back.next_observations, raw.next_observations));
      CHECK(same(back.qpos, raw.qpos));
      CHECK(same(back.qvel, raw.qvel));
      REQUIRE(back.infos.count("action_log_probs") == 1);
      CHECK(same(back.infos.at("action_log_probs"), raw.infos.at("action_log_probs")));
      CHECK(back.metadata == raw.metadata);
      CHECK(same(back.metadata_arrays.at("policy/fc0/weight"), raw.metadata_arrays.at("policy/fc0/weight")));
      CHECK(same(back.metadata_arrays.at("policy/fc0/bias"), raw.metadata_arrays.at("policy/fc0/bias")));
      // No temporary files are left beside the target.
      for (const auto& e : fs::directory_iterator(dir))
        CHECK(e.path().string().find(".tmp.") == std::string::npos);
    }
  }
  // gzip really compresses (5000 regular rows).
  const auto big = make_raw({100}, {999, 1999}, 5000);
  mopo::data::save_d4rl_hdf5(dir / "big0.hdf5", big, {torch::kFloat32, 0});
  mopo::data::save_d4rl_hdf5(dir / "big4.hdf5", big, {torch::kFloat32, 4});
  CHECK(fs::file_size(dir / "big4.hdf5") * 2 < fs::file_size(dir / "big0.hdf5"));
  CHECK(same(mopo::data::load_d4rl_hdf5(dir / "big4.hdf5").observations, big.observations));
  SECTION("optional keys absent stay absent") {
    auto minimal = raw;
    minimal.timeouts = minimal.next_observations = minimal.qpos = minimal.qvel = torch::Tensor();
    minimal.infos.clear();
    minimal.metadata = nlohmann::json::object();
    minimal.metadata_arrays.clear();
    mopo::data::save_d4rl_hdf5(dir / "minimal.hdf5", minimal);
    const auto back = mopo::data::load_d4rl_hdf5(dir / "minimal.hdf5");
    CHECK_FALSE(back.has_timeouts());
    CHECK_FALSE(back.has_next_observations());
    CHECK_FALSE(back.has_state());
    CHECK(back.metadata.empty());
  }
  SECTION("read options skip state, infos and metadata") {
    mopo::data::D4rlReadOptions o;
    o.load_state = o.load_infos = o.load_metadata = false;
    const auto back = mopo::data::load_d4rl_hdf5(dir / "rt_Float0.hdf5", o);
    CHECK_FALSE(back.has_state());
    CHECK(back.infos.empty());
    CHECK(back.metadata.empty());
  }
  fs::remove_all(dir);
}

TEST_CASE("the same dataset written twice, seconds apart, gives the same bytes", "[unit][data]") {
  // HDF5 records object modification times unless told not to; the writer tells it (untimed datasets,
  // groups and root group), so a regenerated dataset can be checked by the file's sha256.
  const auto dir = temp_dir("bytes");
  auto raw = make_raw({3}, {8}, 12);
  raw.infos["action_log_probs"] = torch::linspace(-3, -1, 12);
  raw.metadata = {{"algorithm", "SAC"}, {"policy", {{"nonlinearity", "relu"}}}};
  raw.metadata_arrays["policy/fc0/bias"] = torch::randn({4});
  auto bytes = [](const fs::path& f) {
    std::ifstream in(f, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  for (int gz : {0, 4}) {
    CAPTURE(gz);
    mopo::data::save_d4rl_hdf5(dir / "a.hdf5", raw, {torch::kFloat32, gz});
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // times have one-second resolution
    mopo::data::save_d4rl_hdf5(dir / "b.hdf5", raw, {torch::kFloat32, gz});
    const auto a = bytes(dir / "a.hdf5");
    REQUIRE(a.size() > 1000);
    CHECK(a == bytes(dir / "b.hdf5"));
  }
  fs::remove_all(dir);
}

TEST_CASE("bad D4RL inputs give clear errors naming the file and the key", "[unit][data]") {
  const auto dir = temp_dir("bad");
  const auto good = dir / "good.hdf5";
  const auto raw = make_raw({3}, {8}, 12);
  mopo::data::save_d4rl_hdf5(good, raw);
  auto variant = [&](const std::string& name) {
    const auto p = dir / (name + ".hdf5");
    fs::copy_file(good, p, fs::copy_options::overwrite_existing);
    return p;
  };
  const std::string g = good.string();

  SECTION("1. missing file") {
    CHECK_THROWS_AS(mopo::data::load_d4rl_hdf5(dir / "nope.hdf5"), mopo::IoError);
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(dir / "nope.hdf5"), Contains("nope.hdf5"));
  }
  SECTION("2. not an HDF5 file") {
    const auto p = dir / "text.hdf5";
    std::ofstream(p) << "observations,actions\n1,2\n";
    CHECK_THROWS_AS(mopo::data::load_d4rl_hdf5(p), mopo::DatasetError);
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p), Contains("text.hdf5") && Contains("not an HDF5 file"));
  }
  SECTION("3. truncated file") {
    const auto p = variant("truncated");
    fs::resize_file(p, fs::file_size(p) / 2);
    CHECK_THROWS_AS(mopo::data::load_d4rl_hdf5(p), mopo::DatasetError);
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p), Contains("truncated.hdf5"));
  }
  SECTION("4. missing required keys") {
    for (const std::string key : {"observations", "actions", "rewards", "terminals"}) {
      const auto p = variant("missing_" + key);
      patch_key(p, key, torch::Tensor());
      CHECK_THROWS_AS(mopo::data::load_d4rl_hdf5(p), mopo::DatasetError);
      CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p),
                        Contains(p.string()) && Contains("missing key '" + key + "'"));
    }
  }
  SECTION("5. wrong rank of observations") {
    const auto p = variant("rank");
    patch_key(p, "observations", torch::zeros({12}));
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p), Contains("rank.hdf5") && Contains("observations") &&
                                                         Contains("expected rank 2") && Contains("(12,)"));
  }
  SECTION("6. rewards of shape (N, 3)") {
    const auto p = variant("rewards_wide");
    patch_key(p, "rewards", torch::zeros({12, 3}));
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p), Contains("rewards") && Contains("(12, 3)"));
  }
  SECTION("7. mismatched lengths") {
    const auto p = variant("short_actions");
    patch_key(p, "actions", torch::zeros({11, 2}));
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p),
                      Contains("actions: has 11 rows but observations has 12"));
    const auto q = variant("short_timeouts");
    patch_key(q, "timeouts", torch::zeros({13}, torch::kBool));
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(q), Contains("timeouts: has 13 rows"));
  }
  SECTION("8. NaN in observations") {
    const auto p = variant("nan");
    auto obs = raw.observations.clone();
    obs[5][1] = std::numeric_limits<float>::quiet_NaN();
    patch_key(p, "observations", obs);
    CHECK_THROWS_AS(mopo::data::load_d4rl_hdf5(p), mopo::DatasetError);
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p),
                      Contains("nan.hdf5: observations: contains 1 non-finite") && Contains("[5, 1]"));
  }
  SECTION("9. Inf in rewards (float64 on disk)") {
    const auto p = variant("inf");
    auto r = raw.rewards.to(torch::kFloat64);
    r[2] = std::numeric_limits<double>::infinity();
    patch_key(p, "rewards", r, torch::kFloat64);
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p),
                      Contains("rewards: contains 1 non-finite") && Contains("inf"));
  }
  SECTION("10. empty dataset") {
    const auto p = variant("empty");
    patch_key(p, "observations", torch::zeros({0, 3}));
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p), Contains("empty.hdf5: observations: empty dataset"));
  }
  SECTION("11. a group where a dataset is expected") {
    const auto p = variant("group");
    patch_key(p, "actions", torch::Tensor());
    patch_key(p, "actions/inner", torch::zeros({12, 2}));
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p), Contains("key 'actions' is not a dataset"));
  }
  SECTION("12. strings where numbers are expected") {
    const auto p = variant("string_obs");
    patch_key(p, "observations", torch::Tensor());
    {
      namespace h5 = mopo::data::detail::h5;
      const h5::ErrorSilencer silence;
      h5::Handle f(H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
      h5::write_string(f.get(), "observations", "not numbers", p.string());
    }
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p), Contains("observations: expected a numeric dataset"));
  }
  SECTION("13. next_observations of the wrong width") {
    const auto p = variant("next_obs");
    patch_key(p, "next_observations", torch::zeros({12, 4}));
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p), Contains("next_observations") && Contains("[12, 4]"));
  }
  SECTION("14. qpos rows mismatch, and qvel without qpos") {
    const auto p = variant("qpos");
    patch_key(p, "infos/qpos", torch::zeros({10, 2}));
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(p), Contains("infos/qpos: has 10 rows"));
    const auto q = variant("qvel_only");
    patch_key(q, "infos/qpos", torch::Tensor());
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(q), Contains("infos/qpos: missing"));
  }
  SECTION("15. observation width differs from the environment's") {
    mopo::data::D4rlReadOptions o;
    o.observation_dim = 17;
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(good, o),
                      Contains("observations: width 3") && Contains("17"));
    o.observation_dim = 0;
    o.action_dim = 6;
    CHECK_THROWS_WITH(mopo::data::load_d4rl_hdf5(good, o), Contains("actions: width 2"));
  }
  SECTION("16. saving invalid data writes nothing and keeps the old file") {
    auto bad = raw;
    bad.rewards = bad.rewards.clone();
    bad.rewards[0] = std::numeric_limits<float>::quiet_NaN();
    const auto before = fs::file_size(good);
    CHECK_THROWS_WITH(mopo::data::save_d4rl_hdf5(good, bad), Contains(g) && Contains("rewards"));
    CHECK(fs::file_size(good) == before);
    CHECK(mopo::data::load_d4rl_hdf5(good).size() == 12);
    auto short_terminals = raw;
    short_terminals.terminals = short_terminals.terminals.slice(0, 0, 5);
    CHECK_THROWS_WITH(mopo::data::save_d4rl_hdf5(dir / "x.hdf5", short_terminals), Contains("terminals"));
    CHECK_FALSE(fs::exists(dir / "x.hdf5"));
    CHECK_THROWS_AS(mopo::data::save_d4rl_hdf5(dir / "x.hdf5", raw, {torch::kInt32, 4}), mopo::ValueError);
    CHECK_THROWS_AS(mopo::data::save_d4rl_hdf5(dir / "x.hdf5", raw, {torch::kFloat32, 12}), mopo::ValueError);
    auto array_meta = raw;
    array_meta.metadata["list"] = {1, 2, 3};
    CHECK_THROWS_WITH(mopo::data::save_d4rl_hdf5(dir / "x.hdf5", array_meta), Contains("metadata/list"));
    CHECK_FALSE(fs::exists(dir / "x.hdf5"));
  }
  SECTION("17. writing into an unwritable place") {
    const auto blocker = dir / "blocker";
    std::ofstream(blocker) << "x";
    CHECK_THROWS_AS(mopo::data::save_d4rl_hdf5(blocker / "sub" / "f.hdf5", raw), mopo::IoError);
  }
  SECTION("(N, 1) rewards/terminals are squeezed, float flags and int observations accepted") {
    const auto p = variant("old_layout");
    patch_key(p, "rewards", raw.rewards.unsqueeze(1));
    patch_key(p, "terminals", raw.terminals.to(torch::kFloat32).unsqueeze(1));
    patch_key(p, "observations", raw.observations.to(torch::kLong));
    const auto back = mopo::data::load_d4rl_hdf5(p);
    CHECK(same(back.rewards, raw.rewards));
    CHECK(same(back.terminals, raw.terminals));
    CHECK(same(back.observations, raw.observations));
  }
  fs::remove_all(dir);
}
