/// @file sac_agent.hpp
/// @brief Soft Actor-Critic with twin Q critics, Polyak targets and a learned temperature.
///
/// @code{.bib}
/// @article{haarnoja2018sacapps,
///   title   = {Soft Actor-Critic Algorithms and Applications},
///   author  = {Haarnoja, Tuomas and Zhou, Aurick and Hartikainen, Kristian and Tucker, George and
///              Ha, Sehoon and Tan, Jie and Kumar, Vikash and Zhu, Henry and Gupta, Abhishek and
///              Abbeel, Pieter and Levine, Sergey},
///   journal = {arXiv:1812.05905}, year = {2018}}
/// @endcode
///
/// One update (SAC paper, Algorithm 1; equation numbers from arXiv 1812.05905), every loss evaluated from
/// the parameters as they were before the update (softlearning's one-`session.run` semantics, which MOPO's
/// code inherits; sac_fused_update.hpp lists exactly what each loss sees), then one Adam step each:
///   y      = r + γ (1 − d) [min_j Q̄_j(s', a') − α log π(a'|s')],  a' ~ π(·|s')          (eq. 3, 5)
///   L_Q    = Σ_j mean (Q_j(s, a) − y)²                                                     (eq. 5)
///   L_π    = mean [α log π(ã|s) − min_j Q_j(s, ã)],  ã ~ π(·|s) reparameterised             (eq. 7)
///   L_α    = −mean [log α · (log π(ã|s) + H̄)]                                              (eq. 18)
///   Q̄_j   ← (1 − τ) Q̄_j + τ Q_j
/// Actions live in [−1, 1]^A; the caller maps them to the environment's box.
/// d is 1 only for true terminal states; a time-limit truncation is stored with d = 0 (bootstraps).
///
/// Determinism: all randomness (initialisation, exploration noise, target/actor sampling) comes from
/// the agent's own RandomState seeded by the constructor; save()/load() include its state.
///
/// Length: ~630 lines, one concrete class (style.md: SACAgent is concrete, not a template) with its options,
/// act(), the update in both forms (reference autograd and fused) and save()/load() with shape checks; the
/// networks (sac_networks.hpp) and the fused kernels (sac_fused_update.hpp) are already apart.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "mopo/agents/sac_fused_update.hpp"
#include "mopo/agents/sac_networks.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/metrics.hpp"
#include "mopo/core/random.hpp"
#include "mopo/core/types.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/detail/torch_archive.hpp"

namespace mopo::agents {

/// SAC hyper-parameters. Defaults are the reference values of mopo-algorithm.md §8 (softlearning).
struct SACOptions {
  std::vector<int64_t> hidden = {256, 256};  ///< hidden layers of the actor and of each critic (ReLU)
  double actor_lr = 3e-4;                    ///< Adam learning rate of the actor (Kit: 1e-4)
  double critic_lr = 3e-4;                   ///< Adam learning rate of both critics
  double alpha_lr = 3e-4;                    ///< Adam learning rate of log α (Kit: 1e-4)
  double gamma = 0.99;                       ///< discount γ
  double tau = 5e-3;                         ///< Polyak rate τ of the target critics
  int64_t batch_size = 256;                  ///< minibatch size used by the trainers
  bool auto_alpha = true;                    ///< learn α (eq. 18); false keeps α = `alpha`
  double alpha = 1.0;                        ///< initial α (log α = 0 as in softlearning and the Kit)
  std::optional<double> target_entropy;      ///< H̄; empty → −|A| (Kit); MOPO's original code uses −3
  double log_std_min = -20.0;                ///< clamp of log σ (softlearning; Kit uses −5)
  double log_std_max = 2.0;
  std::string device = "cpu";  ///< "cpu" or "cuda[:N]" (when LibTorch has CUDA)
  /// How update() computes its gradients: "fused" (hand-written forward/backward on LibTorch GEMMs, flat
  /// Adam; CPU only, sac_fused_update.hpp) or "autograd" (LibTorch autograd and torch::optim::Adam, the
  /// reference the fused path is tested against; always used on CUDA). Both compute the same update.
  std::string update = "fused";
  /// Threads of one fused update (1 or 2; capped by the hardware's): the critic and the actor branch run at
  /// once. The result does not depend on it. Use 1 when other jobs share the cores (sweeps do).
  int64_t update_threads = 2;

