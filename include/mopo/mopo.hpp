/// @file mopo.hpp
/// @brief Convenience header for mopo's core (no MuJoCo): include this, link mopo::mopo.
///
/// MuJoCo tasks are in <mopo/env/mujoco/...> and need the mopo::mujoco target.
#pragma once

#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/json_config.hpp"
#include "mopo/core/metrics.hpp"
#include "mopo/core/normalizer.hpp"
#include "mopo/core/progress.hpp"
#include "mopo/core/random.hpp"
#include "mopo/core/runtime.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/version.hpp"
