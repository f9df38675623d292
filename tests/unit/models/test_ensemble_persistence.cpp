// Tests of the persistence part of the dynamics ensemble (models/ensemble_persistence.hpp): save -> load
// round trip and bad files.
#include <torch/torch.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/models/gaussian_ensemble.hpp"
#include "support/synthetic_dynamics.hpp"

using Catch::Matchers::Contains;
using mopo::models::EnsembleTrainOptions;
using mopo::models::GaussianEnsemble;
using namespace mopo::testing;  // kObs, kAct, make_data, small_ensemble_options, …
namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("mopo_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("GaussianEnsemble save -> load gives identical predictions; bad files throw IoError",
          "[unit][models]") {
  const auto dir = temp_dir("ensemble");
  mopo::seed_global(51);
  const auto data = make_data(400, 52);
  auto options = small_ensemble_options();
  options.spectral_norm = true;  // the persistent u/v vectors round-trip too
  GaussianEnsemble model(kObs, kAct, options);
  EnsembleTrainOptions train;
  train.max_epochs = 2;
  model.fit(data.obs, data.act, data.next_obs, data.rew, train);
  model.set_elites({6, 0, 2, 3, 1});
  const auto file = dir / "sub" / "dynamics.pt";
  model.save(file);
  const auto loaded = GaussianEnsemble::load(file);
  CHECK((loaded.elites() == std::vector<int64_t>{6, 0, 2, 3, 1}));
  CHECK(loaded.options().spectral_norm);
  CHECK(loaded.options().hidden == options.hidden);
  const auto a = model.predict(data.obs, data.act);
  const auto b = loaded.predict(data.obs, data.act);
  CHECK(torch::equal(a.mean, b.mean));
  CHECK(torch::equal(a.std, b.std));
  mopo::RandomState r1(3), r2(3);
  CHECK(torch::equal(model.sample(data.obs, data.act, r1.generator()).next_obs,
                     loaded.sample(data.obs, data.act, r2.generator()).next_obs));
  // No temporary files left behind.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir / "sub")) files += entry.is_regular_file() ? 1 : 0;
  CHECK(files == 1);

  CHECK_THROWS_AS(GaussianEnsemble::load(dir / "missing.pt"), mopo::IoError);
  {
    std::ofstream junk(dir / "junk.pt");
    junk << "not a model";
  }
  CHECK_THROWS_WITH(GaussianEnsemble::load(dir / "junk.pt"), Contains("junk.pt"));
  // A Normalizer file is a torch archive but not an ensemble.
  model.input_normalizer().save(dir / "norm.pt");
  CHECK_THROWS_AS(GaussianEnsemble::load(dir / "norm.pt"), mopo::IoError);
  GaussianEnsemble untrained(kObs, kAct, small_ensemble_options());
  CHECK_THROWS_AS(untrained.save(dir / "u.pt"), mopo::ValueError);
  fs::remove_all(dir);
}