  template <class V>
  void visit(V&& v) {
    v("hidden", hidden);
    v("actor_lr", actor_lr);
    v("critic_lr", critic_lr);
    v("alpha_lr", alpha_lr);
    v("gamma", gamma);
    v("tau", tau);
    v("batch_size", batch_size);
    v("auto_alpha", auto_alpha);
    v("alpha", alpha);
    v("target_entropy", target_entropy);
    v("log_std_min", log_std_min);
    v("log_std_max", log_std_max);
    v("device", device);
    v("update", update);
    v("update_threads", update_threads);
  }

  /// @throws ConfigError naming the key and the bad value.
  void validate() const {
    auto bad = [](const std::string& key, const std::string& why, double value) {
      std::ostringstream os;
      os << key << ": " << why << ", got " << value;
      throw ConfigError(os.str());
    };
    if (hidden.empty()) throw ConfigError("hidden: needs at least one layer");
    for (std::size_t i = 0; i < hidden.size(); ++i) {
      if (hidden[i] <= 0)
        bad("hidden[" + std::to_string(i) + "]", "must be > 0", static_cast<double>(hidden[i]));
    }
    if (!(actor_lr > 0) || !std::isfinite(actor_lr)) bad("actor_lr", "must be > 0", actor_lr);
    if (!(critic_lr > 0) || !std::isfinite(critic_lr)) bad("critic_lr", "must be > 0", critic_lr);
    if (!(alpha_lr >= 0) || !std::isfinite(alpha_lr)) bad("alpha_lr", "must be >= 0", alpha_lr);
    if (!(gamma >= 0 && gamma <= 1)) bad("gamma", "must be in [0, 1]", gamma);
    if (!(tau > 0 && tau <= 1)) bad("tau", "must be in (0, 1]", tau);
    if (batch_size <= 0) bad("batch_size", "must be > 0", static_cast<double>(batch_size));
    if (!(alpha > 0) || !std::isfinite(alpha)) bad("alpha", "must be > 0", alpha);
    if (target_entropy && !std::isfinite(*target_entropy))
      bad("target_entropy", "must be finite", *target_entropy);
    if (!(log_std_min < log_std_max)) bad("log_std_min", "must be < log_std_max", log_std_min);
    if (device.rfind("cpu", 0) != 0 && device.rfind("cuda", 0) != 0) {
      throw ConfigError("device: expected \"cpu\" or \"cuda[:N]\", got \"" + device + "\"");
    }
    if (update != "fused" && update != "autograd") {
      throw ConfigError("update: expected \"fused\" or \"autograd\", got \"" + update + "\"");
    }
    if (update_threads != 1 && update_threads != 2) {
      bad("update_threads", "must be 1 or 2", static_cast<double>(update_threads));
    }
  }
};

/// Scalars reported by one SACAgent::update (means over the batch).
struct SACUpdateMetrics {
  double critic_loss = 0;  ///< L_Q (sum over both critics)
  double actor_loss = 0;   ///< L_π
  double alpha_loss = 0;   ///< L_α (0 when α is fixed)
  double alpha = 0;        ///< α used in this update
  double q1 = 0;           ///< mean Q_1(s, a)
  double q2 = 0;           ///< mean Q_2(s, a)
  double q_target = 0;     ///< mean TD target y
  double entropy = 0;      ///< −mean log π(ã|s), a one-sample entropy estimate

