/// @file scores.hpp
/// @brief Task names and D4RL reference scores (no MuJoCo, no LibTorch): the core reports normalised
/// scores with this header alone.
///
/// D4RL normalised score (d4rl/infos.py, environments.md §10.5): (R − random) / (expert − random), where
/// the references are the same for every dataset kind and version. Papers, MOPO included, report 100 ×
/// this value; `normalized_score` returns the D4RL fraction, `normalized_score_percent` the 100 × form.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "mopo/core/error.hpp"

namespace mopo::env {

/// D4RL REF_MIN_SCORE (uniform-random policy) and REF_MAX_SCORE (expert SAC policy).
struct ReferenceScores {
  double random;
  double expert;
};

namespace detail {
struct KnownTask {
  const char* name;
  bool has_reference;
  ReferenceScores reference;
};
// environments.md §10.5 (d4rl/infos.py). OOD tasks have no reference: MOPO Table 2 reports raw returns.
inline constexpr std::array<KnownTask, 8> kKnownTasks{{
    {"halfcheetah", true, {-280.178953, 12135.0}},
    {"hopper", true, {-20.272305, 3234.3}},
    {"walker2d", true, {1.629008, 4592.3}},
    {"ant", true, {-325.6, 3879.7}},
    {"halfcheetah-jump-behaviour", false, {0.0, 0.0}},
    {"halfcheetah-jump", false, {0.0, 0.0}},
    {"ant-angle", false, {0.0, 0.0}},
    {"hiv", false, {0.0, 0.0}},
}};

inline void check_finite_return(double episode_return, const std::string& who) {
  if (!std::isfinite(episode_return)) {
    std::ostringstream os;
    os << who << ": return " << episode_return << " is not finite";
    throw ValueError(os.str());
  }
}

inline std::string known_task_list() {
  std::ostringstream os;
  for (std::size_t i = 0; i < kKnownTasks.size(); ++i) os << (i ? ", " : "") << kKnownTasks[i].name;
  os << ", ant-angle-<degrees>";
  return os.str();
}
}  // namespace detail

/// The base task of a task or dataset name: "hopper-medium-replay-v2" → "hopper",
/// "ant-angle-45" → "ant-angle", "halfcheetah-jump" → "halfcheetah-jump". The longest known task name
/// that is the whole name or is followed by '-' wins. Throws mopo::ValueError for unknown names.
inline std::string base_task(const std::string& name) {
  const detail::KnownTask* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& t : detail::kKnownTasks) {
    const std::string n = t.name;
    if (name.compare(0, n.size(), n) == 0 && (name.size() == n.size() || name[n.size()] == '-') &&
        n.size() > best_len) {
      best = &t;
      best_len = n.size();
    }
  }
  if (best == nullptr) {
    throw ValueError("unknown task '" + name + "'; known tasks: " + detail::known_task_list());
  }
  return best->name;
}

/// D4RL reference scores for a task or dataset name, or nullopt for tasks without them (OOD tasks, HIV).
/// Throws mopo::ValueError for unknown names.
inline std::optional<ReferenceScores> d4rl_reference_scores(const std::string& name) {
  const std::string base = base_task(name);
  for (const auto& t : detail::kKnownTasks) {
    if (base == t.name && t.has_reference) return t.reference;
  }
  return std::nullopt;
}

/// D4RL's get_normalized_score with given references: (R − random) / (expert − random). `who` starts the
/// error message. Throws mopo::ValueError if `episode_return` is not finite.
inline double normalized_score(const ReferenceScores& ref, double episode_return, const std::string& who) {
  detail::check_finite_return(episode_return, who);
  return (episode_return - ref.random) / (ref.expert - ref.random);
}

/// D4RL's get_normalized_score: (R − random) / (expert − random). 0 = random policy, 1 = expert.
/// Throws mopo::ValueError if the task has no reference scores or `episode_return` is not finite.
inline double normalized_score(const std::string& name, double episode_return) {
  const std::string who = "normalized_score(" + name + ")";
  detail::check_finite_return(episode_return, who);
  const auto ref = d4rl_reference_scores(name);
  if (!ref) {
    throw ValueError("normalized_score: task '" + name +
                     "' has no D4RL reference scores (report raw returns, as MOPO Table 2 does)");
  }
  return normalized_score(*ref, episode_return, who);
}

/// 100 × normalized_score, the form papers report.
inline double normalized_score_percent(const std::string& name, double episode_return) {
  return 100.0 * normalized_score(name, episode_return);
}

}  // namespace mopo::env
