// custom_penalty: plug a user-defined uncertainty penalty into MOPO.
//
//   custom_penalty --task hopper --dataset data/zoo/hopper-mixed.hdf5 --epochs 5 --out runs/custom
//
// A penalty strategy is a small value type (the concept in docs/concepts.md#penalty): a name and
// u(s,a) = operator()(EnsemblePrediction) → [B], ≥ 0. This one penalises only the uncertainty of the
// predicted reward, the largest σ of the reward head over all members.
#include <CLI/CLI.hpp>

#include <iostream>

#include <mopo/core/runtime.hpp>
#include <mopo/data/d4rl_hdf5.hpp>
#include <mopo/env/registry.hpp>
#include <mopo/train/mopo_trainer.hpp>

struct MaxRewardStd {
  static constexpr std::string_view kName = "max_reward_std";
  // pred.std is [E, B, D]; the last column is the reward.
  torch::Tensor operator()(const mopo::models::EnsemblePrediction& pred) const {
    return std::get<0>(pred.std.select(2, pred.obs_dim()).max(0));
  }
};
static_assert(mopo::penalty::is_penalty_v<MaxRewardStd>, "MaxRewardStd must satisfy the penalty concept");

int main(int argc, char** argv) {
  mopo::configure_process();
  CLI::App app{"MOPO with a user-defined penalty"};
  std::string task = "hopper", dataset, out = "runs/custom_penalty";
  int64_t epochs = 5;
  double lambda = 1.0;
  app.add_option("--task", task);
  app.add_option("--dataset", dataset, "D4RL-layout HDF5 file")->required()->check(CLI::ExistingFile);
  app.add_option("--epochs", epochs);
  app.add_option("--lambda", lambda);
  app.add_option("--out", out);
  CLI11_PARSE(app, argc, argv);
  try {
    mopo::train::MopoConfig cfg;
    cfg.task = task;
    cfg.epochs = epochs;
    cfg.lambda = lambda;
    cfg.rollout.rollout_batch = 5000;
    cfg.model_training.max_seconds = 60;
    const auto data = mopo::data::qlearning_dataset(mopo::data::load_d4rl_hdf5(dataset));
    mopo::train::MopoTrainer<MaxRewardStd> trainer(cfg, data);
    auto env = mopo::env::make(task);
    mopo::train::MopoCallbacks callbacks;
    callbacks.on_epoch = [](const mopo::train::MopoEpochResult& r) {
      std::cout << "epoch " << r.epoch << ": " << r.metrics.to_string() << "\n";
    };
    trainer.fit(env.get(), out, callbacks);
  } catch (const mopo::Error& e) {
    std::cerr << "custom_penalty: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
