// End-to-end MOPO on a tiny dataset collected from the real MuJoCo HalfCheetah with random actions:
// the trainer completes, logs, checkpoints, and resumes to exactly the same state.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "mopo/env/mujoco/tasks/half_cheetah.hpp"
#include "mopo/env/mujoco/tasks/hopper.hpp"
#include "mopo/train/mopo_trainer.hpp"
#include "mopo/train/run_summary.hpp"
#include "support/tiny_mopo_config.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

// `episodes` random-action episodes of `steps` steps each, as a qlearning-style dataset.
template <class EnvT>
mopo::data::TransitionDataset random_dataset(int64_t episodes, int64_t steps, uint64_t seed) {
  EnvT env;
  mopo::RandomState rng(seed);
  std::vector<torch::Tensor> obs, act, rew, next, term;
  for (int64_t e = 0; e < episodes; ++e) {
    auto o = env.reset(rng.next_seed());
    for (int64_t t = 0; t < steps; ++t) {
      const torch::Tensor a = torch::rand({env.action_dim()}, rng.generator(), torch::kFloat64) * 2 - 1;
      std::vector<double> av(a.data_ptr<double>(), a.data_ptr<double>() + a.numel());
      const auto r = env.step(av);
      obs.push_back(torch::tensor(o, torch::kFloat64).to(torch::kFloat32));
      act.push_back(a.to(torch::kFloat32));
      rew.push_back(torch::tensor(r.reward, torch::kFloat32));
      next.push_back(torch::tensor(r.observation, torch::kFloat64).to(torch::kFloat32));
      term.push_back(torch::tensor(r.terminated));
      o = r.observation;
      if (r.terminated || r.truncated) break;
    }
  }
  mopo::data::TransitionDataset d;
  d.observations = torch::stack(obs);
  d.actions = torch::stack(act);
  d.rewards = torch::stack(rew);
  d.next_observations = torch::stack(next);
  d.terminals = torch::stack(term);
  return d;
}

mopo::train::MopoConfig tiny_config() { return mopo::testing::tiny_mopo_config(); }

fs::path fresh_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / ("mopo_it_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

std::vector<torch::Tensor> params(mopo::agents::SACAgent& a) {
  std::vector<torch::Tensor> out;
  for (const auto& p : a.actor()->parameters()) out.push_back(p.detach().clone());
  for (const auto& p : a.critic()->parameters()) out.push_back(p.detach().clone());
  return out;
}

// Trains `cfg` for one epoch into `dir` (metrics and a checkpoint), no evaluation environment.
void checkpoint_one_epoch(mopo::train::MopoConfig cfg, const mopo::data::TransitionDataset& data,
                          const fs::path& dir) {
  cfg.epochs = 1;
  mopo::train::Mopo t(cfg, data);
  t.fit<mopo::env::Environment>(nullptr, dir);
}

}  // namespace

