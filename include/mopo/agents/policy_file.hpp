/// @file policy_file.hpp
/// @brief Actor-only policy files: what collecting data or deploying a trained SAC policy needs (~0.3 MB
/// for 256×256 instead of SACAgent::save's ~3 MB training checkpoint). The dataset zoo's behaviour
/// checkpoints (`policies/<task>/policy_<step>.pt`) and examples/export_policy use them.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/detail/torch_archive.hpp"

namespace mopo::agents {

/// Saves only the actor of `agent` (what collecting data needs; ~0.3 MB for 256×256 instead of the full
/// ~3 MB training checkpoint), atomically.
inline void save_policy(SACAgent& agent, const std::filesystem::path& file) {
  atomic_write_with(file, [&](const std::string& tmp) { torch::save(agent.actor(), tmp); });
}

/// Loads an actor written by save_policy() into `agent` (same observation/action sizes and hidden layers).
/// Every parameter's shape is checked first (LibTorch's loader would silently take other shapes), so a
/// policy of another task or network size is refused with what was expected and what the file holds.
/// @throws IoError naming the file if it cannot be read or is not a policy file, ShapeError naming the file
/// and the tensor if its shapes do not fit `agent`.
inline void load_policy(SACAgent& agent, const std::filesystem::path& file) {
  torch::serialize::InputArchive archive;
  mopo::detail::read_torch_archive(archive, file.string(), "not a policy file (agents::save_policy)");
  auto dims = [](c10::IntArrayRef s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
  };
  for (const auto& p : agent.actor()->named_parameters()) {
    const std::string& key = p.key();  // "l0.weight": sub-archive "l0", tensor "weight"
    torch::serialize::InputArchive* at = &archive;
    std::vector<torch::serialize::InputArchive> subs;
    subs.reserve(key.size());
    std::size_t start = 0;
    bool found = true;
    for (std::size_t dot = key.find('.'); found && dot != std::string::npos; dot = key.find('.', start)) {
      subs.emplace_back();
      found = at->try_read(key.substr(start, dot - start), subs.back());
      at = &subs.back();
      start = dot + 1;
    }
    torch::Tensor t;
    if (!found || !at->try_read(key.substr(start), t)) {
      throw IoError(file.string() + ": not a policy file (agents::save_policy): no tensor \"" + key + "\"");
    }
    if (t.sizes() != p.value().sizes()) {
      std::string hidden;
      for (const auto h : agent.options().hidden) hidden += (hidden.empty() ? "" : ", ") + std::to_string(h);
      throw ShapeError(file.string() + ": policy tensor " + key + " has shape " + dims(t.sizes()) +
                       ", expected " + dims(p.value().sizes()) + " for obs " +
                       std::to_string(agent.obs_dim()) + ", act " + std::to_string(agent.act_dim()) +
                       ", hidden [" + hidden + "] (a policy of another task or network size?)");
    }
  }
  try {
    agent.actor()->load(archive);
  } catch (const std::exception& e) {
    throw IoError(file.string() + ": cannot load SAC policy (actor): " + mopo::detail::torch_message(e));
  }
}

}  // namespace mopo::agents
