// train_mopo: MOPO (or MBPO / MBPO without ensemble / offline SAC / behaviour cloning) on a
// D4RL-layout HDF5 dataset.
//
//   train_mopo --task halfcheetah --dataset data/halfcheetah-mixed.hdf5 --config
//   configs/halfcheetah-mixed.json
//              --penalty max_std --seed 0 --epochs 100 --out runs/hc-mixed [--resume] [--set
//              sac.actor_lr=1e-4]
//   train_mopo ... --algo mbpo | mbpo-no-ens | offline-sac | bc      (the paper's baselines)
//
// The library does the work (mopo/train/mopo_trainer.hpp); this file maps flags to MopoConfig and
// picks the penalty strategy by name (the only run-time choice; the compute path is static).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include <mopo/config/json_config.hpp>
#include <mopo/core/json_text.hpp>
#include <mopo/core/progress.hpp>
#include <mopo/core/runtime.hpp>
#include <mopo/data/d4rl_hdf5.hpp>
#include <mopo/env/registry.hpp>
#include <mopo/penalty/penalties.hpp>
#include <mopo/train/mopo_trainer.hpp>
#include <mopo/train/run_summary.hpp>

#include "common/cli.hpp"

namespace fs = std::filesystem;

namespace {
std::string fmt(double v, int digits = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// The summary a user reads at the end; also written to <out>/summary.json.
void print_summary(const fs::path& out, const std::string& method, const std::string& dataset, int64_t rows,
                   int64_t episodes, double data_score, const std::string& word,
                   const std::string& model_file) {
  const auto s = mopo::train::summarize_metrics(out / "metrics.jsonl");
  nlohmann::json j = {
      {"method", method},
      {"dataset",
       {{"file", dataset}, {"transitions", rows}, {"episodes", episodes}, {"behaviour_" + word, data_score}}},
      {"policy",
       {{"column", s.column},
        {"epochs", s.epochs},
        {"evaluations", s.evaluations},
        {"final", s.final_score},
        {"final_epoch", s.final_epoch},
        {"best", s.best_score},
        {"best_epoch", s.best_epoch},
        {"last5_mean", s.recent_mean},
        {"seconds", s.seconds}}}};
  std::cout << "== summary (" << (out / "summary.json").string() << ")\n"
            << "  dataset  " << dataset << ": " << rows << " transitions, " << episodes
            << " episodes, behaviour " << word << " " << fmt(data_score) << "\n";
  if (fs::exists(out / "model_report.json")) {
    const auto m = mopo::config::load_json_file(out / "model_report.json");
    j["model"] = m;
    std::cout << "  model    " << m["epochs"] << " epochs in " << fmt(m["seconds"].get<double>(), 0)
              << " s, stopped by " << m["stop"].get<std::string>() << "; elite holdout MSE "
              << fmt(m["elite_holdout_mse"].get<double>(), 4) << " (Δobs "
              << fmt(m["elite_holdout_mse_obs"].get<double>(), 4) << ", reward "
              << fmt(m["elite_holdout_mse_reward"].get<double>(), 4) << ")\n";
  } else if (!model_file.empty()) {
    std::cout << "  model    loaded from " << model_file << "\n";
  }
  if (s.evaluations == 0) {
    std::cout << "  " << method << ": " << s.epochs << " epochs, no evaluation\n";
  } else {
    std::cout << "  " << method << " " << s.epochs << " epochs in " << fmt(s.seconds / 60.0) << " min: final "
              << word << " " << fmt(s.final_score) << " (epoch " << s.final_epoch << "), best "
              << fmt(s.best_score) << " (epoch " << s.best_epoch << "), mean of the last " << s.recent
              << " evaluations " << fmt(s.recent_mean) << "\n";
    const double margin = s.final_score - data_score;
    j["beat_data_by"] = margin;
    std::cout << "  result   the final policy " << (margin > 0 ? "beat" : "did not beat")
              << " the data: " << fmt(s.final_score) << " vs " << fmt(data_score) << " ("
              << (margin >= 0 ? "+" : "") << fmt(margin) << ")\n";
  }
  mopo::atomic_write(out / "summary.json", mopo::json_text(j));
}
}  // namespace

int main(int argc, char** argv) {
  mopo::configure_process();
  std::cout << std::unitbuf;  // progress reaches pipes and log files as it happens
  CLI::App app{"MOPO: model-based offline policy optimisation"};
  std::string task, dataset, config_file, penalty = "max_std", out = "runs/mopo", algo = "mopo", model;
  std::vector<std::string> overrides;
  uint64_t seed = 0;
  int64_t epochs = -1;
  bool resume = false;
  app.add_option("--task", task,
                 "task name (halfcheetah, hopper, walker2d, ant, halfcheetah-jump, ant-angle-45, hiv)")
      ->required();
  app.add_option("--dataset", dataset, "D4RL-layout HDF5 file")->required()->check(CLI::ExistingFile);
  app.add_option("--config", config_file, "JSON file with MopoConfig keys (configs/*.json)");
  auto* penalty_opt = app.add_option("--penalty", penalty,
                                     "max_std | max_cov_norm | mean_std | disagreement | true_error | "
                                     "no_penalty (= mbpo) | hard_threshold");
  app.add_option("--algo", algo,
                 "mopo (with --penalty) | mbpo (u = 0) | mbpo-no-ens (u = 0, one model) | offline-sac | bc")
      ->check(CLI::IsMember({"mopo", "mbpo", "mbpo-no-ens", "offline-sac", "bc"}));
  app.add_option("--seed", seed, "seed of everything")->check(mopo::examples::kNonNegative);
  app.add_option("--epochs", epochs, "policy epochs (overrides the config)")
      ->check(mopo::examples::kNonNegative);
  app.add_option("--out", out, "output directory (metrics.csv, metrics.jsonl, checkpoint/)");
  app.add_flag("--resume", resume, "continue from <out>/checkpoint");
  app.add_option("--model", model, "trained ensemble to use instead of training one (e.g. <run>/model.pt)")
      ->check(CLI::ExistingFile);
  app.add_option("--set", overrides, "override a config key, e.g. --set sac.actor_lr=1e-4");
  return mopo::examples::run_cli("train_mopo", app, argc, argv, [&]() -> int {
    mopo::train::MopoConfig cfg;
    if (!config_file.empty()) cfg = mopo::config::load_file<mopo::train::MopoConfig>(config_file);
    cfg.task = task;
    cfg.seed = seed;
    if (epochs >= 0) cfg.epochs = epochs;
    // The baselines are configurations of the same trainer (docs/algorithm.md#baselines).
    if (algo == "mbpo" || algo == "mbpo-no-ens") penalty = "no_penalty";
    if (algo == "mbpo-no-ens") cfg.ensemble.ensemble_size = cfg.ensemble.num_elites = 1;
    cfg.real_only = cfg.real_only || algo == "offline-sac";
    cfg.behavior_cloning = cfg.behavior_cloning || algo == "bc";
    for (const auto& o : overrides) mopo::config::apply_override(cfg, o);
    if (algo != "mopo" && penalty_opt->count() > 0)
      throw mopo::ConfigError("--penalty: only with --algo mopo");
    if (!model.empty() && (!cfg.uses_model() || resume))
      throw mopo::ConfigError(
          "--model: only for model-based runs (mopo, mbpo, mbpo-no-ens) without --resume");

    // The task first: a dataset or model of another task is refused before anything is trained.
    auto eval_env = mopo::env::make(task);
    auto oracle_env = mopo::env::make(task);
    mopo::data::D4rlReadOptions read;
    read.observation_dim = eval_env->observation_dim();
    read.action_dim = eval_env->action_dim();
    read.task = task;
    const auto raw = mopo::data::load_d4rl_hdf5(dataset, read);
    mopo::data::QLearningOptions q;
    q.use_next_observations = raw.has_next_observations();  // exact s' at terminals for the model
    const auto data = mopo::data::qlearning_dataset(raw, q);
    const auto stats = raw.episode_stats();
    const bool has_ref = mopo::env::d4rl_reference_scores(task).has_value();
    const double data_score =
        has_ref ? mopo::env::normalized_score_percent(task, stats.mean_return) : stats.mean_return;
    const std::string score_word = has_ref ? "score" : "return";
    std::cout << "dataset " << dataset << ": " << data.size() << " transitions, " << stats.count
              << " episodes, behaviour return " << fmt(stats.mean_return)
              << (has_ref ? ", score " + fmt(data_score) : "") << "\n";
    // The data's score, the horizontal line of the run's plots (scripts/plot_curves.py --baseline).
    std::error_code ec;
    fs::create_directories(out, ec);
    if (ec) throw mopo::IoError(out + ": cannot create the output directory: " + ec.message());
    mopo::atomic_write(fs::path(out) / "dataset.csv",
                       "dataset,transitions,episodes,behaviour_return,behaviour_score\n" +
                           mopo::detail::csv_field(dataset) + "," + std::to_string(data.size()) + "," +
                           std::to_string(stats.count) + "," +
                           mopo::detail::format_number(stats.mean_return) + "," +
                           (has_ref ? mopo::detail::format_number(data_score) : "nan") + "\n");

    return mopo::penalty::dispatch(penalty, [&](auto strategy) {
      using P = decltype(strategy);
      mopo::train::MopoTrainer<P> trainer(cfg, data, strategy);
      if constexpr (mopo::penalty::needs_ground_truth_v<P>) {
        auto* oracle = dynamic_cast<mopo::env::TrueDynamics*>(oracle_env.get());
        if (oracle == nullptr)
          throw mopo::ValueError("task " + task + " cannot restore states from observations");
        trainer.set_true_dynamics(oracle);
      }
      const fs::path old_report = fs::path(out) / "model_report.json";  // a new run: no stale model facts
      if (!resume && fs::exists(old_report, ec) && !fs::remove(old_report, ec))
        throw mopo::IoError(old_report.string() + ": cannot remove: " + ec.message());
      if (resume) {
        trainer.load_checkpoint(fs::path(out) / "checkpoint");
        std::cout << "resumed at epoch " << trainer.epoch() << "\n";  // (settings checked against it)
      } else if (cfg.uses_model() && !model.empty()) {
        auto ensemble = mopo::models::GaussianEnsemble::load(model);
        if (ensemble.obs_dim() != read.observation_dim || ensemble.act_dim() != read.action_dim) {
          throw mopo::ShapeError(model + ": the ensemble was trained for obs " +
                                 std::to_string(ensemble.obs_dim()) + ", act " +
                                 std::to_string(ensemble.act_dim()) + "; task " + task + " has obs " +
                                 std::to_string(read.observation_dim) + ", act " +
                                 std::to_string(read.action_dim) + " (a model of another task?)");
        }
        if (ensemble.ensemble_size() != cfg.ensemble.ensemble_size) {
          throw mopo::ShapeError(model + ": the ensemble has " + std::to_string(ensemble.ensemble_size()) +
                                 " members, the config's ensemble.ensemble_size is " +
                                 std::to_string(cfg.ensemble.ensemble_size));
        }
        trainer.set_model(std::move(ensemble));
        std::cout << "dynamics ensemble loaded from " << model << "\n";
      } else if (cfg.uses_model()) {
        std::cout << "training the dynamics ensemble (" << cfg.ensemble.ensemble_size
                  << " members; every epoch in " << (fs::path(out) / "model_metrics.csv").string()
                  << ")...\n";
        const auto report = trainer.train_model(
            [](const mopo::models::EnsembleEpoch& e) {
              if (e.epoch % 10 != 0) return;
              const auto m = e.to_metrics();
              std::cout << "  model epoch " << e.epoch << ": loss " << fmt(e.train_loss, 3)
                        << ", holdout MSE " << fmt(m.at("holdout_mse"), 4) << ", " << e.epochs_since_update
                        << " epochs since an improvement, " << fmt(e.seconds, 0) << " s\n";
            },
            fs::path(out) / "model_metrics.csv");
        const std::string stop = mopo::train::describe_stop(report, cfg.model_training);
        const nlohmann::json mj = mopo::train::model_report_json(report, cfg.model_training);
        std::cout << "  stopped by " << stop << " after " << report.epochs() << " epochs, "
                  << fmt(report.seconds, 0) << " s; elite holdout MSE " << fmt(mj["elite_holdout_mse"], 4)
                  << " (Δobs " << fmt(mj["elite_holdout_mse_obs"], 4) << ", reward "
                  << fmt(mj["elite_holdout_mse_reward"], 4) << "); saved to "
                  << (fs::path(out) / "model.pt").string() << "\n";
        trainer.model().save(fs::path(out) / "model.pt");
        mopo::atomic_write(fs::path(out) / "model_report.json", mopo::json_text(mj));
      }
      mopo::config::save_file(fs::path(out) / "config.json", cfg);
      mopo::ProgressBar bar(cfg.epochs - trainer.epoch(), algo == "mopo" ? std::string(P::kName) : algo);
      const int64_t first = trainer.epoch();
      mopo::train::MopoCallbacks cb;
      cb.on_epoch = [&](const mopo::train::MopoEpochResult& r) {
        const std::string eval = r.eval ? "return " + std::to_string(r.eval->return_mean) + " score " +
                                              std::to_string(r.normalized_score)
                                        : "no evaluation this epoch";
        const std::string penalty_text =
            r.metrics.contains("rollout/penalty")
                ? "penalty " + std::to_string(r.metrics.at("rollout/penalty")) + " | "
                : "";
        bar.update(r.epoch - first, penalty_text + eval);
      };
      trainer.fit(eval_env.get(), out, cb);
      bar.finish();
      print_summary(out, algo == "mopo" ? "MOPO (" + std::string(P::kName) + ")" : algo, dataset, data.size(),
                    stats.count, data_score, score_word, model);
      return 0;
    });
  });
}
