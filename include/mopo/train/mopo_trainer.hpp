/// @file mopo_trainer.hpp
/// @brief MopoTrainer<Penalty>: MOPO's Algorithm 2 (Yu et al. 2020) on an offline dataset.
///
/// @code{.bib}
/// @inproceedings{yu2020mopo,
///   title     = {{MOPO}: Model-based Offline Policy Optimization},
///   author    = {Yu, Tianhe and Thomas, Garrett and Yu, Lantao and Ermon, Stefano and Zou, James and
///                Levine, Sergey and Finn, Chelsea and Ma, Tengyu},
///   booktitle = {NeurIPS}, year = {2020}}
/// @endcode
///
/// Algorithm 2, line by line (docs/algorithm.md has the full mapping):
///  1. train the ensemble on D_env                          → train_model() (or set_model())
///  2. for epoch = 1…N:
///  3.   every `rollout_freq` SAC steps, sample `rollout_batch` start states from D_env  → rollout()
///  4-8.   roll out h steps in the model with the current policy, r̃ = r̂ − λ·u(s,a),
///         store in D_model (the RolloutBuffer keeps the last `retain_epochs` rollouts)
///  9.   SAC updates on batches of `real_ratio` D_env + (1 − real_ratio) D_model  → train_epoch()
/// Evaluation (10 deterministic episodes in the real task) and checkpoints happen between epochs.
///
/// Baselines are configurations of the same trainer: MBPO = MopoTrainer<penalty::NoPenalty>;
/// "MBPO no ens." = `ensemble.ensemble_size = num_elites = 1`; offline SAC = `real_only = true`;
/// behaviour cloning = `behavior_cloning = true` (the actor regresses the dataset actions, no model).
///
/// Length: ~470 lines, the trainer class itself; its options (mopo_config.hpp) and checkpoint files
/// (mopo_checkpoint.hpp) are apart.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/config/json_config.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/json_text.hpp"
#include "mopo/core/metrics.hpp"
#include "mopo/core/random.hpp"
#include "mopo/core/runtime.hpp"
#include "mopo/core/types.hpp"
#include "mopo/data/transition_dataset.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/env/scores.hpp"
#include "mopo/env/task.hpp"
#include "mopo/env/termination.hpp"
#include "mopo/env/true_dynamics.hpp"
#include "mopo/models/gaussian_ensemble.hpp"
#include "mopo/penalty/penalties.hpp"
#include "mopo/rollout/model_rollout.hpp"
#include "mopo/rollout/replay_buffer.hpp"
#include "mopo/rollout/rollout_buffer.hpp"
#include "mopo/train/evaluate.hpp"
#include "mopo/train/mopo_checkpoint.hpp"
#include "mopo/train/mopo_config.hpp"

namespace mopo::train {

namespace detail {
/// Sets LibTorch's intra-op thread count for a scope (capped by the hardware threads; 0 = no change).
class ScopedIntraOpThreads {
 public:
  explicit ScopedIntraOpThreads(int64_t wanted) : previous_(at::get_num_threads()) {
    const auto hw = static_cast<int64_t>(std::max(1U, std::thread::hardware_concurrency()));
    const int64_t n = std::min(wanted, hw);
    if (n > 0 && n != previous_) {
      at::set_num_threads(static_cast<int>(n));
      changed_ = true;
    }
  }
  ~ScopedIntraOpThreads() {
    if (changed_) at::set_num_threads(static_cast<int>(previous_));
  }
  ScopedIntraOpThreads(const ScopedIntraOpThreads&) = delete;
  ScopedIntraOpThreads& operator=(const ScopedIntraOpThreads&) = delete;

