// Tests of the LibTorch-free deploy runtime (include/mopo/deploy): parity of deploy::Policy with the SAC
// actor and of deploy::DynamicsEnsemble with GaussianEnsemble (means, stds, MaxStd, the model step) for
// the registry's tasks' shapes, and the errors for bad files and bad inputs. In the models executable
// (not a new one) because it needs LibTorch for the reference side.
#include <torch/torch.h>
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/deploy/deploy.hpp"
#include "mopo/deploy/export.hpp"
#include "mopo/models/gaussian_ensemble.hpp"
#include "mopo/penalty/max_std.hpp"
#include "mopo/train/sac_trainer.hpp"
#include "support/task_shapes.hpp"

namespace fs = std::filesystem;

// The exception's type and its message.
#define CHECK_THROWS_TYPE_WITH(expr, type, matcher) \
  CHECK_THROWS_AS(expr, type);                      \
  CHECK_THROWS_WITH(expr, matcher)
using Catch::Matchers::Contains;
using mopo::deploy::RowMatrixXf;

namespace {

constexpr double kTol = 1e-5;  // issue 15: max abs difference LibTorch vs Eigen

fs::path temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("mopo_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

RowMatrixXf to_eigen(const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kFloat32).contiguous().view({t.size(0), -1});
  return Eigen::Map<const RowMatrixXf>(c.data_ptr<float>(), c.size(0), c.size(1));
}

double max_abs(const RowMatrixXf& a, const torch::Tensor& b) {
  const RowMatrixXf bb = to_eigen(b.reshape({a.rows(), a.cols()}));
  return static_cast<double>((a - bb).cwiseAbs().maxCoeff());
}

/// A non-symmetric action box, so the scaling to the bounds is exercised.
mopo::env::Box test_box(int64_t act_dim) {
  mopo::env::Box box;
  for (int64_t j = 0; j < act_dim; ++j) {
    box.low.push_back(-1.5 - 0.1 * static_cast<double>(j));
    box.high.push_back(0.5 + 0.2 * static_cast<double>(j));
  }
  return box;
}

/// tanh-space actions [B, A] mapped to the box by train::ActionScaler (train/evaluate.hpp), [B, A].
torch::Tensor scaled_by_trainer(const torch::Tensor& a, const mopo::env::Box& box) {
  const mopo::train::ActionScaler scale(box);
  const auto c = a.to(torch::kFloat64).contiguous();
  auto out = torch::empty_like(c);
  for (int64_t r = 0; r < c.size(0); ++r) {
    const mopo::env::Vector row(c[r].data_ptr<double>(), c[r].data_ptr<double>() + c.size(1));
    const auto s = scale(row);
    for (int64_t j = 0; j < c.size(1); ++j) out[r][j] = s[static_cast<std::size_t>(j)];
  }
  return out;
}

/// A GaussianEnsemble with randomised normaliser, biases, logvar bounds and elites (untrained weights
/// otherwise), so every part of the prediction path matters.
mopo::models::GaussianEnsemble random_ensemble(int64_t obs_dim, int64_t act_dim, uint64_t seed,
                                               bool spectral_norm = false) {
  mopo::seed_global(seed);
  mopo::models::EnsembleOptions o;  // 7 members, 5 elites, 4 × 200 swish (the reference shapes)
  o.spectral_norm = spectral_norm;
  mopo::models::GaussianEnsemble model(obs_dim, act_dim, o);
  const int64_t in = obs_dim + act_dim;
  model.set_input_normalizer(mopo::Normalizer(torch::randn({in}), torch::rand({in}) + 0.5));
  torch::NoGradGuard no_grad;
  auto& net = *model.network().ptr();
  for (auto& layer : net.layers()) layer->bias.normal_(0.0, 0.1);
  net.max_logvar.copy_(torch::rand({obs_dim + 1}) * 0.5 + 0.1);
  net.min_logvar.copy_(-torch::rand({obs_dim + 1}) * 2.0 - 4.0);
  model.set_elites({3, 0, 6, 1, 5});
  model.network()->eval();
  return model;
}

}  // namespace

