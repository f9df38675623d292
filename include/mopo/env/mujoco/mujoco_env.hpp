/// @file mujoco_env.hpp
/// @brief `MujocoEnv<TaskT>`: a Gym-semantics MuJoCo environment driven by a task description.
///
/// The environment owns one compiled mjModel and one mjData for its own episode, plus one extra mjData
/// per worker thread for the batched oracle `true_step` (one mjData per thread, never shared).
///
/// Step semantics (environments.md §3, §7, §8), default = what produced D4RL (Gym v2 + D4RL's
/// NormalizedBoxEnv):
///  1. the action is checked (length, finiteness) and, with `clip_actions`, clipped to ctrlrange;
///  2. the task records the pre-step position (qpos x, or the torso xpos for Ant — pitfall #8);
///  3. ctrl = action, then `frame_skip` × mj_step (pitfall #10: never a hand-rolled integrator);
///  4. Gymnasium v4 only: mj_rnePostConstraint once (pitfall #3; Gym v2 leaves cfrc_ext at zero);
///  5. reward, termination and observation are computed on the post-step state;
///  6. `truncated` is set when `max_episode_steps` steps were taken (Gym's TimeLimit). As in Gymnasium,
///     a step can be both terminated and truncated.
///
/// A task type `TaskT` provides (see the tasks under mopo/env/mujoco/tasks/):
/// @code
/// struct MyTask {
///   static constexpr int kFrameSkip = 5;
///   std::string name() const;
///   const char* xml() const;                                           // MJCF document
///   int64_t observation_dim(const MujocoOptions&) const;
///   void observe(const mjModel*, const mjData*, const MujocoOptions&, double* out) const;
///   Planar position(const mjModel*, const mjData*) const;              // what the forward reward
///   differentiates double reward(const StepContext&) const; bool terminated(const mjModel*, const mjData*)
///   const; void reset_noise(const mjModel*, mjData*, std::mt19937_64&) const; // perturbs qpos/qvel around
///   qpos0 / 0 void state_from_observation(const mjModel*, const double* obs, double* qpos, double* qvel)
///   const;
/// };
/// @endcode
#pragma once

#include <mujoco/mujoco.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/detail/detected.hpp"
#include "mopo/env/environment.hpp"
#include "mopo/env/mujoco/handles.hpp"
#include "mopo/env/options.hpp"
#include "mopo/env/true_dynamics.hpp"

namespace mopo::env {

namespace mujoco {

/// A planar position (x, y) read before and after a step for the velocity terms of the reward.
struct Planar {
  double x = 0.0;
  double y = 0.0;
};

/// Everything a task's reward may use: post-step model/data, pre/post positions, the (clipped) action.
struct StepContext {
  const mjModel* model;
  const mjData* data;
  const MujocoOptions* options;
  Planar before;
  Planar after;
  const double* action;  ///< nu values, as used for the control cost
  int nu;
  double dt;  ///< timestep · frame_skip
  [[nodiscard]] double sum_sq_action() const {
    double s = 0.0;
    for (int i = 0; i < nu; ++i) s += action[i] * action[i];
    return s;
  }
  [[nodiscard]] double x_velocity() const { return (after.x - before.x) / dt; }
  [[nodiscard]] double y_velocity() const { return (after.y - before.y) / dt; }
};

namespace detail {
template <class T>
using frame_skip_t = decltype(T::kFrameSkip);
template <class T>
using name_t = decltype(std::declval<const T&>().name());
template <class T>
using xml_t = decltype(std::declval<const T&>().xml());
template <class T>
using obs_dim_t = decltype(std::declval<const T&>().observation_dim(std::declval<const MujocoOptions&>()));
template <class T>
using observe_t =
    decltype(std::declval<const T&>().observe(std::declval<const mjModel*>(), std::declval<const mjData*>(),
                                              std::declval<const MujocoOptions&>(), std::declval<double*>()));
template <class T>
using position_t = decltype(std::declval<const T&>().position(std::declval<const mjModel*>(),
                                                              std::declval<const mjData*>()));
template <class T>
using reward_t = decltype(std::declval<const T&>().reward(std::declval<const StepContext&>()));
template <class T>
using terminated_t = decltype(std::declval<const T&>().terminated(std::declval<const mjModel*>(),
                                                                  std::declval<const mjData*>()));
template <class T>
using reset_noise_t = decltype(std::declval<const T&>().reset_noise(
    std::declval<const mjModel*>(), std::declval<mjData*>(), std::declval<std::mt19937_64&>()));
template <class T>
using from_obs_t = decltype(std::declval<const T&>().state_from_observation(
    std::declval<const mjModel*>(), std::declval<const double*>(), std::declval<double*>(),
    std::declval<double*>()));
}  // namespace detail

/// True when T satisfies the task concept documented at the top of this file.
template <class T>
inline constexpr bool is_mujoco_task_v =
    mopo::detail::is_detected_convertible_v<int, detail::frame_skip_t, T>&&
        mopo::detail::is_detected_convertible_v<std::string, detail::name_t, T>&&
            mopo::detail::is_detected_convertible_v<const char*, detail::xml_t, T>&&
                mopo::detail::is_detected_convertible_v<int64_t, detail::obs_dim_t, T>&&
                    mopo::detail::is_detected_v<detail::observe_t, T>&&
                        mopo::detail::is_detected_convertible_v<Planar, detail::position_t, T>&&
                            mopo::detail::is_detected_convertible_v<double, detail::reward_t, T>&&
                                mopo::detail::is_detected_convertible_v<bool, detail::terminated_t, T>&&
                                    mopo::detail::is_detected_v<detail::reset_noise_t, T>&&
                                        mopo::detail::is_detected_v<detail::from_obs_t, T>;

}  // namespace mujoco

/// A MuJoCo environment with Gym semantics. Concrete tasks are aliases, e.g. `using HalfCheetah =
/// MujocoEnv<mujoco::HalfCheetahTask>`. Not thread-safe: one instance per thread.
template <class TaskT>
class MujocoEnv final : public Environment, public TrueDynamics {
  static_assert(mujoco::is_mujoco_task_v<TaskT>,
                "TaskT does not satisfy the MuJoCo task concept: see the member list at the top of "
                "mopo/env/mujoco/mujoco_env.hpp and docs/environments.md");