 private:
  int64_t previous_;
  bool changed_ = false;
};
}  // namespace detail

/// What fit() reports for each epoch (also written as one CSV/JSONL row).
struct MopoEpochResult {
  int64_t epoch = 0;
  Metrics metrics;
  std::optional<EvalResult> eval;
  double normalized_score = std::numeric_limits<double>::quiet_NaN();  ///< D4RL score ×100, if known
};

/// Optional hooks.
struct MopoCallbacks {
  std::function<void(const MopoEpochResult&)> on_epoch;
  std::function<void(int64_t step, int64_t total)> on_step;  ///< progress inside an epoch
};

/// MOPO's trainer. @tparam PenaltyT the uncertainty penalty strategy (penalty::MaxStd by default).
template <class PenaltyT = penalty::MaxStd>
class MopoTrainer {
  static_assert(
      penalty::is_penalty_v<PenaltyT>,
      "MopoTrainer<PenaltyT>: PenaltyT must satisfy the penalty concept; see docs/concepts.md#penalty");

 public:
  /// A task the registry knows, named by `config.task` (env::task: its termination function and D4RL
  /// reference scores; evaluation takes the environment given to fit()).
  /// @param dataset transitions with next_observations (qlearning_dataset() output).
  /// @throws ConfigError for invalid settings (before anything is built), ValueError for an unknown task,
  /// DatasetError if the dataset is empty or lacks next_observations.
  MopoTrainer(MopoConfig config, data::TransitionDataset dataset, PenaltyT strategy = PenaltyT{})
      : MopoTrainer(std::move(config), std::move(dataset), std::nullopt, std::move(strategy)) {}

  /// Any task, the registry's (env::task, env::make_task) or one's own (env::Task filled in by hand;
  /// docs/concepts.md#task): rollouts end by `task.termination`, fit() without an environment evaluates in
  /// `task.make_env()`, scores are normalised with `task.reference` when it has one. `config.task` is
  /// replaced by `task.name` (configs and checkpoints record it).
  /// @throws ConfigError for invalid settings or an invalid task (before anything is built), DatasetError
  /// if the dataset is empty or lacks next_observations.
  MopoTrainer(MopoConfig config, data::TransitionDataset dataset, env::Task task,
              PenaltyT strategy = PenaltyT{})
      : MopoTrainer(std::move(config), std::move(dataset), std::optional<env::Task>(std::move(task)),
                    std::move(strategy)) {}

  MopoTrainer(const MopoTrainer&) = delete;
  MopoTrainer& operator=(const MopoTrainer&) = delete;

  /// Algorithm 2 line 1: trains the ensemble on (s, a) → [Δs, r] from the dataset.
  /// With a non-empty `metrics_csv`, every model epoch is also a row there (train loss, holdout MSE
  /// mean and per member, epochs since the last improvement, seconds), written as it happens.
  models::EnsembleFitReport train_model(const models::GaussianEnsemble::EpochCallback& on_epoch = {},
                                        const std::filesystem::path& metrics_csv = {}) {
    RandomState model_rng = rng_.spawn(1);
    std::optional<CsvWriter> csv;
    if (!metrics_csv.empty()) csv.emplace(metrics_csv);
    auto log = [&](const models::EnsembleEpoch& e) {
      if (csv) csv->write(e.to_metrics());
      if (on_epoch) on_epoch(e);
    };
    auto report = model_.fit(dataset_.observations, dataset_.actions, dataset_.next_observations,
                             dataset_.rewards, config_.model_training, &model_rng, log);
    model_ready_ = true;
    return report;
  }

  /// Uses a trained (e.g. loaded) ensemble instead of training one.
  /// @throws ShapeError when its dims or member count differ from the dataset's / config.ensemble's.
  void set_model(models::GaussianEnsemble model) {
    if (model.ensemble_size() != config_.ensemble.ensemble_size) {
      throw ShapeError("MopoTrainer::set_model: the model has " + std::to_string(model.ensemble_size()) +
                       " members, config ensemble.ensemble_size is " +
                       std::to_string(config_.ensemble.ensemble_size));
    }
    if (model.obs_dim() != dataset_.observation_dim() || model.act_dim() != dataset_.action_dim()) {
      throw ShapeError("MopoTrainer::set_model: model dims (obs " + std::to_string(model.obs_dim()) +
                       ", act " + std::to_string(model.act_dim()) + ") differ from the dataset's (obs " +
                       std::to_string(dataset_.observation_dim()) + ", act " +
                       std::to_string(dataset_.action_dim()) + ")");
    }
    model_ = std::move(model);
    model_ready_ = true;
  }