TEST_CASE("MOPO end to end on a tiny HalfCheetah dataset: trains, logs, checkpoints, resumes exactly",
          "[integration][mopo]") {
  at::set_num_threads(1);
  const auto data = random_dataset<mopo::env::HalfCheetah>(2, 150, 1);
  const auto cfg = tiny_config();
  mopo::env::HalfCheetah eval_env;

  // A: two epochs straight.
  const auto dir_a = fresh_dir("a");
  auto cfg_a = cfg;
  cfg_a.eval_every = 2;  // epoch 1 is not evaluated: its CSV row must still have the eval columns
  mopo::train::Mopo a(cfg_a, data);
  const auto report = a.train_model();
  CHECK(report.elites.size() == 2);
  // Per-dimension holdout MSE of the elites: its mean over dimensions is the elites' mean MSE.
  REQUIRE(report.holdout_mse_per_dim.size() == static_cast<std::size_t>(data.observation_dim() + 1));
  double dim_mean = 0;
  for (double v : report.holdout_mse_per_dim)
    dim_mean += v / static_cast<double>(report.holdout_mse_per_dim.size());
  const double elite_mean = (report.best_holdout_mse[static_cast<std::size_t>(report.elites[0])] +
                             report.best_holdout_mse[static_cast<std::size_t>(report.elites[1])]) /
                            2;
  CHECK(dim_mean == Approx(elite_mean).epsilon(1e-9));
  CHECK(report.stop_reason == "max_epochs");
  CHECK_THAT(mopo::train::describe_stop(report, cfg.model_training),
             Contains("model_training.max_epochs = 3"));
  const auto model_json = mopo::train::model_report_json(report, cfg.model_training);
  CHECK(model_json.at("epochs") == 3);
  CHECK(model_json.at("elite_holdout_mse").get<double>() == Approx(elite_mean));
  CHECK(model_json.at("elite_holdout_mse_reward").get<double>() == report.holdout_mse_per_dim.back());
  const auto results = a.fit(&eval_env, dir_a);
  REQUIRE(results.size() == 2);
  CHECK_FALSE(results[0].eval.has_value());
  CHECK(std::isnan(results[0].metrics.at("eval/return_mean")));
  REQUIRE(results[1].eval.has_value());
  CHECK(results[1].eval->length_mean == 1000);  // HalfCheetah never terminates: the time limit ends it
  CHECK(std::isfinite(results[1].normalized_score));
  for (const auto& r : results) {
    CHECK(r.metrics.at("rollout/transitions") == 600);  // 200 starts × h 3, no termination
    CHECK(r.metrics.at("rollout/penalty") > 0);
    CHECK(r.metrics.at("rollout/penalized_reward") < r.metrics.at("rollout/raw_reward"));
  }
  CHECK(a.model_buffer().epochs() == 2);
  CHECK(a.total_steps() == 40);
  // Logs: a header and one row per epoch in both formats.
  std::ifstream csv(dir_a / "metrics.csv");
  std::string line;
  int lines = 0;
  while (std::getline(csv, line)) ++lines;
  CHECK(lines == 3);
  CHECK(fs::exists(dir_a / "metrics.jsonl"));
  CHECK(fs::exists(dir_a / "checkpoint" / "latest.json"));
  CHECK(fs::exists(dir_a / "checkpoint" / "epoch-2" / "agent.pt"));
  CHECK_FALSE(fs::exists(dir_a / "checkpoint" / "epoch-1"));  // superseded
  CHECK_FALSE(fs::exists(dir_a / "model_metrics.csv"));       // the model was trained before fit()
  // The summary read back from the log agrees with what fit() returned.
  const auto summary = mopo::train::summarize_metrics(dir_a / "metrics.jsonl");
  CHECK(summary.column == "eval/normalized_score");
  CHECK(summary.epochs == 2);
  CHECK(summary.evaluations == 1);  // epoch 1 was not evaluated
  CHECK(summary.final_epoch == 2);
  CHECK(summary.final_score == Approx(results[1].normalized_score));
  CHECK(summary.best_score == summary.final_score);
  CHECK(summary.recent == 1);
  CHECK(summary.recent_mean == Approx(summary.final_score));
  CHECK(summary.seconds > 0);

  // B: one epoch, checkpoint; C: resume from it for the second epoch.
  const auto dir_b = fresh_dir("b");
  auto cfg_b = cfg;
  cfg_b.epochs = 1;
  {
    mopo::train::Mopo b(cfg_b, data);
    b.fit(&eval_env, dir_b);
  }
  // fit() trained the model itself and logged each of its 3 epochs (model_training.max_epochs).
  {
    std::ifstream model_csv(dir_b / "model_metrics.csv");
    std::string header;
    REQUIRE(std::getline(model_csv, header));
    CHECK_THAT(header, Contains("holdout_mse") && Contains("epochs_since_update"));
    int rows = 0;
    for (std::string row; std::getline(model_csv, row);) ++rows;
    CHECK(rows == 3);
  }
  mopo::train::Mopo c(cfg, data);
  c.load_checkpoint(dir_b / "checkpoint");
  CHECK(c.epoch() == 1);
  c.fit(&eval_env, dir_b);
  CHECK(c.epoch() == 2);
  const auto pa = params(a.agent());
  const auto pc = params(c.agent());
  REQUIRE(pa.size() == pc.size());
  bool identical = true;
  for (std::size_t i = 0; i < pa.size(); ++i) identical = identical && torch::equal(pa[i], pc[i]);
  CHECK(identical);
  CHECK(torch::equal(a.model_buffer().contents().rewards, c.model_buffer().contents().rewards));
  // A checkpoint of another algorithm is refused, naming the setting that differs.
  auto bc_cfg = cfg;
  bc_cfg.behavior_cloning = true;
  CHECK_THROWS_WITH(mopo::train::Mopo(bc_cfg, data).load_checkpoint(dir_b / "checkpoint"),
                    Contains("behavior_cloning"));
  CHECK_THROWS_WITH(mopo::train::Mbpo(cfg, data).load_checkpoint(dir_b / "checkpoint"), Contains("penalty"));
  // set_model refuses an ensemble whose member count differs from the config's.
  auto one = cfg;
  one.ensemble.ensemble_size = one.ensemble.num_elites = 1;
  CHECK_THROWS_AS(mopo::train::Mopo(one, data).set_model(
                      mopo::models::GaussianEnsemble::load(dir_a / "checkpoint" / "epoch-2" / "model.pt")),
                  mopo::ShapeError);

  // A resumed CSV continues under its header, and the summary covers both sessions.
  std::ifstream csv_b(dir_b / "metrics.csv");
  lines = 0;
  while (std::getline(csv_b, line)) ++lines;
  CHECK(lines == 3);
  const auto resumed = mopo::train::summarize_metrics(dir_b / "metrics.jsonl");
  CHECK(resumed.epochs == 2);
  CHECK(resumed.evaluations == 2);
  // A damaged or missing log is an IoError naming the file and line.
  {
    std::ofstream bad(dir_b / "bad.jsonl");
    bad << "{\"epoch\": 1}\nnot json\n";
  }
  CHECK_THROWS_WITH(mopo::train::summarize_metrics(dir_b / "bad.jsonl"), Contains("bad.jsonl:2"));
  CHECK_THROWS_AS(mopo::train::summarize_metrics(dir_b / "missing.jsonl"), mopo::IoError);
  fs::remove_all(dir_a);
  fs::remove_all(dir_b);
}