 public:
  using Task = TaskT;

  explicit MujocoEnv(MujocoOptions options = {}, TaskT task = {})
      : options_(options), task_(std::move(task)) {
    options_.validate();
    model_ = mujoco::load_model_from_string(task_.xml(), task_.name());
    data_ = mujoco::make_data(model_.get());
    obs_dim_ = task_.observation_dim(options_);
    nu_ = model_->nu;
    dt_ = model_->opt.timestep * TaskT::kFrameSkip;
    action_.assign(static_cast<std::size_t>(nu_), 0.0);
    space_.low.resize(static_cast<std::size_t>(nu_));
    space_.high.resize(static_cast<std::size_t>(nu_));
    for (int i = 0; i < nu_; ++i) {
      space_.low[static_cast<std::size_t>(i)] = model_->actuator_ctrlrange[2 * i];
      space_.high[static_cast<std::size_t>(i)] = model_->actuator_ctrlrange[2 * i + 1];
    }
    // A ready state (qpos0, no noise) so that true_step/set_state work before any reset.
    mj_forward(model_.get(), data_.get());
  }

  MujocoEnv(const MujocoEnv&) = delete;
  MujocoEnv& operator=(const MujocoEnv&) = delete;
  MujocoEnv(MujocoEnv&&) noexcept = default;
  MujocoEnv& operator=(MujocoEnv&&) noexcept = default;
  ~MujocoEnv() override = default;

  // ---- Environment --------------------------------------------------------------------------------
  [[nodiscard]] int64_t observation_dim() const override { return obs_dim_; }
  [[nodiscard]] int64_t action_dim() const override { return nu_; }
  [[nodiscard]] Box action_space() const override { return space_; }
  [[nodiscard]] int64_t max_episode_steps() const override { return options_.max_episode_steps; }
  [[nodiscard]] std::string name() const override { return task_.name(); }

  /// mj_resetData, then the task's reset noise drawn from a generator seeded with `seed`, then
  /// mj_forward (Gym's reset_model + set_state). Same seed → bit-identical episode.
  Vector reset(uint64_t seed) override {
    std::mt19937_64 rng(splitmix64(seed));
    mj_resetData(model_.get(), data_.get());
    task_.reset_noise(model_.get(), data_.get(), rng);
    mj_forward(model_.get(), data_.get());
    steps_ = 0;
    needs_reset_ = false;
    return observation();
  }

  StepResult step(const Vector& action) override {
    if (needs_reset_) {
      throw ValueError(
          task_.name() + ": step() called " +
          (steps_ == 0 ? std::string("before reset()") : std::string("after the episode ended")) +
          "; call reset(seed) first");
    }
    prepare_action(action.data(), static_cast<int64_t>(action.size()), action_.data());
    StepResult out;
    out.reward = advance(data_.get(), action_.data(), &out.terminated);
    out.observation = observation();
    ++steps_;
    out.truncated = options_.max_episode_steps > 0 && steps_ >= options_.max_episode_steps;
    if (out.terminated || out.truncated) needs_reset_ = true;
    return out;
  }

