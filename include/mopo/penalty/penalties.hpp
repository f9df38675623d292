/// @file penalties.hpp
/// @brief Aggregator: every built-in penalty strategy and PenaltyPolicy.
#pragma once

#include "mopo/penalty/disagreement.hpp"
#include "mopo/penalty/hard_threshold.hpp"
#include "mopo/penalty/max_std.hpp"
#include "mopo/penalty/mean_std.hpp"
#include "mopo/penalty/no_penalty.hpp"
#include "mopo/penalty/penalty_policy.hpp"
#include "mopo/penalty/true_error.hpp"

#include <string>

namespace mopo::penalty {

/// Names of the built-in strategies, as accepted by dispatch().
inline constexpr const char* kPenaltyNames[] = {"max_std",    "max_cov_norm", "mean_std",      "disagreement",
                                                "true_error", "no_penalty",   "hard_threshold"};

/// Calls `f(Strategy{})` with the built-in strategy named `name` (run-time choice at the edge, e.g. a
/// CLI flag; the compute path stays static). "mbpo" is accepted for "no_penalty".
/// @throws ValueError listing the known names.
template <class F>
decltype(auto) dispatch(const std::string& name, F&& f) {
  if (name == "max_std") return f(MaxStd{});
  if (name == "max_cov_norm") return f(MaxCovNorm{});
  if (name == "mean_std") return f(MeanStd{});
  if (name == "disagreement") return f(Disagreement{});
  if (name == "true_error") return f(TrueError{});
  if (name == "no_penalty" || name == "mbpo") return f(NoPenalty{});
  if (name == "hard_threshold") return f(HardThreshold{});
  std::string known;
  for (const char* n : kPenaltyNames) known += std::string(known.empty() ? "" : ", ") + n;
  throw ValueError("unknown penalty \"" + name + "\"; known: " + known);
}

}  // namespace mopo::penalty