TEST_CASE("A resumed epoch without a rollout of its own reports the last rollout's statistics",
          "[integration][mopo]") {
  at::set_num_threads(1);
  const auto data = random_dataset<mopo::env::HalfCheetah>(2, 100, 3);
  auto cfg = tiny_config();
  cfg.rollout_freq = 40;  // two epochs of 20 steps per rollout: epoch 2 has none of its own
  cfg.eval_episodes = 0;
  const auto dir_a = fresh_dir("stats_a");
  const auto dir_b = fresh_dir("stats_b");
  mopo::train::Mopo a(cfg, data);
  const auto straight = a.fit<mopo::env::Environment>(nullptr, dir_a);
  REQUIRE(straight.size() == 2);
  checkpoint_one_epoch(cfg, data, dir_b);
  mopo::train::Mopo c(cfg, data);
  c.load_checkpoint(dir_b / "checkpoint");
  const auto resumed = c.fit<mopo::env::Environment>(nullptr, dir_b);
  REQUIRE(resumed.size() == 1);
  CHECK(resumed[0].metrics.at("rollout/penalty") > 0);
  for (const char* key : {"rollout/starts", "rollout/transitions", "rollout/raw_reward", "rollout/penalty",
                          "rollout/penalized_reward", "rollout/length"}) {
    INFO(key);
    CHECK(resumed[0].metrics.at(key) == straight[1].metrics.at(key));
  }
  fs::remove_all(dir_a);
  fs::remove_all(dir_b);
}

TEST_CASE("Divergence stops training naming the epoch, step and quantity; the last checkpoint stays good",
          "[integration][mopo]") {
  at::set_num_threads(1);
  const auto data = random_dataset<mopo::env::HalfCheetah>(2, 100, 4);
  auto cfg = tiny_config();
  cfg.eval_episodes = 0;
  const auto dir = fresh_dir("diverge");
  checkpoint_one_epoch(cfg, data, dir);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  // A NaN critic weight: the next update's Q-values and losses are NaN.
  mopo::train::Mopo u(cfg, data);
  u.load_checkpoint(dir / "checkpoint");
  {
    torch::NoGradGuard no_grad;
    u.agent().critic()->parameters()[0][0][0].fill_(nan);
  }
  CHECK_THROWS_MATCHES(u.fit<mopo::env::Environment>(nullptr, dir), mopo::DivergenceError,
                       Catch::Matchers::Predicate<std::exception>([](const std::exception& e) {
                         const std::string m = e.what();
                         return m.find("epoch 2, SAC step 21") != std::string::npos &&
                                m.find("sac/") != std::string::npos && m.find("nan") != std::string::npos;
                       }));
  // Nothing of the failed epoch was written: the checkpoint is epoch 1's and resumes; one metrics row.
  mopo::train::Mopo v(cfg, data);
  v.load_checkpoint(dir / "checkpoint");
  CHECK(v.epoch() == 1);
  {
    std::ifstream csv(dir / "metrics.csv");
    int lines = 0;
    for (std::string line; std::getline(csv, line);) ++lines;
    CHECK(lines == 2);
  }
  // A model that predicts NaN: the rollout stops ("stop", the default) or drops the rows ("drop").
  {
    torch::NoGradGuard no_grad;
    v.model().network()->parameters()[0].fill_(nan);
  }
  CHECK_THROWS_MATCHES(v.rollout(), mopo::DivergenceError,
                       Catch::Matchers::Predicate<std::exception>([](const std::exception& e) {
                         return std::string(e.what()).find("predicted NaN/Inf for 200 rollout rows") !=
                                std::string::npos;
                       }));
  auto drop = cfg;
  drop.nonfinite_model_rows = "drop";
  mopo::train::Mopo w(drop, data);
  w.set_model(mopo::models::GaussianEnsemble::load(dir / "checkpoint" / "epoch-1" / "model.pt"));
  {
    torch::NoGradGuard no_grad;
    w.model().network()->parameters()[0].fill_(nan);
  }
  const auto dropped = w.rollout();
  CHECK(dropped.nonfinite == 200);
  CHECK(dropped.transitions == 0);
  auto bad = cfg;
  bad.nonfinite_model_rows = "skip";
  CHECK_THROWS_WITH(mopo::train::Mopo(bad, data), Contains("nonfinite_model_rows"));
  fs::remove_all(dir);
}