TEST_CASE("deploy::Policy equals the LibTorch SAC actor for the registry's task shapes", "[unit][deploy]") {
  const auto dir = temp_dir("deploy_policy");
  for (const auto& shape : mopo::testing::registry_task_shapes()) {
    INFO(shape.task);
    mopo::agents::SACAgent agent(shape.obs_dim, shape.act_dim, {}, 11);
    const auto box = test_box(shape.act_dim);
    const auto file = dir / (std::string(shape.task) + ".policy.mopo");
    mopo::deploy::export_policy(agent, file, box);
    auto policy = mopo::deploy::Policy::load(file);
    REQUIRE(policy.obs_dim() == shape.obs_dim);
    REQUIRE(policy.act_dim() == shape.act_dim);

    mopo::RandomState rng(3);
    const int64_t b = 64;
    const auto obs = torch::randn({b, shape.obs_dim}, rng.generator()) * 2.0;
    const auto eps = torch::randn({b, shape.act_dim}, rng.generator());
    torch::Tensor det_ref, sto_ref;
    {
      torch::NoGradGuard no_grad;
      det_ref = scaled_by_trainer(agent.actor()->mode(obs), box);
      const auto [mean, log_std] = agent.actor()->forward(obs);  // sample(): tanh(μ + σ·ε)
      sto_ref = scaled_by_trainer(torch::tanh(mean + log_std.exp() * eps), box);
    }
    const RowMatrixXf obs_e = to_eigen(obs);
    const RowMatrixXf eps_e = to_eigen(eps);
    RowMatrixXf actions(b, shape.act_dim);
    policy.act_batch(obs_e, actions);
    const double err_batch = max_abs(actions, det_ref);
    policy.act_batch_with_noise(obs_e, eps_e, actions);
    const double err_batch_sto = max_abs(actions, sto_ref);

    double err_single = 0.0, err_single_sto = 0.0;
    Eigen::VectorXf a(shape.act_dim);
    for (int64_t r = 0; r < b; ++r) {
      const Eigen::VectorXf o = obs_e.row(r).transpose();
      policy.act(o, a);
      err_single = std::max(err_single, max_abs(a.transpose(), det_ref[r]));
      policy.act_with_noise(o, eps_e.row(r).transpose(), a);
      err_single_sto = std::max(err_single_sto, max_abs(a.transpose(), sto_ref[r]));
    }
    // The agent's lean act(std::vector<double>) path (what evaluate() uses), row 0.
    const Eigen::VectorXf o0 = obs_e.row(0).transpose();
    const auto lean = agent.act(std::vector<double>(o0.data(), o0.data() + o0.size()), true);
    const auto lean_scaled = mopo::train::ActionScaler(box)(lean);
    policy.act(o0, a);
    double err_lean = 0.0;
    for (int64_t j = 0; j < shape.act_dim; ++j)
      err_lean =
          std::max(err_lean, std::abs(static_cast<double>(a[j]) - lean_scaled[static_cast<std::size_t>(j)]));

    std::printf(
        "deploy parity policy %-12s obs %3ld act %ld: deterministic batch %.2e single %.2e lean %.2e, "
        "stochastic batch %.2e single %.2e\n",
        shape.task, static_cast<long>(shape.obs_dim), static_cast<long>(shape.act_dim), err_batch, err_single,
        err_lean, err_batch_sto, err_single_sto);
    CHECK(err_batch < kTol);
    CHECK(err_single < kTol);
    CHECK(err_lean < kTol);
    CHECK(err_batch_sto < kTol);
    CHECK(err_single_sto < kTol);
  }
  fs::remove_all(dir);
}

TEST_CASE("deploy::Policy stochastic act draws ε ~ N(0, I) from the caller's generator", "[unit][deploy]") {
  const auto dir = temp_dir("deploy_policy_rng");
  mopo::agents::SACAgent agent(5, 3, {}, 2);
  const auto box = test_box(3);
  mopo::deploy::export_policy(agent, dir / "p.mopo", box);
  auto policy = mopo::deploy::Policy::load(dir / "p.mopo");
  Eigen::VectorXf obs = Eigen::VectorXf::LinSpaced(5, -1.0f, 1.0f);
  Eigen::VectorXf a(3), b(3), det(3);
  std::mt19937_64 rng(9);
  auto copy = rng;
  policy.act(obs, a, rng);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Eigen::VectorXf eps(3);
  for (int j = 0; j < 3; ++j) eps[j] = normal(copy);
  policy.act_with_noise(obs, eps, b);
  CHECK((a - b).cwiseAbs().maxCoeff() == 0.0f);  // same draws, same function
  // Over many draws the actions spread around the deterministic one and stay inside the box.
  policy.act(obs, det);
  double spread = 0.0;
  for (int k = 0; k < 200; ++k) {
    policy.act(obs, a, rng);
    spread += static_cast<double>((a - det).norm());
    for (int j = 0; j < 3; ++j) {
      CHECK(a[j] >= static_cast<float>(box.low[static_cast<std::size_t>(j)]));
      CHECK(a[j] <= static_cast<float>(box.high[static_cast<std::size_t>(j)]));
    }
  }
  CHECK(spread / 200.0 > 1e-3);
  // Batched stochastic form: ε drawn row-major with one std::normal_distribution from the generator.
  RowMatrixXf obs_b = obs.transpose().replicate(4, 1);
  RowMatrixXf acts(4, 3), expected(4, 3), eps_b(4, 3);
  std::mt19937_64 r1(4), r2(4);
  policy.act_batch(obs_b, acts, r1);
  std::normal_distribution<float> normal_b(0.0f, 1.0f);
  for (int r = 0; r < 4; ++r) {
    for (int j = 0; j < 3; ++j) eps_b(r, j) = normal_b(r2);
  }
  policy.act_batch_with_noise(obs_b, eps_b, expected);
  CHECK((acts - expected).cwiseAbs().maxCoeff() == 0.0f);
  CHECK((acts.row(0) - acts.row(1)).norm() > 0.0f);  // independent draws per row
  fs::remove_all(dir);
}

