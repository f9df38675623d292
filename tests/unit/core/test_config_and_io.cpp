// Tests of the torch-free core utilities: errors, JSON options, atomic writes, metrics writers,
// progress bar. (This TU deliberately does not include <torch/torch.h>, so it compiles in seconds.)
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "mopo/config/json_config.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/json_text.hpp"
#include "mopo/core/metrics.hpp"
#include "mopo/core/progress.hpp"
#include "mopo/version.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

fs::path temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("mopo_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

struct InnerOptions {
  double actor_lr = 3e-4;
  int64_t batch_size = 256;
  std::vector<int64_t> hidden = {256, 256};
  template <class V>
  void visit(V&& v) {
    v("actor_lr", actor_lr);
    v("batch_size", batch_size);
    v("hidden", hidden);
  }
  void validate() const {
    if (actor_lr <= 0) throw mopo::ConfigError("actor_lr: must be > 0, got " + std::to_string(actor_lr));
  }
};

struct OuterOptions {
  std::string task = "halfcheetah";
  uint64_t seed = 0;
  bool evaluate = true;
  std::optional<double> time_limit;
  std::map<std::string, double> extra;
  InnerOptions sac;
  template <class V>
  void visit(V&& v) {
    v("task", task);
    v("seed", seed);
    v("evaluate", evaluate);
    v("time_limit", time_limit);
    v("extra", extra);
    v("sac", sac);
  }
};

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const mopo::Error& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace

TEST_CASE("version macros agree with the CMake project version", "[unit][core]") {
  const std::string v = std::to_string(MOPO_VERSION_MAJOR) + "." + std::to_string(MOPO_VERSION_MINOR) + "." +
                        std::to_string(MOPO_VERSION_PATCH);
  CHECK(v == MOPO_PROJECT_VERSION);
  CHECK(std::string(mopo::kVersion) == v);
}

TEST_CASE("error hierarchy: every mopo error is a mopo::Error and a std::runtime_error", "[unit][core]") {
  CHECK_THROWS_AS(throw mopo::ConfigError("x"), mopo::Error);
  CHECK_THROWS_AS(throw mopo::IoError("x"), mopo::Error);
  CHECK_THROWS_AS(throw mopo::ShapeError("x"), mopo::Error);
  CHECK_THROWS_AS(throw mopo::ValueError("x"), mopo::Error);
  CHECK_THROWS_AS(throw mopo::DatasetError("x"), std::runtime_error);
}

TEST_CASE("config: defaults survive, given keys override, nested structs follow", "[unit][core][config]") {
  const auto j = mopo::config::parse(R"({"seed": 3, "sac": {"actor_lr": 1e-4, "hidden": [64, 64, 64]},
                                         "time_limit": 12.5, "extra": {"a": 1}})",
                                     "test");
  OuterOptions o;
  mopo::config::from_json(j, o);
  CHECK(o.task == "halfcheetah");
  CHECK(o.seed == 3);
  CHECK(o.evaluate);
  CHECK(o.sac.actor_lr == Approx(1e-4));
  CHECK(o.sac.batch_size == 256);
  CHECK(o.sac.hidden == std::vector<int64_t>{64, 64, 64});
  REQUIRE(o.time_limit.has_value());
  CHECK(*o.time_limit == 12.5);
  CHECK(o.extra.at("a") == 1.0);

  // to_json → from_json round trip gives the same values.
  OuterOptions back;
  back.sac.actor_lr = 7;
  mopo::config::from_json(mopo::config::to_json(o), back);
  CHECK(mopo::config::to_json(back) == mopo::config::to_json(o));
}

TEST_CASE("config: errors name the key path and the problem", "[unit][core][config]") {
  OuterOptions o;
  auto load = [&](const std::string& text) {
    return error_of([&] { mopo::config::from_json(mopo::config::parse(text, "test"), o); });
  };
  CHECK(load(R"({"sac": {"actor_lr": "fast"}})") == "sac.actor_lr: expected number, got string \"fast\"");
  CHECK(load(R"({"sac": {"batch_size": 1.5}})") == "sac.batch_size: expected integer, got number 1.5");
  CHECK(load(R"({"sac": {"hidden": [64, "x"]}})") == "sac.hidden[1]: expected integer, got string \"x\"");
  CHECK(load(R"({"evaluate": 1})") == "evaluate: expected boolean, got number 1");
  CHECK(load(R"({"sac": 3})") == "sac: expected object, got number 3");
  CHECK(load(R"({"seed": -1})") == "seed: value -1 is out of range");
  CHECK_THAT(load(R"({"sac": {"actor_lrr": 1}})"),
             Contains("sac.actor_lrr: unknown key (did you mean \"actor_lr\"?)") && Contains("batch_size"));
  CHECK_THAT(load(R"({"totally_new": 1})"), Contains("totally_new: unknown key; known keys: task seed"));
  CHECK(load(R"({"sac": {"actor_lr": -1}})") == "sac.actor_lr: must be > 0, got -1.000000");
  CHECK(load("[1, 2]") == "<root>: expected object, got array");
  CHECK_THAT(load("{\"seed\": 3,,}"), Contains("test: malformed JSON") && Contains("line 1"));
  // Whole numbers written as floats are accepted for integers.
  CHECK(load(R"({"sac": {"batch_size": 1e3}})") == "<no error>");
  CHECK(o.sac.batch_size == 1000);
}