TEST_CASE("MOPO baselines and errors: offline SAC, TrueError needs the simulator, bad inputs",
          "[integration][mopo]") {
  at::set_num_threads(1);
  const auto data = random_dataset<mopo::env::Hopper>(3, 100, 2);
  auto cfg = tiny_config();
  cfg.task = "hopper";
  cfg.epochs = 1;
  cfg.eval_episodes = 0;

  auto offline = cfg;
  offline.real_only = true;
  mopo::train::Mopo sac_only(offline, data);
  const auto r = sac_only.fit<mopo::env::Environment>(nullptr);
  REQUIRE(r.size() == 1);
  CHECK_FALSE(r[0].metrics.contains("rollout/transitions"));

  // Behaviour cloning: actions a deterministic function of the state, so the clone can fit them.
  auto bc_data = data;
  bc_data.actions = torch::tanh(0.5 * bc_data.observations.narrow(1, 0, bc_data.action_dim()));
  auto bc_cfg = cfg;
  bc_cfg.behavior_cloning = true;
  bc_cfg.epochs = 3;
  bc_cfg.steps_per_epoch = 150;
  bc_cfg.sac.actor_lr = 1e-3;
  mopo::train::Mopo bc(bc_cfg, bc_data);
  const auto mse = [&] {
    return (bc.agent().act(bc_data.observations, true) - bc_data.actions)
        .square()
        .sum(-1)
        .mean()
        .item<double>();
  };
  const double before = mse();
  const auto bc_r = bc.fit<mopo::env::Environment>(nullptr);
  REQUIRE(bc_r.size() == 3);
  CHECK_FALSE(bc_r[0].metrics.contains("rollout/transitions"));
  CHECK_FALSE(bc_r[0].metrics.contains("sac/critic_loss"));
  CHECK(bc_r[2].metrics.at("sac/bc_loss") < bc_r[0].metrics.at("sac/bc_loss"));
  CHECK(mse() < 0.1 * before);
  CHECK(bc.agent().num_updates() == 450);
  auto both = cfg;
  both.real_only = both.behavior_cloning = true;
  CHECK_THROWS_WITH(mopo::train::Mopo(both, data), Contains("choose one baseline"));

  mopo::train::MopoTrainer<mopo::penalty::TrueError> oracle(cfg, data);
  oracle.train_model();
  CHECK_THROWS_WITH(oracle.rollout(), Contains("set_true_dynamics"));
  mopo::env::Hopper sim;
  oracle.set_true_dynamics(&sim);
  const auto stats = oracle.rollout();
  CHECK(stats.transitions > 0);
  CHECK(stats.mean_penalty > 0);
  // Hopper terminates in the model too: some random-action branches fall.
  CHECK(stats.mean_length <= 3.0);

  auto no_next = data;
  no_next.next_observations = torch::Tensor();
  CHECK_THROWS_AS(mopo::train::Mopo(cfg, no_next), mopo::DatasetError);
  auto bad = cfg;
  bad.real_ratio = 1.5;
  CHECK_THROWS_WITH(mopo::train::Mopo(bad, data), Contains("real_ratio"));
  CHECK_THROWS_WITH(mopo::train::Mopo(cfg, data).rollout(), Contains("no dynamics model"));
  CHECK_THROWS_AS(mopo::train::Mopo(cfg, data).load_checkpoint(fresh_dir("none")), mopo::IoError);
}

TEST_CASE("every shipped config in configs/ loads into MopoConfig", "[integration][config]") {
  int n = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(MOPO_TEST_SOURCE_DIR) / ".." / "configs")) {
    if (entry.path().extension() != ".json") continue;
    INFO(entry.path());
    const auto cfg = mopo::config::load_file<mopo::train::MopoConfig>(entry.path());
    CHECK(cfg.lambda >= 0);
    CHECK(cfg.rollout.horizon >= 1);
    CHECK(mopo::env::termination_fn(cfg.task) != nullptr);
    ++n;
  }
  CHECK(n >= 15);  // 12 D4RL settings, 2 OOD tasks, the quick start
}