  /// The same values as mopo::Metrics, in a fixed order, for metric writers.
  [[nodiscard]] Metrics to_metrics() const {
    return {{"critic_loss", critic_loss},
            {"actor_loss", actor_loss},
            {"alpha_loss", alpha_loss},
            {"alpha", alpha},
            {"q1", q1},
            {"q2", q2},
            {"q_target", q_target},
            {"entropy", entropy}};
  }
};

/// The pieces of the critic's TD target (exposed for tests and diagnostics).
struct CriticTarget {
  torch::Tensor target;         ///< y, [B]
  torch::Tensor next_actions;   ///< a' ~ π(·|s'), [B, A]
  torch::Tensor next_log_prob;  ///< log π(a'|s'), [B]
  torch::Tensor next_q;         ///< Q̄_1, Q̄_2 (s', a'), [2, B]
};

/// Soft Actor-Critic agent (concrete; see the file comment for the maths).
class SACAgent {
 public:
  /// @param obs_dim, act_dim sizes of s and a (> 0)
  /// @param seed seeds initialisation and every draw the agent makes
  /// @throws ConfigError for invalid options, ValueError for non-positive sizes.
  SACAgent(int64_t obs_dim, int64_t act_dim, SACOptions options = {}, uint64_t seed = 0)
      : options_(std::move(options)),
        obs_dim_(obs_dim),
        act_dim_(act_dim),
        rng_(seed),
        device_(parse_device(options_.device)) {
    options_.validate();
    if (obs_dim <= 0 || act_dim <= 0) {
      throw ValueError("SACAgent: obs_dim and act_dim must be > 0, got " + std::to_string(obs_dim) + " and " +
                       std::to_string(act_dim));
    }
    target_entropy_ = options_.target_entropy ? *options_.target_entropy : -static_cast<double>(act_dim);
    auto init = rng_.spawn(1);  // initialisation stream, independent of the sampling stream
    actor_ = SquashedGaussianActor(obs_dim, act_dim, options_.hidden, options_.log_std_min,
                                   options_.log_std_max, init.generator());
    critic_ = TwinQCritic(obs_dim, act_dim, options_.hidden, init.generator());
    target_critic_ = TwinQCritic(obs_dim, act_dim, options_.hidden, init.generator());
    {
      torch::NoGradGuard no_grad;
      const auto src = critic_->parameters();
      const auto dst = target_critic_->parameters();
      for (std::size_t i = 0; i < src.size(); ++i) dst[i].copy_(src[i]);
    }
    for (auto& p : target_critic_->parameters()) p.set_requires_grad(false);
    actor_->to(device_);
    critic_->to(device_);
    target_critic_->to(device_);
    log_alpha_ = torch::full({1}, std::log(options_.alpha), tensor_options()).set_requires_grad(true);
    actor_optimizer_ = std::make_unique<torch::optim::Adam>(actor_->parameters(),
                                                            torch::optim::AdamOptions(options_.actor_lr));
    critic_optimizer_ = std::make_unique<torch::optim::Adam>(critic_->parameters(),
                                                             torch::optim::AdamOptions(options_.critic_lr));
    alpha_optimizer_ = std::make_unique<torch::optim::Adam>(std::vector<torch::Tensor>{log_alpha_},
                                                            torch::optim::AdamOptions(options_.alpha_lr));
    if (options_.update == "fused" && device_.is_cpu()) {
      detail::FusedSACUpdate::Hyper h;
      h.gamma = options_.gamma;
      h.tau = options_.tau;
      h.target_entropy = target_entropy_;
      h.log_std_min = options_.log_std_min;
      h.log_std_max = options_.log_std_max;
      h.actor_lr = options_.actor_lr;
      h.critic_lr = options_.critic_lr;
      h.alpha_lr = options_.alpha_lr;
      h.auto_alpha = options_.auto_alpha;
      h.threads = std::min<int64_t>(options_.update_threads,
                                    static_cast<int64_t>(std::max(1U, std::thread::hardware_concurrency())));
      fused_ = std::make_unique<detail::FusedSACUpdate>(actor_, critic_, target_critic_, log_alpha_, h);
    }
  }

  SACAgent(const SACAgent&) = delete;
  SACAgent& operator=(const SACAgent&) = delete;
  SACAgent(SACAgent&&) = default;
  SACAgent& operator=(SACAgent&&) = default;
  ~SACAgent() = default;

  // ---- acting -------------------------------------------------------------------------------------