  /// The simulator oracle needed by oracle penalties (penalty::TrueError). Not owned.
  void set_true_dynamics(env::TrueDynamics* oracle) { oracle_ = oracle; }
  /// Replaces the task's termination function.
  void set_termination(env::TerminationFn fn) {
    if (!fn) throw ValueError("MopoTrainer::set_termination: empty function");
    task_.termination = std::move(fn);
  }
  /// The task: name, termination function, evaluation environment factory, reference scores.
  [[nodiscard]] const env::Task& task() const { return task_; }

  /// Lines 3-8: one rollout from `rollout_batch` dataset states into a new epoch of D_model.
  rollout::RolloutStats rollout() {
    require_model("MopoTrainer::rollout");
    const detail::ScopedIntraOpThreads threads(config_.rollout_threads);
    const auto idx = rng_.randint(dataset_.size(), config_.rollout.rollout_batch);
    const auto start = dataset_.observations.index_select(0, idx);
    buffer_.begin_epoch();
    auto policy = [this](const torch::Tensor& obs) { return agent_.act(obs, /*deterministic=*/false); };
    auto truth = [this](const torch::Tensor& obs, const torch::Tensor& act) {
      if (oracle_ == nullptr) {
        throw ValueError(std::string("penalty ") + std::string(PenaltyT::kName) +
                         " needs the simulator: call MopoTrainer::set_true_dynamics() first");
      }
      const auto t = oracle_->true_step(obs, act);
      return penalty::GroundTruth{t.next_observations, t.rewards};
    };
    const auto stats = rollout_.run(model_, start, policy, task_.termination, truth, buffer_, rng_);
    if (stats.nonfinite > 0 && config_.nonfinite_model_rows == "stop") {
      throw DivergenceError("epoch " + std::to_string(epoch_ + 1) + ", SAC step " +
                            std::to_string(total_steps_) + ": the model predicted NaN/Inf for " +
                            std::to_string(stats.nonfinite) + " rollout rows (of " +
                            std::to_string(stats.starts) +
                            " starts); set nonfinite_model_rows = \"drop\" to leave such rows out");
    }
    return stats;
  }

  /// One SAC batch: ⌊B·real_ratio⌋ rows from D_env, the rest from D_model (all from D_env if real_only).
  Batch sample_batch() {
    const int64_t b = config_.sac.batch_size;
    if (config_.real_only) return dataset_.sample(b, rng_);
    return rollout::sample_mixed(dataset_, buffer_, b, config_.real_ratio, rng_);
  }

