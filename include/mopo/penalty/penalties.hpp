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