  /// Actions in [−1, 1] for observations [O] (→ [A]) or [B, O] (→ [B, A]); no autograd.
  /// `deterministic` returns tanh(μ(s)) (evaluation); otherwise samples from π with the agent's RNG.
  /// @throws ShapeError for a wrong observation size, ValueError for NaN/Inf.
  torch::Tensor act(const torch::Tensor& obs, bool deterministic = false) {
    if (!obs.defined() || (obs.dim() != 1 && obs.dim() != 2) || obs.size(-1) != obs_dim_) {
      throw ShapeError("SACAgent::act observation: expected shape [" + std::to_string(obs_dim_) +
                       "] or [*, " + std::to_string(obs_dim_) + "], got " + mopo::detail::describe(obs));
    }
    mopo::detail::check_finite(obs, "SACAgent::act observation");
    torch::NoGradGuard no_grad;
    const bool single = obs.dim() == 1;
    auto x = obs.to(tensor_options());
    if (single) x = x.unsqueeze(0);
    torch::Tensor a = deterministic ? actor_->mode(x) : actor_->sample(x, rng_.generator()).action;
    return single ? a.squeeze(0) : a;
  }

  /// One observation as doubles (as environments produce it) → one action in [−1, 1].
  /// On CPU this runs a lean path (preallocated buffers, matrix-vector products, no autograd) that
  /// computes the same function as act(Tensor); like every method of the agent it is not thread-safe.
  std::vector<double> act(const std::vector<double>& obs, bool deterministic = false) {
    if (static_cast<int64_t>(obs.size()) != obs_dim_) {
      throw ShapeError("SACAgent::act observation: expected " + std::to_string(obs_dim_) + " values, got " +
                       std::to_string(obs.size()));
    }
    for (std::size_t i = 0; i < obs.size(); ++i) {
      if (!std::isfinite(obs[i])) {
        throw ValueError("SACAgent::act observation: value at index " + std::to_string(i) + " is not finite");
      }
    }
    c10::InferenceMode guard;
    if (device_.type() != torch::kCPU) {
      auto x = torch::tensor(obs, torch::kFloat64).to(tensor_options()).unsqueeze(0);
      torch::Tensor a = deterministic ? actor_->mode(x) : actor_->sample(x, rng_.generator()).action;
      a = a.to(torch::kCPU, torch::kFloat64).contiguous();
      return std::vector<double>(a.data_ptr<double>(), a.data_ptr<double>() + act_dim_);
    }
    const auto& layers = actor_->layers();
    if (act_scratch_.size() != layers.size() + 1) {
      act_scratch_.clear();
      act_scratch_.push_back(torch::empty({obs_dim_}));
      for (const auto& l : layers) act_scratch_.push_back(torch::empty({l->weight.size(0)}));
    }
    float* in = act_scratch_[0].data_ptr<float>();
    for (int64_t i = 0; i < obs_dim_; ++i) in[i] = static_cast<float>(obs[static_cast<std::size_t>(i)]);
    for (std::size_t i = 0; i < layers.size(); ++i) {
      at::addmv_out(act_scratch_[i + 1], layers[i]->bias, layers[i]->weight, act_scratch_[i]);
      if (i + 1 < layers.size()) at::relu_(act_scratch_[i + 1]);
    }
    const float* out = act_scratch_.back().data_ptr<float>();  // [μ (A), log σ (A)]
    std::vector<double> action(static_cast<std::size_t>(act_dim_));
    if (deterministic) {
      for (int64_t j = 0; j < act_dim_; ++j) action[static_cast<std::size_t>(j)] = std::tanh(out[j]);
      return action;
    }
    const auto eps =
        at::normal(0.0, 1.0, {act_dim_}, rng_.generator(), torch::TensorOptions(torch::kFloat32));
    const float* e = eps.data_ptr<float>();
    for (int64_t j = 0; j < act_dim_; ++j) {
      const float log_std = std::clamp(out[act_dim_ + j], static_cast<float>(options_.log_std_min),
                                       static_cast<float>(options_.log_std_max));
      action[static_cast<std::size_t>(j)] = std::tanh(out[j] + std::exp(log_std) * e[j]);
    }
    return action;
  }

  // ---- learning -----------------------------------------------------------------------------------

  /// The TD target of eq. 5 for a batch (no gradient). Uses the current actor, α and target critics.
  CriticTarget critic_target(const Batch& batch) {
    torch::NoGradGuard no_grad;
    auto next = actor_->sample(batch.next_observations, rng_.generator());
    auto next_q = target_critic_->forward(batch.next_observations, next.action);
    // Clipped double-Q: the minimum of the two target critics (SAC paper §5).
    auto soft_v = std::get<0>(next_q.min(0)) - alpha_tensor() * next.log_prob;
    auto target = batch.rewards + options_.gamma * (1.0 - batch.terminals) * soft_v;
    return {target, next.action, next.log_prob, next_q};
  }

