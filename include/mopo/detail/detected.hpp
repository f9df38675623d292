/// @file detected.hpp
/// @brief The detection idiom (C++17 has no concepts). Internal; not API.
#pragma once

#include <type_traits>

namespace mopo::detail {

struct nonesuch {
  nonesuch() = delete;
  ~nonesuch() = delete;
  nonesuch(const nonesuch&) = delete;
  void operator=(const nonesuch&) = delete;
};

template <class Default, class AlwaysVoid, template <class...> class Op, class... Args>
struct detector {
  using value_t = std::false_type;
  using type = Default;
};

template <class Default, template <class...> class Op, class... Args>
struct detector<Default, std::void_t<Op<Args...>>, Op, Args...> {
  using value_t = std::true_type;
  using type = Op<Args...>;
};

/// True when Op<Args...> is a valid type.
template <template <class...> class Op, class... Args>
using is_detected = typename detector<nonesuch, void, Op, Args...>::value_t;

template <template <class...> class Op, class... Args>
inline constexpr bool is_detected_v = is_detected<Op, Args...>::value;

template <template <class...> class Op, class... Args>
using detected_t = typename detector<nonesuch, void, Op, Args...>::type;

/// True when Op<Args...> is valid and is exactly Expected.
template <class Expected, template <class...> class Op, class... Args>
inline constexpr bool is_detected_exact_v = std::is_same_v<Expected, detected_t<Op, Args...>>;

/// True when Op<Args...> is valid and convertible to To.
template <class To, template <class...> class Op, class... Args>
inline constexpr bool is_detected_convertible_v = std::is_convertible_v<detected_t<Op, Args...>, To>;

}  // namespace mopo::detail
