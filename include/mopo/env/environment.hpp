/// @file environment.hpp
/// @brief The environment concept (Gym/Gymnasium step semantics) and a virtual base for runtime choice.
///
/// An environment type `EnvT` used by mopo's templates must provide (see docs/concepts.md#environment):
/// @code
/// struct MyEnv {
///   int64_t observation_dim() const;
///   int64_t action_dim() const;
///   mopo::env::Box action_space() const;           // bounds the agent's actions live in
///   mopo::env::Vector reset(uint64_t seed);        // new episode, RNG reseeded from `seed`
///   mopo::env::StepResult step(const mopo::env::Vector& action);
/// };
/// static_assert(mopo::env::is_environment_v<MyEnv>);
/// @endcode
/// `terminated` means the MDP reached a terminal state (no bootstrapping); `truncated` means the episode
/// was cut by a time limit (bootstrap from the next observation). A time-out is never a terminal.
/// Vectors are double precision, like MuJoCo's state; trainers convert to float32 tensors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mopo/detail/detected.hpp"

namespace mopo::env {

using Vector = std::vector<double>;

/// A box space: element-wise lower and upper bounds.
struct Box {
  Vector low;
  Vector high;
  [[nodiscard]] std::size_t size() const { return low.size(); }
};

/// What step() returns (Gymnasium's 5-tuple without `info`).
struct StepResult {
  Vector observation;
  double reward = 0.0;
  bool terminated = false;  ///< reached a terminal state of the MDP
  bool truncated = false;   ///< time limit hit; not a terminal
};

/// Virtual base for choosing a task at run time (the registry returns these). Algorithm templates take
/// the concrete type instead; concrete tasks are `final`, so calls through them are not virtual.
class Environment {
 public:
  virtual ~Environment() = default;
  [[nodiscard]] virtual int64_t observation_dim() const = 0;
  [[nodiscard]] virtual int64_t action_dim() const = 0;
  [[nodiscard]] virtual Box action_space() const = 0;
  virtual Vector reset(uint64_t seed) = 0;
  virtual StepResult step(const Vector& action) = 0;
  /// Steps allowed per episode before `truncated` (0 = unlimited).
  [[nodiscard]] virtual int64_t max_episode_steps() const { return 0; }
  [[nodiscard]] virtual std::string name() const = 0;
};

namespace detail {
template <class E>
using obs_dim_t = decltype(std::declval<const E&>().observation_dim());
template <class E>
using act_dim_t = decltype(std::declval<const E&>().action_dim());
template <class E>
using action_space_t = decltype(std::declval<const E&>().action_space());
template <class E>
using reset_t = decltype(std::declval<E&>().reset(std::declval<uint64_t>()));
template <class E>
using step_t = decltype(std::declval<E&>().step(std::declval<const Vector&>()));
}  // namespace detail

/// True when E satisfies the environment concept above.
template <class E>
inline constexpr bool is_environment_v =
    mopo::detail::is_detected_convertible_v<int64_t, detail::obs_dim_t, E>&&
        mopo::detail::is_detected_convertible_v<int64_t, detail::act_dim_t, E>&&
            mopo::detail::is_detected_convertible_v<Box, detail::action_space_t, E>&&
                mopo::detail::is_detected_convertible_v<Vector, detail::reset_t, E>&&
                    mopo::detail::is_detected_convertible_v<StepResult, detail::step_t, E>;

static_assert(is_environment_v<Environment>, "the virtual base must satisfy its own concept");

}  // namespace mopo::env