  // ---- Full state ---------------------------------------------------------------------------------
  [[nodiscard]] int nq() const { return model_->nq; }
  [[nodiscard]] int nv() const { return model_->nv; }
  [[nodiscard]] Vector qpos() const { return Vector(data_->qpos, data_->qpos + model_->nq); }
  [[nodiscard]] Vector qvel() const { return Vector(data_->qvel, data_->qvel + model_->nv); }
  /// Seconds per env step: timestep · frame_skip.
  [[nodiscard]] double dt() const { return dt_; }
  [[nodiscard]] int64_t elapsed_steps() const { return steps_; }
  [[nodiscard]] const MujocoOptions& options() const { return options_; }
  [[nodiscard]] const TaskT& task() const { return task_; }
  /// Read-only access for inspection (masses, names). The environment keeps ownership.
  [[nodiscard]] const mjModel* model() const { return model_.get(); }
  [[nodiscard]] const mjData* data() const { return data_.get(); }

  /// Gym's set_state: write qpos/qvel, then mj_forward. Continues the current episode (the step
  /// counter is kept) and allows stepping even if the episode had ended.
  void set_state(const Vector& qpos, const Vector& qvel) {
    check_vector(qpos, model_->nq, "set_state: qpos");
    check_vector(qvel, model_->nv, "set_state: qvel");
    write_state(data_.get(), qpos.data(), qvel.data());
    needs_reset_ = false;
  }

  /// The current observation (task layout, double precision).
  [[nodiscard]] Vector observation() const {
    Vector obs(static_cast<std::size_t>(obs_dim_));
    task_.observe(model_.get(), data_.get(), options_, obs.data());
    return obs;
  }

  /// (qpos, qvel) that reproduce `obs`. The coordinates the observation drops (x; x and y for Ant)
  /// are set to 0 — the dynamics are invariant to them. Clipped velocities (Hopper/Walker2d clip to
  /// ±10) are restored clipped, so such states are inexact (mopo-algorithm.md §7, TrueError facts).
  [[nodiscard]] std::pair<Vector, Vector> state_from_observation(const Vector& obs) const {
    check_vector(obs, obs_dim_, "state_from_observation: observation");
    Vector qpos(static_cast<std::size_t>(model_->nq), 0.0);
    Vector qvel(static_cast<std::size_t>(model_->nv), 0.0);
    task_.state_from_observation(model_.get(), obs.data(), qpos.data(), qvel.data());
    return {std::move(qpos), std::move(qvel)};
  }

  // ---- TrueDynamics ---------------------------------------------------------------------------------
  /// For each row i: set_state(state_from_observation(obs[i])), step(act[i]) — on a per-thread mjData,
  /// never touching the episode state. Rows are spread over LibTorch's intra-op threads.
  TrueStep true_step(const torch::Tensor& observations, const torch::Tensor& actions) override {
    const std::string what = task_.name() + ".true_step";
    mopo::detail::check_shape(observations, {-1, obs_dim_}, what + ": observations");
    mopo::detail::check_shape(actions, {observations.size(0), nu_}, what + ": actions");
    if (!observations.is_floating_point() || !actions.is_floating_point()) {
      throw ShapeError(what + ": observations and actions must be floating point, got " +
                       mopo::detail::describe(observations) + " and " + mopo::detail::describe(actions));
    }
    mopo::detail::check_finite(observations, what + ": observations");
    mopo::detail::check_finite(actions, what + ": actions");
    const auto obs = observations.to(torch::kCPU, torch::kFloat64).contiguous();
    const auto act = actions.to(torch::kCPU, torch::kFloat64).contiguous();
    const int64_t batch = obs.size(0);
    auto next = torch::empty({batch, obs_dim_}, torch::kFloat64);
    auto rew = torch::empty({batch}, torch::kFloat64);
    auto term = torch::empty({batch}, torch::kBool);
    const double* po = obs.data_ptr<double>();
    const double* pa = act.data_ptr<double>();
    double* pn = next.data_ptr<double>();
    double* pr = rew.data_ptr<double>();
    bool* pt = term.data_ptr<bool>();

    const auto threads = static_cast<std::size_t>(std::max(1, at::get_num_threads()));
    while (workers_.size() < threads) workers_.push_back(mujoco::make_data(model_.get()));
    at::parallel_for(0, batch, 16, [&](int64_t begin, int64_t end) {
      const auto tid = static_cast<std::size_t>(at::get_thread_num());
      mjData* d = workers_[std::min(tid, workers_.size() - 1)].get();
      std::vector<double> qpos(static_cast<std::size_t>(model_->nq));
      std::vector<double> qvel(static_cast<std::size_t>(model_->nv));
      std::vector<double> a(static_cast<std::size_t>(nu_));
      for (int64_t i = begin; i < end; ++i) {
        std::fill(qpos.begin(), qpos.end(), 0.0);
        std::fill(qvel.begin(), qvel.end(), 0.0);
        task_.state_from_observation(model_.get(), po + i * obs_dim_, qpos.data(), qvel.data());
        reset_dynamic_inputs(d);
        write_state(d, qpos.data(), qvel.data());
        clip_action(pa + i * nu_, a.data());
        bool terminated = false;
        pr[i] = advance(d, a.data(), &terminated);
        pt[i] = terminated;
        task_.observe(model_.get(), d, options_, pn + i * obs_dim_);
      }
    });
    return {next.to(torch::kFloat32), rew.to(torch::kFloat32), term};
  }