  /// One gradient step of the critics, the actor and α from the same parameters, then the Polyak update
  /// of the targets (see the file comment). Fused or autograd path by SACOptions::update.
  /// @throws ShapeError / ValueError naming the batch field for wrong shapes or NaN/Inf.
  SACUpdateMetrics update(const Batch& batch_in) {
    const Batch batch = checked_batch(batch_in, "SACAgent::update batch");
    if (!fused_) return autograd_update(batch);
    const auto m = fused_->update(batch.observations, batch.actions, batch.rewards, batch.next_observations,
                                  batch.terminals, rng_.generator());
    ++num_updates_;
    return {m.critic_loss, m.actor_loss, m.alpha_loss, m.alpha, m.q1, m.q2, m.q_target, m.entropy};
  }

  /// One behaviour-cloning step of the actor alone (the BC baseline): minimises
  ///   L_BC = mean ‖tanh(μ(s)) − a‖²  over the batch (deterministic regression onto the dataset actions,
  /// as OfflineRL-Kit's and d3rlpy's BC), with the actor's Adam. Critics, targets and α are untouched,
  /// so act(obs, true) is the cloned policy. Counts as one update. @returns L_BC.
  /// @throws ShapeError / ValueError naming the batch field for wrong shapes or NaN/Inf.
  double behavior_cloning_update(const Batch& batch_in) {
    const Batch batch = checked_batch(batch_in, "SACAgent::behavior_cloning_update batch");
    const auto loss = (actor_->mode(batch.observations) - batch.actions).square().sum(-1).mean();
    actor_optimizer_->zero_grad();
    loss.backward();
    if (fused_) {  // the fused path keeps the actor's Adam moments in its flat buffers
      torch::NoGradGuard no_grad;
      const auto params = actor_->parameters();
      for (std::size_t i = 0; i < params.size(); ++i) fused_->actor_adam().grads()[i].copy_(params[i].grad());
      fused_->actor_adam().step();
      actor_optimizer_->zero_grad();
    } else {
      actor_optimizer_->step();
    }
    ++num_updates_;
    return loss.item<double>();
  }

  // ---- state --------------------------------------------------------------------------------------

  /// Writes networks, targets, optimiser moments, log α, the update count and the RNG state, atomically.
  /// @throws IoError naming the file.
  void save(const std::filesystem::path& file) const {
    torch::serialize::OutputArchive root;
    write_module(root, "actor", *actor_);
    write_module(root, "critic", *critic_);
    write_module(root, "target_critic", *target_critic_);
    if (fused_) {  // the same archive format: torch::optim::Adam state filled from the flat moments
      write_optimizer(root, "actor_optimizer",
                      *exported(fused_->actor_adam(), actor_->parameters(), options_.actor_lr));
      write_optimizer(root, "critic_optimizer",
                      *exported(fused_->critic_adam(), critic_->parameters(), options_.critic_lr));
      write_optimizer(root, "alpha_optimizer",
                      *exported(fused_->alpha_adam(), {log_alpha_}, options_.alpha_lr));
    } else {
      write_optimizer(root, "actor_optimizer", *actor_optimizer_);
      write_optimizer(root, "critic_optimizer", *critic_optimizer_);
      write_optimizer(root, "alpha_optimizer", *alpha_optimizer_);
    }
    root.write("log_alpha", log_alpha_.detach().cpu(), /*is_buffer=*/true);
    root.write("dims", torch::tensor({obs_dim_, act_dim_}, torch::kLong), true);
    root.write("hidden", torch::tensor(options_.hidden, torch::kLong), true);
    root.write("num_updates", torch::tensor({num_updates_}, torch::kLong), true);
    root.write("rng_state", rng_.generator_state(), true);
    std::ostringstream os;
    root.save_to(os);
    atomic_write(file, os.str());
  }

