/// @file hiv.hpp
/// @brief HIV treatment model (Adams et al. 2004; whynot's hiv simulator) with continuous actions.
///
/// Six-state ODE, parameters and initial state as in environments.md §12 (whynot `hiv.Config` /
/// `hiv.State` defaults). Differences from whynot's HIV-v0, all deliberate:
///  - continuous actions a ∈ [−1, 1]², clipped, mapped linearly to ε1 = 0.35·(a0 + 1) ∈ [0, 0.7] and
///    ε2 = 0.15·(a1 + 1) ∈ [0, 0.3] (whynot has 4 discrete on/off levels, the corners of this box);
///  - the observation is log10 of the six state values (whynot returns raw values spanning 1e-4 … 1e6);
///  - the ODE is integrated by adaptive Dormand–Prince RK5(4) with rtol = atol = 1e-8 by default
///    (whynot: odeint at 1e-6); each step integrates exactly one day.
/// Reward on the post-step state: 1000·E − 0.1·V − 20000·ε1² − 20000·ε2². Episodes never terminate and
/// are truncated after 400 one-day steps. Reset is deterministic (the "early infection" state); the
/// seed is accepted for interface compatibility and does not change it.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>
#include <utility>

#include "mopo/core/error.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/env/true_dynamics.hpp"