 private:
  void check_vector(const Vector& v, int64_t expected, const std::string& what) const {
    if (static_cast<int64_t>(v.size()) != expected) {
      throw ShapeError(task_.name() + " " + what + ": expected length " + std::to_string(expected) +
                       ", got " + std::to_string(v.size()));
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        std::ostringstream os;
        os << task_.name() << ' ' << what << ": non-finite value " << v[i] << " at index " << i;
        throw ValueError(os.str());
      }
    }
  }

  void prepare_action(const double* in, int64_t n, double* out) const {
    if (n != nu_) {
      throw ShapeError(task_.name() + ".step: action has length " + std::to_string(n) + ", expected " +
                       std::to_string(nu_));
    }
    for (int64_t i = 0; i < n; ++i) {
      if (!std::isfinite(in[i])) {
        std::ostringstream os;
        os << task_.name() << ".step: action[" << i << "] = " << in[i] << " is not finite";
        throw ValueError(os.str());
      }
    }
    clip_action(in, out);
  }

  /// D4RL's NormalizedBoxEnv clip (pitfall #7) when enabled; a plain copy otherwise.
  void clip_action(const double* in, double* out) const {
    for (int i = 0; i < nu_; ++i) {
      const auto k = static_cast<std::size_t>(i);
      out[i] = options_.clip_actions ? std::clamp(in[i], space_.low[k], space_.high[k]) : in[i];
    }
  }

  /// What mj_resetData resets and the next step reads besides qpos/qvel/ctrl: time, the solver's warm
  /// start, activations and applied forces. Much cheaper than mj_resetData, which clears the whole arena
  /// (HalfCheetah's nstack = 300000 makes that ~2.4 MB per call). Gives the same bits (tested).
  void reset_dynamic_inputs(mjData* d) const {
    const mjModel* m = model_.get();
    d->time = 0.0;
    std::fill(d->qacc_warmstart, d->qacc_warmstart + m->nv, 0.0);
    std::fill(d->qfrc_applied, d->qfrc_applied + m->nv, 0.0);
    std::fill(d->xfrc_applied, d->xfrc_applied + 6 * m->nbody, 0.0);
    std::fill(d->act, d->act + m->na, 0.0);
  }

  void write_state(mjData* d, const double* qpos, const double* qvel) const {
    std::copy(qpos, qpos + model_->nq, d->qpos);
    std::copy(qvel, qvel + model_->nv, d->qvel);
    mj_forward(model_.get(), d);
  }

  /// Gym's do_simulation + reward + termination on data `d`. Returns the reward.
  double advance(mjData* d, const double* action, bool* terminated) const {
    const mjModel* m = model_.get();
    mujoco::StepContext ctx{m, d, &options_, {}, {}, action, nu_, dt_};
    ctx.before = task_.position(m, d);
    std::copy(action, action + nu_, d->ctrl);
    for (int k = 0; k < TaskT::kFrameSkip; ++k) mj_step(m, d);
    if (options_.semantics == Semantics::kGymnasiumV4) mj_rnePostConstraint(m, d);
    ctx.after = task_.position(m, d);
    *terminated = task_.terminated(m, d);
    return task_.reward(ctx);
  }

  MujocoOptions options_;
  TaskT task_;
  mujoco::UniqueMjModel model_;
  mujoco::UniqueMjData data_;
  std::vector<mujoco::UniqueMjData> workers_;
  int64_t obs_dim_ = 0;
  int nu_ = 0;
  double dt_ = 0.0;
  Vector action_;
  Box space_;
  int64_t steps_ = 0;
  bool needs_reset_ = true;
};

}  // namespace mopo::env