  /// Line 9: `steps_per_epoch` SAC updates, rolling out every `rollout_freq` steps.
  /// Returns the epoch's mean SAC metrics and the last rollout's statistics (prefixed "rollout/").
  Metrics train_epoch(const MopoCallbacks& callbacks = {}) {
    if (config_.uses_model()) require_model("MopoTrainer::train_epoch");
    Metrics out;
    std::vector<std::pair<std::string, double>> sums;
    for (int64_t i = 0; i < config_.steps_per_epoch; ++i) {
      if (config_.uses_model() && total_steps_ % config_.rollout_freq == 0) {
        const auto t0 = std::chrono::steady_clock::now();
        last_rollout_ = rollout();
        rollout_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
      const auto m =
          config_.behavior_cloning
              ? Metrics().set("bc_loss",
                              agent_.behavior_cloning_update(dataset_.sample(config_.sac.batch_size, rng_)))
              : agent_.update(sample_batch()).to_metrics();
      // Divergence: the update's losses, Q-values, α and entropy are already on the host; one NaN/Inf
      // stops training before this epoch's checkpoint, so the last one on disk stays the last good state.
      for (const auto& x : m) {
        if (!std::isfinite(x.value)) {
          throw DivergenceError(
              "epoch " + std::to_string(epoch_ + 1) + ", SAC step " + std::to_string(total_steps_ + 1) +
              " (update " + std::to_string(i + 1) + " of the epoch): sac/" + x.name + " = " +
              mopo::detail::format_number(x.value) + "; the last checkpoint is the last good state");
        }
      }
      if (sums.empty()) {
        for (const auto& x : m) sums.emplace_back(x.name, 0.0);
      }
      std::size_t k = 0;
      for (const auto& x : m) sums[k++].second += x.value;
      ++total_steps_;
      if (callbacks.on_step) callbacks.on_step(i + 1, config_.steps_per_epoch);
    }
    ++epoch_;
    out.set("epoch", static_cast<double>(epoch_)).set("sac_steps", static_cast<double>(total_steps_));
    for (const auto& [name, sum] : sums)
      out.set("sac/" + name, sum / static_cast<double>(config_.steps_per_epoch));
    if (config_.uses_model()) {
      out.merge(last_rollout_.to_metrics(), "rollout/");
      out.set("rollout/seconds", rollout_seconds_);
      out.set("model_buffer/size", static_cast<double>(buffer_.size()));
    }
    return out;
  }

  /// Deterministic episodes of the current policy in the real task.
  template <class EnvT>
  EvalResult evaluate(EnvT& env, int64_t episodes) {
    RandomState eval_rng = rng_.spawn(1000 + static_cast<uint64_t>(epoch_));
    auto r = train::evaluate(env, agent_, episodes, eval_rng);
    r.step = total_steps_;
    return r;
  }

  /// Runs the remaining epochs (from epoch() to config.epochs): train, evaluate on `eval_env` (may be
  /// null), write metrics rows to `out_dir`/metrics.{csv,jsonl} and checkpoints to `out_dir`/checkpoint
  /// (when out_dir is non-empty). Trains the model first if none was set (logging its epochs to
  /// `out_dir`/model_metrics.csv).
  template <class EnvT = env::Environment, std::enable_if_t<env::is_environment_v<EnvT>, int> = 0>
  std::vector<MopoEpochResult> fit(EnvT* eval_env, const std::filesystem::path& out_dir = {},
                                   const MopoCallbacks& callbacks = {}) {
    if (config_.uses_model() && !model_ready_)
      train_model({}, out_dir.empty() ? out_dir : out_dir / "model_metrics.csv");
    std::optional<CsvWriter> csv;
    std::optional<JsonlWriter> jsonl;
    if (!out_dir.empty()) {
      // Resuming: rows of epochs after the checkpoint (written before a crash) are redone, so drop them.
      if (epoch_ > 0) {
        keep_log_rows_through(out_dir / "metrics.csv", "epoch", static_cast<double>(epoch_));
        keep_log_rows_through(out_dir / "metrics.jsonl", "epoch", static_cast<double>(epoch_));
      }
      csv.emplace(out_dir / "metrics.csv", /*append=*/epoch_ > 0);
      jsonl.emplace(out_dir / "metrics.jsonl", /*append=*/epoch_ > 0);
    }
    std::vector<MopoEpochResult> results;
    while (epoch_ < config_.epochs) {
      const auto t0 = std::chrono::steady_clock::now();
      MopoEpochResult r;
      r.metrics = train_epoch(callbacks);
      r.epoch = epoch_;
      const bool eval_now = eval_env != nullptr && config_.eval_episodes > 0 &&
                            (epoch_ % config_.eval_every == 0 || epoch_ == config_.epochs);
      // Every row has the same columns (CSV): NaN where this epoch was not evaluated.
      const double nan = std::numeric_limits<double>::quiet_NaN();
      r.metrics.set("eval/return_mean", nan).set("eval/return_std", nan).set("eval/length_mean", nan);
      if (eval_now) {
        r.eval = evaluate(*eval_env, config_.eval_episodes);
        r.metrics.set("eval/return_mean", r.eval->return_mean).set("eval/return_std", r.eval->return_std);
        r.metrics.set("eval/length_mean", r.eval->length_mean);
        if (task_.reference) r.normalized_score = task_.normalized_score_percent(r.eval->return_mean);
      }
      r.metrics.set("eval/normalized_score", r.normalized_score);
      r.metrics.set("epoch_seconds",
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      // Rows first, then the checkpoint: a crash between them leaves rows past the checkpoint, which the
      // resumed run drops (above) and writes again; the other order would lose the epoch's row.
      if (csv) csv->write(r.metrics);
      if (jsonl) jsonl->write(r.metrics);
      if (!out_dir.empty() && config_.checkpoint_every > 0 &&
          (epoch_ % config_.checkpoint_every == 0 || epoch_ == config_.epochs)) {
        save_checkpoint(out_dir / "checkpoint");
      }
      if (callbacks.on_epoch) callbacks.on_epoch(r);
      results.push_back(std::move(r));
    }
    return results;
  }

  /// fit() evaluating in an environment made by the task (`task().make_env()`, e.g. env::make_task's MuJoCo
  /// environment); without one, no evaluation.
  std::vector<MopoEpochResult> fit(const std::filesystem::path& out_dir = {},
                                   const MopoCallbacks& callbacks = {}) {
    std::unique_ptr<env::Environment> eval_env = task_.make_env ? task_.make_env() : nullptr;
    return fit<env::Environment>(eval_env.get(), out_dir, callbacks);
  }

  /// Writes everything needed to resume: agent, model, rollout buffer, RNG states, counters.
  /// Files go to `dir`/epoch-<k>/ and `dir`/latest.json is replaced last (atomically), so an
  /// interrupted save leaves the previous checkpoint usable.
  ///
  /// A failed write (disk full, read-only file system, …) throws IoError naming the file; the files of
  /// the new epoch written so far are removed again, latest.json and the checkpoint it names are untouched.
  void save_checkpoint(const std::filesystem::path& dir) const {
    namespace fs = std::filesystem;
    const std::string name = "epoch-" + std::to_string(epoch_);
    const fs::path sub = dir / name;
    std::error_code ec;
    const bool existed = fs::exists(sub, ec);
    fs::create_directories(sub, ec);
    if (ec) throw IoError(sub.string() + ": cannot create the checkpoint directory: " + ec.message());
    try {
      write_checkpoint_files(dir, name);
    } catch (...) {
      if (!existed) fs::remove_all(sub, ec);  // never a directory latest.json may name
      throw;
    }
    detail::remove_stale_checkpoints(dir, name);
  }

  /// Restores a checkpoint written by save_checkpoint(). @throws IoError naming the missing/bad file,
  /// ConfigError if it was written by another algorithm (penalty, task, baseline, ensemble size).
  void load_checkpoint(const std::filesystem::path& dir) {
    const auto latest_file = dir / "latest.json";
    const auto index = detail::read_checkpoint_index(config::load_json_file(latest_file), latest_file,
                                                     config_, std::string(PenaltyT::kName));
    const auto sub = dir / index.dir;
    agent_.load(sub / "agent.pt");
    if (index.model) set_model(models::GaussianEnsemble::load(sub / "model.pt"));
    const auto trainer_file = sub / "trainer.pt";
    if (!std::filesystem::exists(trainer_file)) throw IoError(trainer_file.string() + ": no such file");
    torch::serialize::InputArchive archive;
    detail::load_trainer_archive(archive, trainer_file.string());
    const auto state = detail::read_trainer_state(archive, buffer_, rng_, trainer_file.string());
    if (state.epoch != index.epoch) {
      throw IoError(trainer_file.string() + ": epoch " + std::to_string(state.epoch) + " but " +
                    latest_file.string() + " names epoch " + std::to_string(index.epoch));
    }
    epoch_ = state.epoch;
    total_steps_ = state.total_steps;
    last_rollout_ = state.last_rollout;
    rollout_seconds_ = state.rollout_seconds;
  }

  [[nodiscard]] const MopoConfig& config() const { return config_; }
  [[nodiscard]] int64_t epoch() const { return epoch_; }
  [[nodiscard]] int64_t total_steps() const { return total_steps_; }
  agents::SACAgent& agent() { return agent_; }
  models::GaussianEnsemble& model() { return model_; }
  [[nodiscard]] const rollout::RolloutBuffer& model_buffer() const { return buffer_; }
  [[nodiscard]] const data::TransitionDataset& dataset() const { return dataset_; }
  [[nodiscard]] const rollout::RolloutStats& last_rollout() const { return last_rollout_; }

 private:
  // The constructors' common part. The config (and task) are checked first, as config_ is the first member:
  // a bad setting is a ConfigError naming it, not an error of a member built from it.
  MopoTrainer(MopoConfig&& config, data::TransitionDataset&& dataset, std::optional<env::Task> task,
              PenaltyT&& strategy)
      : config_(checked_config(std::move(config), task)),
        task_(task ? std::move(*task)
                   : env::task(config_.task, config_.hopper_original_termination
                                                 ? env::HopperTermination::kOriginalOneSided
                                                 : env::HopperTermination::kCorrected)),
        dataset_(std::move(dataset)),
        rng_(config_.seed),
        agent_(checked_dims(dataset_).first, checked_dims(dataset_).second, config_.sac, config_.seed),
        model_(make_model(config_, dataset_)),
        rollout_(config_.lambda, config_.rollout, std::move(strategy)),
        // The model-free baselines never fill D_model: a one-row buffer instead of retain·batch·h rows.
        buffer_(config_.uses_model() ? config_.retain_epochs : 1,
                config_.uses_model() ? config_.rollout.rollout_batch * config_.rollout.horizon : 1,
                dataset_.observation_dim(), dataset_.action_dim()) {}

  static MopoConfig checked_config(MopoConfig&& config, const std::optional<env::Task>& task) {
    if (task) {
      task->validate();
      config.task = task->name;
    }
    config.validate();
    return std::move(config);
  }

  // The files of one checkpoint, latest.json last (save_checkpoint()).
  void write_checkpoint_files(const std::filesystem::path& dir, const std::string& name) const {
    const std::filesystem::path sub = dir / name;
    agent_.save(sub / "agent.pt");
    if (model_ready_) model_.save(sub / "model.pt");
    detail::write_trainer_state(sub / "trainer.pt",
                                TrainerState{epoch_, total_steps_, last_rollout_, rollout_seconds_}, rng_,
                                buffer_);
    nlohmann::json latest = {{"epoch", epoch_},
                             {"dir", name},
                             {"model", model_ready_},
                             {"penalty", std::string(PenaltyT::kName)},
                             {"config", config::to_json(config_)}};
    atomic_write(dir / "latest.json", json_text(latest));
  }
  static std::pair<int64_t, int64_t> checked_dims(const data::TransitionDataset& d) {
    if (d.size() == 0) throw DatasetError("MopoTrainer: the dataset is empty");
    if (!d.has_next_observations()) {
      throw DatasetError("MopoTrainer: the dataset has no next_observations (apply qlearning_dataset first)");
    }
    return {d.observation_dim(), d.action_dim()};
  }
  // Module initialisers draw from LibTorch's global generator: seed it from the config first, so the
  // same seed gives the same initial ensemble whatever ran before in the process.
  static models::GaussianEnsemble make_model(const MopoConfig& config, const data::TransitionDataset& d) {
    RandomState(config.seed).spawn(2).seed_global();
    return models::GaussianEnsemble(d.observation_dim(), d.action_dim(), config.ensemble);
  }
  void require_model(const char* what) const {
    if (!model_ready_)
      throw ValueError(std::string(what) + ": no dynamics model (call train_model() or set_model())");
  }

  MopoConfig config_;
  env::Task task_;
  data::TransitionDataset dataset_;
  mutable RandomState rng_;  // mutable: save_checkpoint() reads the engine state
  agents::SACAgent agent_;
  models::GaussianEnsemble model_;
  rollout::ModelRollout<PenaltyT> rollout_;
  rollout::RolloutBuffer buffer_;
  env::TrueDynamics* oracle_ = nullptr;
  bool model_ready_ = false;
  int64_t epoch_ = 0;
  int64_t total_steps_ = 0;
  rollout::RolloutStats last_rollout_;
  double rollout_seconds_ = 0;
};

/// MOPO with the paper's default penalty.
using Mopo = MopoTrainer<>;
/// MBPO on offline data (u ≡ 0).
using Mbpo = MopoTrainer<penalty::NoPenalty>;

}  // namespace mopo::train
