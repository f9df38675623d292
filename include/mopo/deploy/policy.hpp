/// @file policy.hpp
/// @brief mopo::deploy::Policy: a trained SAC actor evaluated with Eigen, without LibTorch.
///
/// It computes what agents::SquashedGaussianActor and SACAgent::act compute (sac_networks.hpp):
/// h = ReLU(W_l h + b_l) for the hidden layers, [μ, log σ] = W_N h + b_N, log σ clamped to
/// [log_std_min, log_std_max]; the action is tanh(μ) (deterministic) or tanh(μ + σ·ε), ε ~ N(0, I)
/// (SAC paper arXiv 1812.05905, Appendix C), then mapped to the environment's action box with
/// low + (a + 1)(high − low)/2, as train::ActionScaler does.
///
/// Example:
/// @code
/// auto policy = mopo::deploy::Policy::load("halfcheetah.policy.mopo");
/// Eigen::VectorXf obs(policy.obs_dim()), action(policy.act_dim());
/// policy.act(obs, action);                 // deterministic, in the action box
/// std::mt19937_64 rng(0);
/// policy.act(obs, action, rng);            // stochastic
/// @endcode
///
/// Not thread-safe (the forward pass reuses buffers held by the object); copy it for each thread.
/// The act() calls allocate nothing once the object exists (the batched forms when the batch grows).
#pragma once

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/deploy/format.hpp"

namespace mopo::deploy {

/// Row-major float matrix: one row per sample, as observations arrive (LibTorch's [B, D] layout).
using RowMatrixXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

namespace detail {
inline void check_vector(const Eigen::Ref<const Eigen::VectorXf>& v, Eigen::Index size, const char* what) {
  if (v.size() != size) {
    throw ShapeError(std::string(what) + ": expected " + std::to_string(size) + " values, got " +
                     std::to_string(v.size()));
  }
  for (Eigen::Index i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v[i])) {
      throw ValueError(std::string(what) + ": value at index " + std::to_string(i) + " is not finite");
    }
  }
}

inline void check_rows(const Eigen::Ref<const RowMatrixXf>& m, Eigen::Index rows, Eigen::Index cols,
                       const char* what) {
  if ((rows >= 0 && m.rows() != rows) || m.cols() != cols) {
    throw ShapeError(std::string(what) + ": expected shape [" + (rows >= 0 ? std::to_string(rows) : "*") +
                     ", " + std::to_string(cols) + "], got [" + std::to_string(m.rows()) + ", " +
                     std::to_string(m.cols()) + "]");
  }
  if (!m.allFinite()) {
    for (Eigen::Index r = 0; r < m.rows(); ++r) {
      for (Eigen::Index c = 0; c < m.cols(); ++c) {
        if (!std::isfinite(m(r, c))) {
          throw ValueError(std::string(what) + ": value at [" + std::to_string(r) + ", " + std::to_string(c) +
                           "] is not finite");
        }
      }
    }
  }
}

/// low + (a + 1)·(high − low)/2 for one action (train::ActionScaler), half = (high − low)/2.
template <class ArrayT>
auto scale_to_box(const ArrayT& a, const Eigen::VectorXf& low, const Eigen::VectorXf& half) {
  return (low.array() + (a + 1.0f) * half.array()).matrix();
}

/// The same for a batch of actions, one per row.
template <class ArrayT>
auto scale_rows_to_box(const ArrayT& a, const Eigen::VectorXf& low, const Eigen::VectorXf& half) {
  return (((a + 1.0f).rowwise() * half.transpose().array()).rowwise() + low.transpose().array()).matrix();
}
}  // namespace detail