TEST_CASE("deploy::DynamicsEnsemble equals GaussianEnsemble predict and MaxStd for the task shapes",
          "[unit][deploy]") {
  const auto dir = temp_dir("deploy_dynamics");
  struct Case {
    mopo::testing::TaskShape shape;
    bool spectral_norm;
  };
  std::vector<Case> cases;
  for (const auto& s : mopo::testing::registry_task_shapes()) cases.push_back({s, false});
  cases.push_back({mopo::testing::registry_task_shapes().front(), true});
  uint64_t seed = 20;
  for (const auto& c : cases) {
    const auto& shape = c.shape;
    INFO(shape.task << (c.spectral_norm ? " (spectral norm)" : ""));
    const auto model = random_ensemble(shape.obs_dim, shape.act_dim, ++seed, c.spectral_norm);
    const auto file = dir / (std::string(shape.task) + ".dynamics.mopo");
    mopo::deploy::export_dynamics(model, file);
    auto deployed = mopo::deploy::DynamicsEnsemble::load(file);
    REQUIRE(deployed.ensemble_size() == 7);
    REQUIRE(deployed.elites() == std::vector<int>{3, 0, 6, 1, 5});

    mopo::RandomState rng(seed);
    const int64_t b = 300;  // not a multiple of the block sizes (1024 default, 64 below)
    const auto obs = torch::randn({b, shape.obs_dim}, rng.generator());
    const auto act = torch::rand({b, shape.act_dim}, rng.generator()) * 2.0 - 1.0;
    const auto ref = model.predict(obs, act);  // [E, B, D], the trainer's fast path
    const auto ref_u = mopo::penalty::MaxStd{}(ref);

    mopo::deploy::Prediction pred;
    deployed.predict(to_eigen(obs), to_eigen(act), pred);
    REQUIRE(pred.mean.rows() == 7 * b);
    REQUIRE(pred.mean.cols() == shape.obs_dim + 1);
    const double err_mean = max_abs(pred.mean, ref.mean);
    const double err_std = max_abs(pred.std, ref.std);
    const Eigen::VectorXf u = mopo::deploy::max_std(pred);
    const double err_u = max_abs(u.transpose(), ref_u.unsqueeze(0));
    std::printf(
        "deploy parity dynamics %-12s%s in %3ld out %3ld: mean %.2e std %.2e max_std %.2e "
        "(|mean| max %.1f)\n",
        shape.task, c.spectral_norm ? " sn" : "   ", static_cast<long>(shape.obs_dim + shape.act_dim),
        static_cast<long>(shape.obs_dim + 1), err_mean, err_std, err_u, ref.mean.abs().max().item<double>());
    CHECK(err_mean < kTol);
    CHECK(err_std < kTol);
    CHECK(err_u < kTol);
    deployed.set_block_rows(64);  // several blocks and a partial one: same results
    mopo::deploy::Prediction blocked;
    deployed.predict(to_eigen(obs), to_eigen(act), blocked);
    CHECK(max_abs(blocked.mean, ref.mean) < kTol);
    CHECK(max_abs(blocked.std, ref.std) < kTol);

    // The model step: elites only, deterministic = the chosen member's mean, noise standard normal.
    std::mt19937_64 gen(seed);
    mopo::deploy::ModelStep step;
    deployed.sample(pred, gen, step, /*deterministic=*/true);
    std::set<int> seen;
    double det_err = 0.0;
    for (int64_t r = 0; r < b; ++r) {
      const int m = step.member[static_cast<std::size_t>(r)];
      seen.insert(m);
      det_err = std::max(
          det_err,
          static_cast<double>(
              (step.next_obs.row(r) - pred.member_mean(m).row(r).head(shape.obs_dim)).cwiseAbs().maxCoeff()));
      det_err = std::max(
          det_err, std::abs(static_cast<double>(step.reward[r] - pred.member_mean(m)(r, shape.obs_dim))));
    }
    CHECK(det_err == 0.0);
    CHECK(seen == std::set<int>{0, 1, 3, 5, 6});
    deployed.sample(to_eigen(obs), to_eigen(act), gen, pred, step);
    double z_sum = 0.0, z_sq = 0.0;
    int64_t n = 0;
    for (int64_t r = 0; r < b; ++r) {
      const int m = step.member[static_cast<std::size_t>(r)];
      for (int64_t j = 0; j <= shape.obs_dim; ++j) {
        const float y = j < shape.obs_dim ? step.next_obs(r, j) : step.reward[r];
        const double z = static_cast<double>((y - pred.member_mean(m)(r, j)) / pred.member_std(m)(r, j));
        z_sum += z;
        z_sq += z * z;
        ++n;
      }
    }
    const double z_mean = z_sum / static_cast<double>(n);
    const double z_var = z_sq / static_cast<double>(n) - z_mean * z_mean;
    CHECK(std::abs(z_mean) < 5.0 / std::sqrt(static_cast<double>(n)));
    CHECK(std::abs(z_var - 1.0) < 0.15);
  }
  fs::remove_all(dir);
}