TEST_CASE("config: files, overrides and atomic save", "[unit][core][config]") {
  const auto dir = temp_dir("config");
  const auto file = dir / "run.json";
  {
    std::ofstream(file)
        << "{\n  // comments are allowed\n  \"task\": \"hopper\",\n  \"sac\": {\"actor_lr\": true}\n}\n";
  }
  CHECK(error_of([&] { mopo::config::load_file<OuterOptions>(file); }) ==
        file.string() + ": sac.actor_lr: expected number, got boolean true");
  CHECK_THAT(error_of([&] { mopo::config::load_file<OuterOptions>(dir / "missing.json"); }),
             Contains("missing.json: cannot open for reading"));

  OuterOptions o;
  mopo::config::apply_override(o, "sac.actor_lr=0.001");
  mopo::config::apply_override(o, "task=walker2d");
  mopo::config::apply_override(o, "sac.hidden=[32,32]");
  mopo::config::apply_override(o, "time_limit=60");
  CHECK(o.sac.actor_lr == Approx(0.001));
  CHECK(o.task == "walker2d");
  CHECK(o.sac.hidden == std::vector<int64_t>{32, 32});
  mopo::config::apply_override(o, "time_limit=null");
  CHECK_FALSE(o.time_limit.has_value());
  CHECK_THAT(error_of([&] { mopo::config::apply_override(o, "sac.nope=1"); }),
             Contains("sac.nope: unknown key"));
  CHECK_THAT(error_of([&] { mopo::config::apply_override(o, "no_equals_sign"); }),
             Contains("key.path=value"));

  mopo::config::save_file(dir / "saved.json", o);
  const auto loaded = mopo::config::load_file<OuterOptions>(dir / "saved.json");
  CHECK(mopo::config::to_json(loaded) == mopo::config::to_json(o));
  fs::remove_all(dir);
}

TEST_CASE("atomic_write replaces whole files and keeps the old one on failure", "[unit][core][io]") {
  const auto dir = temp_dir("atomic");
  const auto file = dir / "sub" / "ckpt.bin";
  mopo::atomic_write(file, "first version");
  CHECK(mopo::read_file(file) == "first version");
  mopo::atomic_write(file, std::string(1 << 20, 'x'));
  CHECK(mopo::read_file(file).size() == (1u << 20));

  // A writer that fails half way leaves the previous file intact and no temporary behind.
  CHECK_THROWS_AS(mopo::atomic_write_with(file,
                                          [](const std::string& tmp) {
                                            std::ofstream(tmp) << "partial";
                                            throw mopo::IoError("simulated failure");
                                          }),
                  mopo::IoError);
  CHECK(mopo::read_file(file).size() == (1u << 20));
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(file.parent_path())) ++entries;
  CHECK(entries == 1);

  // A writer that forgets to create the file is reported, naming the target.
  CHECK_THAT(error_of([&] { mopo::atomic_write_with(dir / "x.bin", [](const std::string&) {}); }),
             Contains("x.bin: atomic write produced no file"));
  // An unwritable target names the file.
  CHECK_THAT(error_of([&] { mopo::atomic_write("/proc/mopo_cannot_write_here", "x"); }),
             Contains("/proc/mopo_cannot_write_here"));
  fs::remove_all(dir);
}

TEST_CASE("json_text: strings that are not UTF-8 (paths are bytes) are written, bad bytes as U+FFFD",
          "[unit][core][io]") {
  const nlohmann::json j = {{"file", "/data/n\xe9-\xff.hdf5"}, {"n", 3}};
  CHECK_THROWS(j.dump());  // nlohmann's own dump: type_error 316, which used to end train_mopo
  const std::string text = mopo::json_text(j);
  CHECK(text == "{\n  \"file\": \"/data/n\xef\xbf\xbd-\xef\xbf\xbd.hdf5\",\n  \"n\": 3\n}\n");
  CHECK(nlohmann::json::parse(text)["n"] == 3);  // valid JSON again
  CHECK(mopo::json_text(j, -1, false) == "{\"file\":\"/data/n\xef\xbf\xbd-\xef\xbf\xbd.hdf5\",\"n\":3}");
  CHECK(mopo::json_text({{"a", "caf\xc3\xa9"}}, -1, false) == "{\"a\":\"caf\xc3\xa9\"}");  // valid UTF-8 kept
  nlohmann::ordered_json o;  // key order kept (metrics rows, result.json), not sorted
  o["z"] = 1;
  o["a"] = 2;
  CHECK(mopo::json_text(o, -1, false) == "{\"z\":1,\"a\":2}");
}

TEST_CASE("csv_field quotes what would split or end a CSV row", "[unit][core][metrics]") {
  CHECK(mopo::detail::csv_field("/data/hc.hdf5") == "/data/hc.hdf5");
  CHECK(mopo::detail::csv_field("/data/run,1/hc.hdf5") == "\"/data/run,1/hc.hdf5\"");
  CHECK(mopo::detail::csv_field("a\"b") == "\"a\"\"b\"");
  CHECK(mopo::detail::csv_field("line\nbreak") == "\"line\nbreak\"");
  CHECK(mopo::detail::csv_field("") == "");
}