/// A deployed SAC actor (file written by deploy::export_policy, format "mopo.deploy.policy").
class Policy {
 public:
  /// Reads an export. @throws IoError naming the file (missing, truncated, corrupted, other version,
  /// inconsistent layer sizes, unsupported activation).
  static Policy load(const std::filesystem::path& file) {
    const auto bundle = detail::read_bundle(file, kPolicyFormat);
    const detail::BundleReader in(bundle, file);
    Policy p;
    p.obs_dim_ = in.field<int>("obs_dim");
    p.act_dim_ = in.field<int>("act_dim");
    const auto hidden = in.field<std::vector<int>>("hidden");
    if (in.field<std::string>("activation") != "relu") throw in.error("unsupported hidden activation");
    if (in.field<std::string>("squash") != "tanh") throw in.error("unsupported action squash");
    p.log_std_min_ = in.field<float>("log_std_min");
    p.log_std_max_ = in.field<float>("log_std_max");
    if (p.obs_dim_ < 1 || p.act_dim_ < 1) throw in.error("obs_dim and act_dim must be >= 1");
    if (!(p.log_std_min_ < p.log_std_max_)) throw in.error("log_std_min must be < log_std_max");
    const auto low = in.field<std::vector<float>>("action_low");
    const auto high = in.field<std::vector<float>>("action_high");
    if (static_cast<int>(low.size()) != p.act_dim_ || static_cast<int>(high.size()) != p.act_dim_) {
      throw in.error("action_low/action_high must have act_dim = " + std::to_string(p.act_dim_) + " values");
    }
    p.low_.resize(p.act_dim_);
    p.half_range_.resize(p.act_dim_);
    for (int j = 0; j < p.act_dim_; ++j) {
      if (!std::isfinite(low[j]) || !std::isfinite(high[j]) || !(low[j] < high[j])) {
        throw in.error("action bounds need finite low < high at index " + std::to_string(j));
      }
      p.low_[j] = low[j];
      p.half_range_[j] = 0.5f * (high[j] - low[j]);
    }
    std::vector<int> sizes = hidden;
    sizes.push_back(2 * p.act_dim_);  // last layer: [μ, log σ] (sac_networks.hpp)
    int width_in = p.obs_dim_;
    for (std::size_t l = 0; l < sizes.size(); ++l) {
      const int width_out = sizes[l];
      if (width_out < 1) throw in.error("hidden[" + std::to_string(l) + "] must be >= 1");
      const std::string name = "l" + std::to_string(l);
      const auto& w = in.array(name + ".weight", {width_out, width_in});  // nn::Linear: [out, in]
      const auto& b = in.array(name + ".bias", {width_out});
      Layer layer;
      layer.weight = Eigen::Map<const RowMatrixXf>(w.data(), width_out, width_in);
      layer.bias = Eigen::Map<const Eigen::VectorXf>(b.data(), width_out);
      layer.out.setZero(width_out);
      if (l + 1 == sizes.size()) layer.weight_rows = layer.weight;
      layer.nonzero.reserve(static_cast<std::size_t>(width_in));
      p.layers_.push_back(std::move(layer));
      width_in = width_out;
    }
    p.noise_.setZero(p.act_dim_);
    return p;
  }

  [[nodiscard]] int obs_dim() const { return obs_dim_; }
  [[nodiscard]] int act_dim() const { return act_dim_; }
  /// Action box: act() returns values in [low, low + 2·half_range].
  [[nodiscard]] Eigen::VectorXf action_low() const { return low_; }
  [[nodiscard]] Eigen::VectorXf action_high() const { return low_ + 2.0f * half_range_; }
  [[nodiscard]] float log_std_min() const { return log_std_min_; }
  [[nodiscard]] float log_std_max() const { return log_std_max_; }

  // ---- one observation ----------------------------------------------------------------------------

  /// Deterministic action low + (tanh μ(s) + 1)·(high − low)/2 for one observation [obs_dim].
  /// @throws ShapeError (sizes), ValueError (NaN/Inf in obs).
  void act(const Eigen::Ref<const Eigen::VectorXf>& obs, Eigen::Ref<Eigen::VectorXf> action) {
    check_single(obs, action);
    const auto& out = forward(obs);
    action = detail::scale_to_box(out.head(act_dim_).array().tanh(), low_, half_range_);
  }