namespace mopo::env {

/// State order: T1, T1*, T2, T2*, V, E (environments.md §12).
using HivState = std::array<double, 6>;

/// Model parameters (whynot hiv.Config defaults).
struct HivParameters {
  double lambda1 = 10000.0;  ///< production rate of T1
  double lambda2 = 31.98;    ///< production rate of T2
  double d1 = 0.01;
  double d2 = 0.01;
  double k1 = 8e-7;
  double k2 = 1e-4;
  double f = 0.34;  ///< RTI efficacy reduction in macrophages
  double delta = 0.7;
  double m1 = 1e-5;
  double m2 = 1e-5;
  double n_t = 100.0;  ///< virions per infected cell
  double c = 13.0;     ///< virus clearance
  double rho1 = 1.0;
  double rho2 = 1.0;
  double lambda_e = 1.0;
  double b_e = 0.3;
  double k_b = 100.0;
  double d_e = 0.25;
  double k_d = 500.0;
  double delta_e = 0.1;
};

/// The "early infection" initial state (whynot hiv.State defaults).
inline constexpr HivState kHivInitialState{1e6, 1e-4, 3198.0, 1e-4, 1.0, 10.0};

/// Right-hand side of the Adams et al. (2004) ODE under drug efficacies (eps1, eps2).
inline HivState hiv_derivative(const HivState& s, double eps1, double eps2, const HivParameters& p = {}) {
  const double t1 = s[0], t1s = s[1], t2 = s[2], t2s = s[3], v = s[4], e = s[5];
  const double infect1 = (1.0 - eps1) * p.k1 * v * t1;
  const double infect2 = (1.0 - p.f * eps1) * p.k2 * v * t2;
  const double infected = t1s + t2s;
  HivState ds{};
  ds[0] = p.lambda1 - p.d1 * t1 - infect1;
  ds[1] = infect1 - p.delta * t1s - p.m1 * e * t1s;
  ds[2] = p.lambda2 - p.d2 * t2 - infect2;
  ds[3] = infect2 - p.delta * t2s - p.m2 * e * t2s;
  ds[4] = (1.0 - eps2) * p.n_t * p.delta * infected - p.c * v -
          v * ((1.0 - eps1) * p.rho1 * p.k1 * t1 + (1.0 - p.f * eps1) * p.rho2 * p.k2 * t2);
  ds[5] = p.lambda_e + p.b_e * infected / (infected + p.k_b) * e - p.d_e * infected / (infected + p.k_d) * e -
          p.delta_e * e;
  return ds;
}

namespace detail {
inline HivState axpy(const HivState& y, double h,
                     std::initializer_list<std::pair<double, const HivState*>> terms) {
  HivState out = y;
  for (const auto& [coef, k] : terms) {
    for (std::size_t i = 0; i < 6; ++i) out[i] += h * coef * (*k)[i];
  }
  return out;
}
}  // namespace detail

/// Classical RK4 with `steps` equal steps over `duration` days (reference solutions, tests).
inline HivState hiv_integrate_rk4(HivState y, double eps1, double eps2, double duration, int64_t steps,
                                  const HivParameters& p = {}) {
  const double h = duration / static_cast<double>(steps);
  for (int64_t n = 0; n < steps; ++n) {
    const auto k1 = hiv_derivative(y, eps1, eps2, p);
    const auto k2 = hiv_derivative(detail::axpy(y, h, {{0.5, &k1}}), eps1, eps2, p);
    const auto k3 = hiv_derivative(detail::axpy(y, h, {{0.5, &k2}}), eps1, eps2, p);
    const auto k4 = hiv_derivative(detail::axpy(y, h, {{1.0, &k3}}), eps1, eps2, p);
    y = detail::axpy(y, h, {{1.0 / 6, &k1}, {1.0 / 3, &k2}, {1.0 / 3, &k3}, {1.0 / 6, &k4}});
  }
  return y;
}

/// Adaptive Dormand–Prince RK5(4) (FSAL not exploited) over `duration` days, local error per component
/// bounded by atol + rtol·|y|. Throws mopo::ValueError if the solution stops being finite or the step
/// size collapses.
inline HivState hiv_integrate_dopri(HivState y, double eps1, double eps2, double duration, double rtol,
                                    double atol, const HivParameters& p = {}) {
  // Dormand & Prince (1980) tableau.
  constexpr double a21 = 1.0 / 5;
  constexpr double a31 = 3.0 / 40, a32 = 9.0 / 40;
  constexpr double a41 = 44.0 / 45, a42 = -56.0 / 15, a43 = 32.0 / 9;
  constexpr double a51 = 19372.0 / 6561, a52 = -25360.0 / 2187, a53 = 64448.0 / 6561, a54 = -212.0 / 729;
  constexpr double a61 = 9017.0 / 3168, a62 = -355.0 / 33, a63 = 46732.0 / 5247, a64 = 49.0 / 176,
                   a65 = -5103.0 / 18656;
  constexpr double b1 = 35.0 / 384, b3 = 500.0 / 1113, b4 = 125.0 / 192, b5 = -2187.0 / 6784, b6 = 11.0 / 84;
  // Error weights: 5th-order minus embedded 4th-order weights.
  constexpr double e1 = 71.0 / 57600, e3 = -71.0 / 16695, e4 = 71.0 / 1920, e5 = -17253.0 / 339200,
                   e6 = 22.0 / 525, e7 = -1.0 / 40;
  double t = 0.0;
  double h = std::min(duration, 0.01);
  int64_t iterations = 0;
  while (t < duration) {
    if (++iterations > 10'000'000) throw ValueError("hiv: integrator exceeded 1e7 steps in one env step");
    if (t + h > duration) h = duration - t;
    const auto k1 = hiv_derivative(y, eps1, eps2, p);
    const auto k2 = hiv_derivative(detail::axpy(y, h, {{a21, &k1}}), eps1, eps2, p);
    const auto k3 = hiv_derivative(detail::axpy(y, h, {{a31, &k1}, {a32, &k2}}), eps1, eps2, p);
    const auto k4 = hiv_derivative(detail::axpy(y, h, {{a41, &k1}, {a42, &k2}, {a43, &k3}}), eps1, eps2, p);
    const auto k5 =
        hiv_derivative(detail::axpy(y, h, {{a51, &k1}, {a52, &k2}, {a53, &k3}, {a54, &k4}}), eps1, eps2, p);
    const auto k6 = hiv_derivative(
        detail::axpy(y, h, {{a61, &k1}, {a62, &k2}, {a63, &k3}, {a64, &k4}, {a65, &k5}}), eps1, eps2, p);
    const auto y5 = detail::axpy(y, h, {{b1, &k1}, {b3, &k3}, {b4, &k4}, {b5, &k5}, {b6, &k6}});
    const auto k7 = hiv_derivative(y5, eps1, eps2, p);
    double err = 0.0;
    bool finite = true;
    for (std::size_t i = 0; i < 6; ++i) {
      const double ei = h * (e1 * k1[i] + e3 * k3[i] + e4 * k4[i] + e5 * k5[i] + e6 * k6[i] + e7 * k7[i]);
      const double scale = atol + rtol * std::max(std::abs(y[i]), std::abs(y5[i]));
      const double r = ei / scale;
      err += r * r;
      finite = finite && std::isfinite(y5[i]);
    }
    err = std::sqrt(err / 6.0);
    if (finite && err <= 1.0) {
      t += h;
      y = y5;
    }
    const double factor =
        !finite ? 0.2 : (err == 0.0 ? 5.0 : std::clamp(0.9 * std::pow(err, -0.2), 0.2, 5.0));
    h *= factor;
    if (!(h > 1e-12 * std::max(1.0, duration))) {
      throw ValueError("hiv: integrator step size collapsed (state not finite or too stiff)");
    }
  }
  return y;
}

/// Options of the HIV environment.
struct HivOptions {
  int64_t max_episode_steps = 400;  ///< whynot: 400 one-day steps
  double step_days = 1.0;
  double rtol = 1e-8;
  double atol = 1e-8;
  HivParameters parameters{};
  void validate() const {
    if (max_episode_steps < 0) throw ConfigError("hiv.max_episode_steps: must be >= 0");
    if (!(step_days > 0.0)) throw ConfigError("hiv.step_days: must be > 0");
    if (!(rtol > 0.0) || !(atol > 0.0)) throw ConfigError("hiv.rtol/atol: must be > 0");
  }
};

/// The HIV treatment environment (observation 6 = log10 state, action 2 in [−1, 1]).
class Hiv final : public Environment, public TrueDynamics {
 public:
  static constexpr double kMaxEps1 = 0.7;  ///< "fully efficacious" RTI
  static constexpr double kMaxEps2 = 0.3;  ///< "fully efficacious" PI
  static constexpr double kRewardE = 1000.0, kCostV = 0.1, kCostEps1 = 20000.0, kCostEps2 = 20000.0;

