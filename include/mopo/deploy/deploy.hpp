/// @file deploy.hpp
/// @brief The LibTorch-free deploy runtime (target mopo::deploy: Eigen3 + nlohmann_json only):
/// deploy::Policy (a SAC actor) and deploy::DynamicsEnsemble (a GaussianEnsemble), read from the files
/// that deploy::export_policy / deploy::export_dynamics (<mopo/deploy/export.hpp>, LibTorch side) write.
/// See docs/deploy.md.
#pragma once

#include "mopo/deploy/dynamics.hpp"
#include "mopo/deploy/format.hpp"
#include "mopo/deploy/policy.hpp"
