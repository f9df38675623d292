/// @file export.hpp
/// @brief Writes a trained SAC actor or GaussianEnsemble in the deploy format (docs/deploy.md), for the
/// LibTorch-free runtime of <mopo/deploy/deploy.hpp>. This header is the LibTorch side: it needs
/// mopo::mopo; the files it writes are read with mopo::deploy alone.
///
/// Example:
/// @code
/// mopo::deploy::export_policy(agent, "halfcheetah.policy.mopo", env->action_space());
/// mopo::deploy::export_dynamics(model, "halfcheetah.dynamics.mopo");
/// @endcode
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/core/error.hpp"
#include "mopo/deploy/format.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/models/gaussian_ensemble.hpp"

namespace mopo::deploy {

namespace detail {
/// A tensor's values as float32, row-major (detached, on the CPU).
inline std::vector<float> to_floats(const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

inline std::vector<std::int64_t> sizes_of(const torch::Tensor& t) { return t.sizes().vec(); }
}  // namespace detail

/// The bundle export_policy() writes (exposed for tests and tools).
/// @param bounds the environment's action box (the trainer's ActionScaler maps tanh outputs into it);
///        empty low/high mean [−1, 1]^A.
/// @throws ShapeError if the bounds do not have act_dim values, ValueError if they are not finite low < high.
inline detail::Bundle policy_bundle(agents::SACAgent& agent, const env::Box& bounds = {}) {
  torch::NoGradGuard no_grad;
  const auto act_dim = agent.act_dim();
  env::Vector low = bounds.low, high = bounds.high;
  if (low.empty() && high.empty()) {
    low.assign(static_cast<std::size_t>(act_dim), -1.0);
    high.assign(static_cast<std::size_t>(act_dim), 1.0);
  }
  if (static_cast<int64_t>(low.size()) != act_dim || static_cast<int64_t>(high.size()) != act_dim) {
    throw ShapeError("export_policy: action bounds have " + std::to_string(low.size()) + "/" +
                     std::to_string(high.size()) + " values, the agent acts in " + std::to_string(act_dim));
  }
  for (std::size_t i = 0; i < low.size(); ++i) {
    if (!std::isfinite(low[i]) || !std::isfinite(high[i]) || !(low[i] < high[i])) {
      throw ValueError("export_policy: action bounds need finite low < high at index " + std::to_string(i));
    }
  }
  detail::Bundle b;
  b.format = kPolicyFormat;
  b.meta["obs_dim"] = agent.obs_dim();
  b.meta["act_dim"] = act_dim;
  b.meta["hidden"] = agent.options().hidden;
  b.meta["activation"] = "relu";
  b.meta["squash"] = "tanh";
  b.meta["log_std_min"] = agent.options().log_std_min;
  b.meta["log_std_max"] = agent.options().log_std_max;
  b.meta["action_low"] = low;
  b.meta["action_high"] = high;
  const auto& layers = agent.actor()->layers();  // nn::Linear: weight [out, in], bias [out]
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const std::string name = "l" + std::to_string(i);
    b.add(name + ".weight", detail::sizes_of(layers[i]->weight), detail::to_floats(layers[i]->weight));
    b.add(name + ".bias", detail::sizes_of(layers[i]->bias), detail::to_floats(layers[i]->bias));
  }
  return b;
}

/// Writes the actor of `agent` (with its log σ clamp and the action box) atomically to `file`.
/// @throws IoError naming the file if it cannot be written; see policy_bundle() for the others.
inline void export_policy(agents::SACAgent& agent, const std::filesystem::path& file,
                          const env::Box& bounds = {}) {
  detail::write_bundle(file, policy_bundle(agent, bounds));
}

/// The bundle export_dynamics() writes: weights as applied at inference (W/σ with spectral
/// normalisation), the shared logvar bounds, the input normaliser and the elites.
/// @throws ValueError if the model is untrained.
inline detail::Bundle dynamics_bundle(const models::GaussianEnsemble& model) {
  if (!model.trained())
    throw ValueError("export_dynamics: the ensemble is not trained (call fit() or load())");
  torch::NoGradGuard no_grad;  // effective_weight() then never advances the power iteration
  auto& net = *model.network().ptr();
  const auto e = model.ensemble_size();
  detail::Bundle b;
  b.format = kDynamicsFormat;
  b.meta["obs_dim"] = model.obs_dim();
  b.meta["act_dim"] = model.act_dim();
  b.meta["ensemble_size"] = e;
  b.meta["hidden"] = model.options().hidden;
  b.meta["activation"] = "swish";
  b.meta["elites"] = model.elites();
  b.add("input_mean", {model.input_dim()}, detail::to_floats(model.input_normalizer().mean()));
  b.add("input_std", {model.input_dim()}, detail::to_floats(model.input_normalizer().std()));
  b.add("max_logvar", {model.output_dim()}, detail::to_floats(net.max_logvar));
  b.add("min_logvar", {model.output_dim()}, detail::to_floats(net.min_logvar));
  const auto add_layer = [&](const std::string& name, models::EnsembleLinear& layer) {
    const auto w = layer->effective_weight();  // [E, in, out]
    b.add(name + ".weight", detail::sizes_of(w), detail::to_floats(w));
    b.add(name + ".bias", {e, layer->bias.size(2)}, detail::to_floats(layer->bias));  // [E, 1, out]
  };
  for (std::size_t l = 0; l < net.hidden.size(); ++l) add_layer("hidden" + std::to_string(l), net.hidden[l]);
  add_layer("mean_head", net.mean_head);
  add_layer("logvar_head", net.logvar_head);
  return b;
}

/// Writes `model` atomically to `file`. @throws IoError naming the file, ValueError if untrained.
inline void export_dynamics(const models::GaussianEnsemble& model, const std::filesystem::path& file) {
  detail::write_bundle(file, dynamics_bundle(model));
}

}  // namespace mopo::deploy