TEST_CASE("deploy files: truncated, corrupted, wrong version or format are IoErrors naming the file",
          "[unit][deploy]") {
  const auto dir = temp_dir("deploy_bad_files");
  mopo::agents::SACAgent agent(4, 2, {}, 1);
  const auto good = dir / "good.policy.mopo";
  mopo::deploy::export_policy(agent, good);
  const std::string bytes = mopo::read_file(good);
  const auto write = [&](const std::string& name, const std::string& content) {
    const auto f = dir / name;
    mopo::atomic_write(f, content);
    return f;
  };
  using mopo::deploy::Policy;
  CHECK_THROWS_TYPE_WITH(Policy::load(dir / "missing.mopo"), mopo::IoError, Contains(("missing.mopo")));
  CHECK_THROWS_WITH(Policy::load(write("short.mopo", bytes.substr(0, bytes.size() - 10))),
                    Contains("short.mopo") && Contains("truncated"));
  CHECK_THROWS_WITH(Policy::load(write("header_cut.mopo", bytes.substr(0, 40))),
                    Contains("header_cut.mopo") && Contains("truncated"));
  CHECK_THROWS_WITH(Policy::load(write("tiny.mopo", bytes.substr(0, 5))), Contains("no MOPODEPL magic"));
  CHECK_THROWS_WITH(Policy::load(write("long.mopo", bytes + "xy")), Contains("trailing bytes"));
  CHECK_THROWS_WITH(Policy::load(write("text.mopo", "hello, not a model")), Contains("text.mopo"));

  std::string blob_flip = bytes;
  blob_flip[blob_flip.size() - 7] = static_cast<char>(blob_flip[blob_flip.size() - 7] ^ 0x10);
  CHECK_THROWS_WITH(Policy::load(write("flip.mopo", blob_flip)), Contains("flip.mopo") && Contains("CRC-32"));
  std::string header_flip = bytes;
  header_flip[16] = '#';  // the JSON's opening brace
  CHECK_THROWS_WITH(Policy::load(write("json.mopo", header_flip)),
                    Contains("json.mopo") && Contains("corrupted JSON header"));

  std::string v2 = bytes;
  const auto pos = v2.find("\"version\": 1");
  REQUIRE(pos != std::string::npos);
  v2[pos + 11] = '2';
  CHECK_THROWS_WITH(Policy::load(write("v2.mopo", v2)),
                    Contains("v2.mopo") && Contains("format version 2") && Contains("supports version 1"));

  // A dynamics file is not a policy (and vice versa).
  CHECK_THROWS_WITH(mopo::deploy::DynamicsEnsemble::load(good),
                    Contains("good.policy.mopo") && Contains("expected 'mopo.deploy.dynamics'"));
  // Well-formed file whose arrays contradict its layer sizes.
  auto bundle = mopo::deploy::policy_bundle(agent);
  bundle.meta["hidden"] = {128, 256};
  mopo::deploy::detail::write_bundle(dir / "sizes.mopo", bundle);
  CHECK_THROWS_WITH(Policy::load(dir / "sizes.mopo"),
                    Contains("sizes.mopo") && Contains("l0.weight has shape [256, 4], expected [128, 4]"));
  bundle = mopo::deploy::policy_bundle(agent);
  bundle.meta.erase("log_std_min");
  mopo::deploy::detail::write_bundle(dir / "field.mopo", bundle);
  CHECK_THROWS_WITH(Policy::load(dir / "field.mopo"), Contains("field.mopo") && Contains("'log_std_min'"));

  // The exporter refuses non-finite weights and leaves the previous file in place (atomic write).
  {
    torch::NoGradGuard no_grad;
    agent.actor()->layers()[0]->weight[0][0] = std::nan("");
  }
  CHECK_THROWS_AS(mopo::deploy::export_policy(agent, good), mopo::ValueError);
  CHECK(mopo::read_file(good) == bytes);
  CHECK_THROWS_AS(mopo::deploy::export_policy(agent, dir / "b.mopo", mopo::env::Box{{-1.0}, {1.0}}),
                  mopo::ShapeError);
  fs::remove_all(dir);
}