TEST_CASE("metrics: ordered, unique names, CSV and JSONL writers", "[unit][core][metrics]") {
  mopo::Metrics m{{"step", 1}, {"loss", 0.5}};
  m.set("loss", 0.25).set("alpha", 0.1);
  REQUIRE(m.size() == 3);
  CHECK(m.at("loss") == 0.25);
  CHECK(m.to_string() == "step=1 loss=0.25 alpha=0.1");
  CHECK_THROWS_AS(m.at("nope"), mopo::ValueError);

  const auto dir = temp_dir("metrics");
  {
    mopo::CsvWriter csv(dir / "m.csv");
    csv.write(m);
    csv.write(mopo::Metrics{{"step", 2}, {"alpha", 0.2}});  // missing loss → empty cell
    CHECK_THROWS_WITH(csv.write(mopo::Metrics{{"new_col", 1}}),
                      Contains("m.csv") && Contains("\"new_col\" is not a column"));
    mopo::JsonlWriter jsonl(dir / "m.jsonl");
    jsonl.write(m);
    jsonl.write(mopo::Metrics{{"x", std::nan("")}});
  }
  CHECK(mopo::read_file(dir / "m.csv") == "step,loss,alpha\n1,0.25,0.1\n2,,0.2\n");
  CHECK(mopo::read_file(dir / "m.jsonl") == "{\"step\":1.0,\"loss\":0.25,\"alpha\":0.1}\n{\"x\":null}\n");
  {
    // Resuming appends under the existing header.
    mopo::CsvWriter csv(dir / "m.csv", /*append=*/true);
    CHECK(csv.columns() == std::vector<std::string>{"step", "loss", "alpha"});
    csv.write(mopo::Metrics{{"step", 3}});
  }
  CHECK_THAT(mopo::read_file(dir / "m.csv"), Contains("\n3,,\n"));
  fs::remove_all(dir);
}

TEST_CASE("keep_log_rows_through: a resumed run drops rows past its checkpoint and a torn line",
          "[unit][core][metrics]") {
  const auto dir = temp_dir("keep_rows");
  mopo::atomic_write(dir / "m.csv", "epoch,loss\n1,0.5\n2,0.25\n3,0.125\n4,0.0");  // row 4 torn
  mopo::atomic_write(dir / "m.jsonl", "{\"epoch\":1}\n{\"epoch\":2}\n{\"epoch\":3}\n{\"ep");
  mopo::keep_log_rows_through(dir / "m.csv", "epoch", 2);
  mopo::keep_log_rows_through(dir / "m.jsonl", "epoch", 2);
  CHECK(mopo::read_file(dir / "m.csv") == "epoch,loss\n1,0.5\n2,0.25\n");
  CHECK(mopo::read_file(dir / "m.jsonl") == "{\"epoch\":1}\n{\"epoch\":2}\n");
  mopo::keep_log_rows_through(dir / "m.csv", "epoch", 5);  // nothing past 5: unchanged
  CHECK(mopo::read_file(dir / "m.csv") == "epoch,loss\n1,0.5\n2,0.25\n");
  mopo::keep_log_rows_through(dir / "absent.csv", "epoch", 1);  // a missing log stays missing
  CHECK_FALSE(fs::exists(dir / "absent.csv"));
  mopo::atomic_write(dir / "bad.csv", "step,loss\n1,0.5\n");
  CHECK_THROWS_WITH(mopo::keep_log_rows_through(dir / "bad.csv", "epoch", 1),
                    Contains("bad.csv:1") && Contains("no column \"epoch\""));
  mopo::atomic_write(dir / "bad.jsonl", "{\"epoch\":1}\nnot json\n");
  CHECK_THROWS_WITH(mopo::keep_log_rows_through(dir / "bad.jsonl", "epoch", 1), Contains("bad.jsonl:2"));
  fs::remove_all(dir);
}

TEST_CASE("progress bar: plain lines when not a TTY, redraws when it is", "[unit][core][progress]") {
  std::ostringstream plain;
  {
    mopo::ProgressBar bar(1000, "train", plain, /*tty=*/false, /*lines=*/4);
    for (int i = 1; i <= 1000; ++i) bar.update(i, "loss=1");
    bar.finish("done");
  }
  const std::string text = plain.str();
  CHECK(std::count(text.begin(), text.end(), '\n') == 4);  // 25 %, 50 %, 75 %, final
  CHECK(text.find('\r') == std::string::npos);
  CHECK_THAT(text, Contains("train 250/1000 25%") && Contains("train 1000/1000 100%") && Contains("| done"));

  std::ostringstream tty;
  {
    mopo::ProgressBar bar(10, "roll", tty, /*tty=*/true);
    bar.update(10);
  }
  CHECK_THAT(tty.str(), Contains("\rroll [########################] 10/10 100%"));
  CHECK(tty.str().back() == '\n');
}