  /// Restores everything save() wrote. The agent must have the same dims and hidden sizes.
  /// @throws IoError for a missing/foreign/corrupt file, ShapeError for mismatching dims. After an error the
  /// agent may hold part of the file: load again or discard it.
  void load(const std::filesystem::path& file) {
    torch::serialize::InputArchive root;
    mopo::detail::read_torch_archive(root, file.string(), kNotACheckpoint, nullptr, 0, device_);
    load_archive(root, file.string());
  }

  /// load(path) from the `size` bytes of such a file in memory; `name` names them in errors.
  void load(const char* data, std::size_t size, const std::string& name) {
    torch::serialize::InputArchive root;
    mopo::detail::read_torch_archive(root, name, kNotACheckpoint, data, size, device_);
    load_archive(root, name);
  }

  // ---- accessors ----------------------------------------------------------------------------------

  [[nodiscard]] const SACOptions& options() const { return options_; }
  [[nodiscard]] int64_t obs_dim() const { return obs_dim_; }
  [[nodiscard]] int64_t act_dim() const { return act_dim_; }
  [[nodiscard]] double target_entropy() const { return target_entropy_; }
  [[nodiscard]] double alpha() const { return std::exp(log_alpha_.detach().cpu().item<double>()); }
  [[nodiscard]] int64_t num_updates() const { return num_updates_; }
  [[nodiscard]] const torch::Device& device() const { return device_; }
  SquashedGaussianActor& actor() { return actor_; }
  TwinQCritic& critic() { return critic_; }
  TwinQCritic& target_critic() { return target_critic_; }
  /// The agent's random stream (exploration, target and actor sampling).
  RandomState& random_state() { return rng_; }

 private:
  /// What a file load() cannot read is called in its IoError.
  static constexpr const char* kNotACheckpoint = "not a mopo SACAgent checkpoint";

  // Validates a training batch and moves it to the agent's device/dtype when needed.
  [[nodiscard]] Batch checked_batch(const Batch& batch, const std::string& what) const {
    batch.validate(obs_dim_, act_dim_, what);
    if (batch.observations.device() == device_ && batch.observations.dtype() == torch::kFloat32) return batch;
    return batch.to(tensor_options());
  }
  static torch::Device parse_device(const std::string& name) {
    try {
      torch::Device d(name);
      if (d.is_cuda() && !torch::cuda::is_available()) {
        throw ConfigError("device: \"" + name + "\" requested but LibTorch has no usable CUDA device");
      }
      return d;
    } catch (const c10::Error&) {
      throw ConfigError("device: cannot parse \"" + name + "\"");
    }
  }

  [[nodiscard]] torch::TensorOptions tensor_options() const {
    return torch::TensorOptions().dtype(torch::kFloat32).device(device_);
  }

  [[nodiscard]] torch::Tensor alpha_tensor() const { return log_alpha_.detach().exp().squeeze(0); }

  // The reference update on autograd (same semantics as the fused one; used on CUDA and by the tests).
  SACUpdateMetrics autograd_update(const Batch& batch) {
    const auto alpha = alpha_tensor();
    // L_Q (eq. 5) with the target from the current actor, α and target critics.
    const auto y = critic_target(batch).target;
    const auto q = critic_->forward(batch.observations, batch.actions);  // [2, B]
    const auto critic_loss = (q - y.unsqueeze(0)).square().mean(1).sum();
    // L_π (eq. 7) through the critics as they are now; they are frozen so backward computes ∂/∂a only.
    set_critic_requires_grad(false);
    auto pi = actor_->sample(batch.observations, rng_.generator());
    const auto q_pi = std::get<0>(critic_->forward(batch.observations, pi.action).min(0));
    const auto actor_loss = (alpha * pi.log_prob - q_pi).mean();
    set_critic_requires_grad(true);
    // L_α (eq. 18): α grows when the entropy −log π is below the target H̄.
    const auto log_prob = pi.log_prob.detach();
    torch::Tensor alpha_loss = torch::zeros({}, tensor_options());
    if (options_.auto_alpha) alpha_loss = -(log_alpha_ * (log_prob + target_entropy_)).mean();
    // All gradients first, then the steps: no loss sees a parameter this update has already changed.
    critic_optimizer_->zero_grad();
    actor_optimizer_->zero_grad();
    alpha_optimizer_->zero_grad();
    critic_loss.backward();
    actor_loss.backward();
    if (options_.auto_alpha) alpha_loss.backward();
    critic_optimizer_->step();
    actor_optimizer_->step();
    if (options_.auto_alpha) alpha_optimizer_->step();
    soft_update(target_critic_->parameters(), critic_->parameters(), options_.tau);
    ++num_updates_;

    // One device→host copy for all metrics.
    torch::NoGradGuard no_grad;
    const auto packed = torch::stack({critic_loss.detach().reshape({}), actor_loss.detach().reshape({}),
                                      alpha_loss.detach().reshape({}), alpha.reshape({}),
                                      q[0].detach().mean(), q[1].detach().mean(), y.mean(), -log_prob.mean()})
                            .to(torch::kCPU, torch::kFloat64)
                            .contiguous();
    const double* m = packed.data_ptr<double>();
    return {m[0], m[1], m[2], m[3], m[4], m[5], m[6], m[7]};
  }