  explicit Hiv(HivOptions options = {}) : options_(options) { options_.validate(); }

  [[nodiscard]] int64_t observation_dim() const override { return 6; }
  [[nodiscard]] int64_t action_dim() const override { return 2; }
  [[nodiscard]] Box action_space() const override { return {{-1.0, -1.0}, {1.0, 1.0}}; }
  [[nodiscard]] int64_t max_episode_steps() const override { return options_.max_episode_steps; }
  [[nodiscard]] std::string name() const override { return "hiv"; }

  Vector reset(uint64_t /*seed*/) override {
    state_ = kHivInitialState;
    steps_ = 0;
    needs_reset_ = false;
    return observe(state_);
  }

  StepResult step(const Vector& action) override {
    if (needs_reset_) throw ValueError("hiv.step: called before reset() or after the episode ended");
    if (action.size() != 2) {
      throw ShapeError("hiv.step: action has length " + std::to_string(action.size()) + ", expected 2");
    }
    for (std::size_t i = 0; i < 2; ++i) {
      if (!std::isfinite(action[i])) {
        std::ostringstream os;
        os << "hiv.step: action[" << i << "] = " << action[i] << " is not finite";
        throw ValueError(os.str());
      }
    }
    StepResult out;
    out.reward = advance(state_, action[0], action[1]);
    out.observation = observe(state_);
    ++steps_;
    out.truncated = options_.max_episode_steps > 0 && steps_ >= options_.max_episode_steps;
    if (out.truncated) needs_reset_ = true;
    return out;
  }

  /// Drug efficacies (ε1, ε2) for an action: clip to [−1, 1], then map linearly onto [0, 0.7] × [0, 0.3].
  [[nodiscard]] static std::pair<double, double> efficacies(double a0, double a1) {
    return {0.5 * (std::clamp(a0, -1.0, 1.0) + 1.0) * kMaxEps1,
            0.5 * (std::clamp(a1, -1.0, 1.0) + 1.0) * kMaxEps2};
  }
  /// Reward on a (post-step) state under efficacies (ε1, ε2).
  [[nodiscard]] static double reward(const HivState& s, double eps1, double eps2) {
    return kRewardE * s[5] - kCostV * s[4] - kCostEps1 * eps1 * eps1 - kCostEps2 * eps2 * eps2;
  }

  [[nodiscard]] const HivState& state() const { return state_; }
  void set_state(const HivState& s) {
    for (double x : s) {
      if (!std::isfinite(x) || x <= 0.0)
        throw ValueError("hiv.set_state: state values must be finite and > 0");
    }
    state_ = s;
    needs_reset_ = false;
  }
  /// log10 of each state value (values are floored at the smallest positive double).
  [[nodiscard]] static Vector observe(const HivState& s) {
    Vector o(6);
    for (std::size_t i = 0; i < 6; ++i) o[i] = std::log10(std::max(s[i], std::numeric_limits<double>::min()));
    return o;
  }

  TrueStep true_step(const torch::Tensor& observations, const torch::Tensor& actions) override {
    mopo::detail::check_shape(observations, {-1, 6}, "hiv.true_step: observations");
    mopo::detail::check_shape(actions, {observations.size(0), 2}, "hiv.true_step: actions");
    mopo::detail::check_finite(observations, "hiv.true_step: observations");
    mopo::detail::check_finite(actions, "hiv.true_step: actions");
    const auto obs = observations.to(torch::kCPU, torch::kFloat64).contiguous();
    const auto act = actions.to(torch::kCPU, torch::kFloat64).contiguous();
    const int64_t b = obs.size(0);
    auto next = torch::empty({b, 6}, torch::kFloat64);
    auto rew = torch::empty({b}, torch::kFloat64);
    const double* po = obs.data_ptr<double>();
    const double* pa = act.data_ptr<double>();
    double* pn = next.data_ptr<double>();
    double* pr = rew.data_ptr<double>();
    at::parallel_for(0, b, 4, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        HivState s{};
        for (std::size_t j = 0; j < 6; ++j) s[j] = std::pow(10.0, po[i * 6 + static_cast<int64_t>(j)]);
        pr[i] = advance(s, pa[i * 2], pa[i * 2 + 1]);
        const auto o = observe(s);
        std::copy(o.begin(), o.end(), pn + i * 6);
      }
    });
    return {next.to(torch::kFloat32), rew.to(torch::kFloat32), torch::zeros({b}, torch::kBool)};
  }

 private:
  double advance(HivState& s, double a0, double a1) const {
    const auto [eps1, eps2] = efficacies(a0, a1);
    s = hiv_integrate_dopri(s, eps1, eps2, options_.step_days, options_.rtol, options_.atol,
                            options_.parameters);
    return reward(s, eps1, eps2);
  }

  HivOptions options_;
  HivState state_ = kHivInitialState;
  int64_t steps_ = 0;
  bool needs_reset_ = true;
};

}  // namespace mopo::env