TEST_CASE("deploy runtime: wrong sizes are ShapeErrors, non-finite inputs ValueErrors", "[unit][deploy]") {
  const auto dir = temp_dir("deploy_bad_inputs");
  mopo::agents::SACAgent agent(17, 6, {}, 1);
  mopo::deploy::export_policy(agent, dir / "p.mopo");
  auto policy = mopo::deploy::Policy::load(dir / "p.mopo");
  Eigen::VectorXf a(6);
  CHECK_THROWS_TYPE_WITH(policy.act(Eigen::VectorXf::Zero(18), a), mopo::ShapeError,
                         Contains(("expected 17 values, got 18")));
  Eigen::VectorXf small(5);
  CHECK_THROWS_TYPE_WITH(policy.act(Eigen::VectorXf::Zero(17), small), mopo::ShapeError,
                         Contains(("expected 6 values, got 5")));
  Eigen::VectorXf nan_obs = Eigen::VectorXf::Zero(17);
  nan_obs[4] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_TYPE_WITH(policy.act(nan_obs, a), mopo::ValueError, Contains(("index 4 is not finite")));
  std::mt19937_64 rng(1);
  CHECK_THROWS_AS(policy.act(nan_obs, a, rng), mopo::ValueError);
  RowMatrixXf batch = RowMatrixXf::Zero(4, 16);
  RowMatrixXf acts(4, 6);
  CHECK_THROWS_TYPE_WITH(policy.act_batch(batch, acts), mopo::ShapeError,
                         Contains(("expected shape [*, 17], got [4, 16]")));
  batch = RowMatrixXf::Zero(4, 17);
  batch(2, 3) = std::numeric_limits<float>::infinity();
  CHECK_THROWS_TYPE_WITH(policy.act_batch(batch, acts), mopo::ValueError, Contains(("[2, 3] is not finite")));

  const auto model = random_ensemble(3, 2, 5);
  mopo::deploy::export_dynamics(model, dir / "d.mopo");
  auto deployed = mopo::deploy::DynamicsEnsemble::load(dir / "d.mopo");
  mopo::deploy::Prediction pred;
  CHECK_THROWS_TYPE_WITH(deployed.predict(RowMatrixXf::Zero(8, 3), RowMatrixXf::Zero(7, 2), pred),
                         mopo::ShapeError, Contains(("actions: expected shape [8, 2], got [7, 2]")));
  CHECK_THROWS_TYPE_WITH(deployed.predict(RowMatrixXf::Zero(8, 4), RowMatrixXf::Zero(8, 2), pred),
                         mopo::ShapeError, Contains(("observations: expected shape [*, 3], got [8, 4]")));
  RowMatrixXf act = RowMatrixXf::Zero(8, 2);
  act(1, 1) = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(deployed.predict(RowMatrixXf::Zero(8, 3), act, pred), mopo::ValueError);
  CHECK_THROWS_AS(mopo::deploy::export_dynamics(mopo::models::GaussianEnsemble(3, 2), dir / "u.mopo"),
                  mopo::ValueError);
  fs::remove_all(dir);
}