  /// Stochastic action tanh(μ + σ·ε) scaled to the box, ε ~ N(0, I) drawn from `rng` (any C++
  /// uniform random bit generator, e.g. std::mt19937_64).
  template <class URBG>
  void act(const Eigen::Ref<const Eigen::VectorXf>& obs, Eigen::Ref<Eigen::VectorXf> action, URBG& rng) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (int j = 0; j < act_dim_; ++j) noise_[j] = normal(rng);
    act_with_noise(obs, noise_, action);
  }

  /// Stochastic action with the caller's standard-normal draw `noise` [act_dim] (reproducible sampling).
  void act_with_noise(const Eigen::Ref<const Eigen::VectorXf>& obs,
                      const Eigen::Ref<const Eigen::VectorXf>& noise, Eigen::Ref<Eigen::VectorXf> action) {
    check_single(obs, action);
    detail::check_vector(noise, act_dim_, "Policy::act noise");
    const auto& out = forward(obs);
    const auto log_std = out.tail(act_dim_).array().max(log_std_min_).min(log_std_max_);
    action = detail::scale_to_box((out.head(act_dim_).array() + log_std.exp() * noise.array()).tanh(), low_,
                                  half_range_);
  }

  /// Allocating convenience form of the deterministic act().
  [[nodiscard]] Eigen::VectorXf act(const Eigen::Ref<const Eigen::VectorXf>& obs) {
    Eigen::VectorXf action(act_dim_);
    act(obs, action);
    return action;
  }

  // ---- a batch of observations --------------------------------------------------------------------

  /// Deterministic actions [B, act_dim] for observations [B, obs_dim] (one per row).
  void act_batch(const Eigen::Ref<const RowMatrixXf>& obs, Eigen::Ref<RowMatrixXf> actions) {
    check_batch(obs, actions);
    const auto& out = forward_batch(obs);
    actions = detail::scale_rows_to_box(out.leftCols(act_dim_).array().tanh(), low_, half_range_);
  }

  /// Stochastic actions for a batch, ε drawn row by row (row-major, one std::normal_distribution)
  /// from `rng`.
  template <class URBG>
  void act_batch(const Eigen::Ref<const RowMatrixXf>& obs, Eigen::Ref<RowMatrixXf> actions, URBG& rng) {
    if (batch_noise_.rows() < obs.rows()) batch_noise_.resize(obs.rows(), act_dim_);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    auto eps = batch_noise_.topRows(obs.rows());
    for (Eigen::Index r = 0; r < eps.rows(); ++r) {
      for (int j = 0; j < act_dim_; ++j) eps(r, j) = normal(rng);
    }
    act_batch_with_noise(obs, eps, actions);
  }

  /// Stochastic actions for a batch with the caller's standard-normal draws `noise` [B, act_dim].
  void act_batch_with_noise(const Eigen::Ref<const RowMatrixXf>& obs,
                            const Eigen::Ref<const RowMatrixXf>& noise, Eigen::Ref<RowMatrixXf> actions) {
    check_batch(obs, actions);
    detail::check_rows(noise, obs.rows(), act_dim_, "Policy::act_batch noise");
    const auto& out = forward_batch(obs);
    const auto log_std = out.rightCols(act_dim_).array().max(log_std_min_).min(log_std_max_);
    actions = detail::scale_rows_to_box(
        (out.leftCols(act_dim_).array() + log_std.exp() * noise.array()).tanh(), low_, half_range_);
  }

  /// The raw network output [μ, clamped log σ] for one observation (for inspection and tests).
  [[nodiscard]] Eigen::VectorXf mean_log_std(const Eigen::Ref<const Eigen::VectorXf>& obs) {
    detail::check_vector(obs, obs_dim_, "Policy observation");
    Eigen::VectorXf out = forward(obs);
    out.tail(act_dim_) = out.tail(act_dim_).cwiseMax(log_std_min_).cwiseMin(log_std_max_);
    return out;
  }

 private:
  struct Layer {
    Eigen::MatrixXf weight;   ///< [out, in] as nn::Linear, column-major (for skipping columns)
    RowMatrixXf weight_rows;  ///< the same, row-major (output layer: Eigen's faster kernel for few rows)
    Eigen::VectorXf bias;
    std::vector<int> nonzero;  ///< indices of the non-zero inputs (capacity reserved at load)
    Eigen::VectorXf out;       ///< single-observation activation buffer
    RowMatrixXf batch_out;     ///< batched activation buffer, grows with the batch
  };

  Policy() = default;

  void check_single(const Eigen::Ref<const Eigen::VectorXf>& obs,
                    const Eigen::Ref<Eigen::VectorXf>& action) const {
    detail::check_vector(obs, obs_dim_, "Policy observation");
    if (action.size() != act_dim_) {
      throw ShapeError("Policy action: expected " + std::to_string(act_dim_) + " values, got " +
                       std::to_string(action.size()));
    }
  }

  void check_batch(const Eigen::Ref<const RowMatrixXf>& obs, const Eigen::Ref<RowMatrixXf>& actions) const {
    detail::check_rows(obs, -1, obs_dim_, "Policy observations");
    if (actions.rows() != obs.rows() || actions.cols() != act_dim_) {
      throw ShapeError("Policy actions: expected shape [" + std::to_string(obs.rows()) + ", " +
                       std::to_string(act_dim_) + "], got [" + std::to_string(actions.rows()) + ", " +
                       std::to_string(actions.cols()) + "]");
    }
  }

  /// The MLP of SquashedGaussianActorImpl::forward (before the log σ clamp), matrix-vector form.
  /// Hidden layers after a ReLU skip the weight columns of zero inputs (about half of them: the same
  /// sums without the 0·w terms, and half the weight traffic); the output layer uses the row-major copy.
  const Eigen::VectorXf& forward(const Eigen::Ref<const Eigen::VectorXf>& obs) {
    const std::size_t last = layers_.size() - 1;
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      Layer& layer = layers_[l];
      if (l == 0) {
        layer.out = layer.bias;
        layer.out.noalias() += layer.weight * obs;
      } else if (l == last) {
        layer.out = layer.bias;
        layer.out.noalias() += layer.weight_rows * layers_[l - 1].out;
      } else {
        relu_input_gemv(layer, layers_[l - 1].out);
      }
      if (l < last) layer.out = layer.out.cwiseMax(0.0f);  // ReLU
    }
    return layers_.back().out;
  }

  /// layer.out = b + W x for a ReLU output x: columns j with x_j = 0 are skipped, the rows are
  /// accumulated in register-sized blocks. Falls back to Eigen's dense kernel when few x_j are 0.
  void relu_input_gemv(Layer& layer, const Eigen::VectorXf& x) {
    auto& nz = layer.nonzero;
    nz.clear();
    for (Eigen::Index j = 0; j < x.size(); ++j) {
      if (x[j] != 0.0f) nz.push_back(static_cast<int>(j));
    }
    const auto& w = layer.weight;
    if (4 * nz.size() > 3 * static_cast<std::size_t>(x.size())) {
      layer.out = layer.bias;
      layer.out.noalias() += w * x;
      return;
    }
    const Eigen::Index rows = w.rows();
    Eigen::Index r = 0;
    for (; r + 64 <= rows; r += 64) {
      Eigen::Matrix<float, 64, 1> acc = layer.bias.segment<64>(r);
      for (const int j : nz) acc.noalias() += w.col(j).segment<64>(r) * x[j];
      layer.out.segment<64>(r) = acc;
    }
    for (; r + 16 <= rows; r += 16) {
      Eigen::Matrix<float, 16, 1> acc = layer.bias.segment<16>(r);
      for (const int j : nz) acc.noalias() += w.col(j).segment<16>(r) * x[j];
      layer.out.segment<16>(r) = acc;
    }
    for (; r < rows; ++r) {
      float acc = layer.bias[r];
      for (const int j : nz) acc += w(r, j) * x[j];
      layer.out[r] = acc;
    }
  }

  /// The same for a batch: H_l = ReLU(H_{l−1} W_lᵀ + b_l), rows = samples.
  Eigen::Ref<RowMatrixXf> forward_batch(const Eigen::Ref<const RowMatrixXf>& obs) {
    const Eigen::Index b = obs.rows();
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      Layer& layer = layers_[l];
      if (layer.batch_out.rows() < b) layer.batch_out.resize(b, layer.weight.rows());
      auto h = layer.batch_out.topRows(b);
      h.rowwise() = layer.bias.transpose();
      if (l == 0) {
        h.noalias() += obs * layer.weight.transpose();
      } else {
        h.noalias() += layers_[l - 1].batch_out.topRows(b) * layer.weight.transpose();
      }
      if (l + 1 < layers_.size()) h = h.cwiseMax(0.0f);
    }
    return layers_.back().batch_out.topRows(b);
  }

  int obs_dim_ = 0;
  int act_dim_ = 0;
  float log_std_min_ = -20.0f;
  float log_std_max_ = 2.0f;
  Eigen::VectorXf low_, half_range_;
  std::vector<Layer> layers_;
  Eigen::VectorXf noise_;
  RowMatrixXf batch_noise_;
};

}  // namespace mopo::deploy