  // A torch::optim::Adam over `params` holding `adam`'s moments (for the checkpoint format).
  static std::unique_ptr<torch::optim::Adam> exported(const detail::FlatAdam& adam,
                                                      const std::vector<torch::Tensor>& params, double lr) {
    auto out = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(lr));
    adam.export_state(*out);
    return out;
  }

  void set_critic_requires_grad(bool on) {
    for (auto& p : critic_->parameters()) p.set_requires_grad(on);
  }

  void load_archive(torch::serialize::InputArchive& root, const std::string& file) {
    auto read = [&](const char* key) {
      torch::Tensor t;
      if (!root.try_read(key, t)) throw IoError(file + ": SACAgent checkpoint has no key \"" + key + "\"");
      mopo::detail::check_storage(t, file + ": " + key);
      return t.cpu();
    };
    auto int64s = [&](const char* key) {
      const auto t = read(key);
      if (t.scalar_type() != torch::kLong || t.dim() != 1) {
        throw IoError(file + ": " + key + ": expected an int64 vector, got " + mopo::detail::describe(t));
      }
      const auto c = t.contiguous();
      return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
    };
    try {
      const auto dims = int64s("dims");
      const auto h = int64s("hidden");
      if (dims.size() != 2 || dims[0] != obs_dim_ || dims[1] != act_dim_ || h != options_.hidden) {
        auto list = [](const std::vector<int64_t>& v) {
          std::string out = "[";
          for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
          return out + "]";
        };
        throw ShapeError(file + ": SACAgent checkpoint for (obs, act) = " + list(dims) + ", hidden " +
                         list(h) + "; expected (obs, act) = " + list({obs_dim_, act_dim_}) + ", hidden " +
                         list(options_.hidden) + " (an agent of another task or network size?)");
      }
      // Module::load replaces each tensor by the stored one without comparing shapes or dtypes: record
      // them and compare afterwards (a wrong shape would only fail later, inside an update).
      auto layout = [&] {
        std::vector<std::pair<std::string, torch::Tensor>> all;
        const std::pair<const char*, torch::nn::Module*> modules[] = {
            {"actor", actor_.get()}, {"critic", critic_.get()}, {"target_critic", target_critic_.get()}};
        for (const auto& [key, m] : modules) {
          for (const auto& p : m->named_parameters())
            all.emplace_back(std::string(key) + "." + p.key(), p.value());
          for (const auto& p : m->named_buffers())
            all.emplace_back(std::string(key) + "." + p.key(), p.value());
        }
        return all;
      };
      std::vector<std::pair<std::vector<int64_t>, torch::Dtype>> expected;
      for (const auto& [name, t] : layout()) expected.emplace_back(t.sizes().vec(), t.scalar_type());
      read_module(root, "actor", *actor_);
      read_module(root, "critic", *critic_);
      read_module(root, "target_critic", *target_critic_);
      const auto loaded = layout();
      for (std::size_t i = 0; i < loaded.size(); ++i) {
        const auto& [name, t] = loaded[i];
        if (t.sizes().vec() != expected[i].first || t.scalar_type() != expected[i].second) {
          throw IoError(file + ": " + name + " is " + mopo::detail::describe(t) + ", expected " +
                        c10::str(c10::IntArrayRef(expected[i].first)) + " " +
                        c10::toString(expected[i].second));
        }
        mopo::detail::check_storage(t, file + ": " + name);
        mopo::detail::check_finite(t, file + ": " + name);
      }
      read_optimizer(root, "actor_optimizer", *actor_optimizer_);
      read_optimizer(root, "critic_optimizer", *critic_optimizer_);
      read_optimizer(root, "alpha_optimizer", *alpha_optimizer_);
      for (const auto* o : {actor_optimizer_.get(), critic_optimizer_.get(), alpha_optimizer_.get()}) {
        for (const auto& entry : o->state()) {
          const auto& st = static_cast<const torch::optim::AdamParamState&>(*entry.second);
          for (const auto* t : {&st.exp_avg(), &st.exp_avg_sq(), &st.max_exp_avg_sq()})
            mopo::detail::check_storage(*t, file + ": optimizer state");
        }
      }
      const auto log_alpha = read("log_alpha");
      if (log_alpha.numel() != 1 || !log_alpha.is_floating_point() ||
          !torch::isfinite(log_alpha).all().item<bool>()) {
        throw IoError(file + ": log_alpha: expected one finite number, got " +
                      mopo::detail::describe(log_alpha));
      }
      const auto updates = int64s("num_updates");
      if (updates.size() != 1 || updates[0] < 0)
        throw IoError(file + ": num_updates: expected one count >= 0");
      rng_.set_generator_state(read("rng_state"));
      {
        torch::NoGradGuard no_grad;
        log_alpha_.copy_(log_alpha.reshape(log_alpha_.sizes()));
      }
      num_updates_ = updates[0];
      if (fused_) {  // loading replaced the parameters' storage: re-point the views, take the moments over
        fused_->bind_layers();
        fused_->actor_adam().import_state(*actor_optimizer_);
        fused_->critic_adam().import_state(*critic_optimizer_);
        fused_->alpha_adam().import_state(*alpha_optimizer_);
      }
    } catch (const IoError&) {
      throw;
    } catch (const ShapeError&) {
      throw;
    } catch (const Error& e) {  // check_finite's ValueError
      throw IoError(file + ": " + e.what());
    } catch (const std::exception& e) {  // c10::Error, torch::jit::ErrorReport
      throw IoError(file + ": corrupt SACAgent checkpoint (" + mopo::detail::torch_message(e) + ")");
    }
  }

