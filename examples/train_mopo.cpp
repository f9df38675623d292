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

#include <filesystem>
#include <iostream>

#include <mopo/core/json_config.hpp>
#include <mopo/core/progress.hpp>
#include <mopo/core/runtime.hpp>
#include <mopo/data/d4rl_hdf5.hpp>
#include <mopo/env/registry.hpp>
#include <mopo/penalty/penalties.hpp>
#include <mopo/train/mopo_trainer.hpp>

namespace fs = std::filesystem;

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
  app.add_option("--seed", seed, "seed of everything");
  app.add_option("--epochs", epochs, "policy epochs (overrides the config)");
  app.add_option("--out", out, "output directory (metrics.csv, metrics.jsonl, checkpoint/)");
  app.add_flag("--resume", resume, "continue from <out>/checkpoint");
  app.add_option("--model", model, "trained ensemble to use instead of training one (e.g. <run>/model.pt)")
      ->check(CLI::ExistingFile);
  app.add_option("--set", overrides, "override a config key, e.g. --set sac.actor_lr=1e-4");
  CLI11_PARSE(app, argc, argv);

  try {
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

    const auto raw = mopo::load_d4rl_hdf5(dataset);
    mopo::QLearningOptions q;
    q.use_next_observations = raw.has_next_observations();  // exact s' at terminals for the model
    const auto data = mopo::qlearning_dataset(raw, q);
    const auto stats = raw.episode_stats();
    std::cout << "dataset " << dataset << ": " << data.size() << " transitions, " << stats.count
              << " episodes, behaviour return " << stats.mean_return << "\n";

    auto eval_env = mopo::env::make(task);
    auto oracle_env = mopo::env::make(task);
    return mopo::penalty::dispatch(penalty, [&](auto strategy) {
      using P = decltype(strategy);
      mopo::train::MopoTrainer<P> trainer(cfg, data, strategy);
      if constexpr (mopo::penalty::needs_ground_truth_v<P>) {
        auto* oracle = dynamic_cast<mopo::env::TrueDynamics*>(oracle_env.get());
        if (oracle == nullptr)
          throw mopo::ValueError("task " + task + " cannot restore states from observations");
        trainer.set_true_dynamics(oracle);
      }
      if (resume) {
        trainer.load_checkpoint(fs::path(out) / "checkpoint");
        std::cout << "resumed at epoch " << trainer.epoch() << "\n";  // (settings checked against it)
      } else if (cfg.uses_model() && !model.empty()) {
        trainer.set_model(mopo::models::GaussianEnsemble::load(model));
        std::cout << "dynamics ensemble loaded from " << model << "\n";
      } else if (cfg.uses_model()) {
        std::cout << "training the dynamics ensemble (" << cfg.ensemble.ensemble_size << " members)...\n";
        const auto report = trainer.train_model([](const auto& e) {
          if (e.epoch % 10 == 0) std::cout << "  model epoch " << e.epoch << " loss " << e.train_loss << "\n";
        });
        std::cout << "  stopped: " << report.stop_reason << " after " << report.history.size() << " epochs, "
                  << report.seconds << " s; saved to " << (fs::path(out) / "model.pt").string() << "\n";
        trainer.model().save(fs::path(out) / "model.pt");
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
      const auto results = trainer.fit(eval_env.get(), out, cb);
      bar.finish();
      if (!results.empty() && results.back().eval) {
        std::cout << "final: return " << results.back().eval->return_mean << ", D4RL normalised score "
                  << results.back().normalized_score << " (behaviour data: "
                  << (mopo::env::d4rl_reference_scores(task)
                          ? mopo::env::normalized_score_percent(task, stats.mean_return)
                          : stats.mean_return)
                  << ")\n";
      }
      return 0;
    });
  } catch (const mopo::Error& e) {
    std::cerr << "train_mopo: " << e.what() << "\n";
    return 2;
  }
}