  static void write_module(torch::serialize::OutputArchive& root, const std::string& key,
                           const torch::nn::Module& m) {
    torch::serialize::OutputArchive sub;
    m.save(sub);
    root.write(key, sub);
  }
  static void read_module(torch::serialize::InputArchive& root, const std::string& key,
                          torch::nn::Module& m) {
    torch::serialize::InputArchive sub;
    root.read(key, sub);
    m.load(sub);
  }
  static void write_optimizer(torch::serialize::OutputArchive& root, const std::string& key,
                              const torch::optim::Optimizer& o) {
    torch::serialize::OutputArchive sub;
    o.save(sub);
    root.write(key, sub);
  }
  static void read_optimizer(torch::serialize::InputArchive& root, const std::string& key,
                             torch::optim::Optimizer& o) {
    torch::serialize::InputArchive sub;
    root.read(key, sub);
    o.load(sub);
  }

  SACOptions options_;
  int64_t obs_dim_;
  int64_t act_dim_;
  RandomState rng_;
  torch::Device device_;
  double target_entropy_ = 0;
  SquashedGaussianActor actor_{nullptr};
  TwinQCritic critic_{nullptr};
  TwinQCritic target_critic_{nullptr};
  torch::Tensor log_alpha_;
  std::unique_ptr<torch::optim::Adam> actor_optimizer_;
  std::unique_ptr<torch::optim::Adam> critic_optimizer_;
  std::unique_ptr<torch::optim::Adam> alpha_optimizer_;
  int64_t num_updates_ = 0;
  std::vector<torch::Tensor> act_scratch_;         // act(vector) buffers: input, then each layer's output
  std::unique_ptr<detail::FusedSACUpdate> fused_;  // set when options_.update == "fused" on CPU
};

}  // namespace mopo::agents
