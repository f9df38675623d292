/// @file dynamics.hpp
/// @brief mopo::deploy::DynamicsEnsemble: a trained GaussianEnsemble evaluated with Eigen, without
/// LibTorch — per-member Gaussian predictions, MOPO's model step and the MaxStd uncertainty, for a
/// model-predictive controller or a safety monitor.
///
/// It computes what models::GaussianEnsemble::predict computes (ensemble_inference.hpp, predict_into):
/// x = ([obs, act] − μ_in) / σ_in (Normalizer::transform); per member h = swish(h W_l + b_l) for the
/// hidden layers (swish = h·sigmoid(h), fc.py); mean = h W_μ + b_μ; logvar = soft clamp of h W_ℓ + b_ℓ
/// to the learned bounds (max − softplus(max − ℓ), then min + softplus(· − min); bnn.py);
/// std = exp(logvar / 2); mean[:obs_dim] += obs (the model predicts Δobs). sample() is MOPO's model step
/// (models::sample_prediction; original fake_env.py): one elite per row drawn uniformly, then
/// y = mean + std ⊙ ε. max_std() is penalty::MaxStd: u = max_i ‖σ_i‖₂ over all members and outputs.
///
/// Example:
/// @code
/// auto model = mopo::deploy::DynamicsEnsemble::load("halfcheetah.dynamics.mopo");
/// mopo::deploy::Prediction pred;
/// model.predict(obs, act, pred);                 // obs [B, O], act [B, A] (RowMatrixXf)
/// Eigen::VectorXf u = mopo::deploy::max_std(pred);    // [B]
/// mopo::deploy::ModelStep step;
/// model.sample(pred, rng, step);                 // step.next_obs [B, O], step.reward [B]
/// @endcode
///
/// Single-threaded; not thread-safe (it reuses its work buffers): one object per thread.
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
#include "mopo/deploy/policy.hpp"

namespace mopo::deploy {

/// Per-member Gaussian prediction of [next_obs, reward] in raw units. Row e·B + b of `mean` / `std`
/// is member e's prediction for input row b (the memory order of LibTorch's [E, B, D] tensors).
struct Prediction {
  RowMatrixXf mean;  ///< [E·B, D], D = obs_dim + 1
  RowMatrixXf std;   ///< [E·B, D], σ = exp(logvar / 2)
  Eigen::Index ensemble_size = 0;
  Eigen::Index batch_size = 0;

  /// Member e's means [B, D] (a view).
  [[nodiscard]] auto member_mean(Eigen::Index e) const { return mean.middleRows(e * batch_size, batch_size); }
  /// Member e's standard deviations [B, D] (a view).
  [[nodiscard]] auto member_std(Eigen::Index e) const { return std.middleRows(e * batch_size, batch_size); }
};

/// One sampled model transition per row (models::EnsembleSample).
struct ModelStep {
  RowMatrixXf next_obs;     ///< [B, O]
  Eigen::VectorXf reward;   ///< [B]
  std::vector<int> member;  ///< [B]: the elite each row was drawn from
};

/// penalty::MaxStd on a prediction: u_b = max_i ‖σ_i(s_b, a_b)‖₂ over all members, every output
/// dimension (max_std.hpp; original `np.amax(np.linalg.norm(stds, axis=2), axis=0)`). Writes [B].
inline void max_std(const Prediction& pred, Eigen::Ref<Eigen::VectorXf> out) {
  if (out.size() != pred.batch_size) {
    throw ShapeError("max_std: output has " + std::to_string(out.size()) + " values, batch is " +
                     std::to_string(pred.batch_size));
  }
  out.setZero();
  for (Eigen::Index e = 0; e < pred.ensemble_size; ++e) {
    out = out.cwiseMax(pred.member_std(e).rowwise().norm());
  }
}

/// Allocating form of max_std().
[[nodiscard]] inline Eigen::VectorXf max_std(const Prediction& pred) {
  Eigen::VectorXf out(pred.batch_size);
  max_std(pred, out);
  return out;
}

/// A deployed dynamics ensemble (file written by deploy::export_dynamics, format "mopo.deploy.dynamics").
class DynamicsEnsemble {
 public:
  /// Rows per internal block of predict(): the activations of one block stay in cache.
  static constexpr Eigen::Index kDefaultBlockRows = 1024;

  /// Reads an export. @throws IoError naming the file (missing, truncated, corrupted, other version,
  /// inconsistent sizes, invalid elites or normaliser).
  static DynamicsEnsemble load(const std::filesystem::path& file) {
    const auto bundle = detail::read_bundle(file, kDynamicsFormat);
    const detail::BundleReader in(bundle, file);
    DynamicsEnsemble m;
    m.obs_dim_ = in.field<int>("obs_dim");
    m.act_dim_ = in.field<int>("act_dim");
    m.ensemble_size_ = in.field<int>("ensemble_size");
    const auto hidden = in.field<std::vector<int>>("hidden");
    m.elites_ = in.field<std::vector<int>>("elites");
    if (in.field<std::string>("activation") != "swish") throw in.error("unsupported hidden activation");
    if (m.obs_dim_ < 1 || m.act_dim_ < 1 || m.ensemble_size_ < 1 || hidden.empty()) {
      throw in.error("obs_dim, act_dim, ensemble_size must be >= 1 and hidden non-empty");
    }
    if (m.elites_.empty()) throw in.error("empty elite list");
    for (std::size_t i = 0; i < m.elites_.size(); ++i) {
      const int e = m.elites_[i];
      if (e < 0 || e >= m.ensemble_size_ ||
          std::find(m.elites_.begin(), m.elites_.begin() + static_cast<std::ptrdiff_t>(i), e) !=
              m.elites_.begin() + static_cast<std::ptrdiff_t>(i)) {
        throw in.error("invalid or duplicate elite index " + std::to_string(e) + " (ensemble_size " +
                       std::to_string(m.ensemble_size_) + ")");
      }
    }
    const int in_dim = m.obs_dim_ + m.act_dim_;
    const int d = m.obs_dim_ + 1;
    const int e_n = m.ensemble_size_;
    m.in_mean_ = Eigen::Map<const Eigen::RowVectorXf>(in.array("input_mean", {in_dim}).data(), in_dim);
    m.in_std_ = Eigen::Map<const Eigen::RowVectorXf>(in.array("input_std", {in_dim}).data(), in_dim);
    if ((m.in_std_.array() <= 0.0f).any()) throw in.error("input_std must be > 0");
    m.max_logvar_ = Eigen::Map<const Eigen::RowVectorXf>(in.array("max_logvar", {d}).data(), d);
    m.min_logvar_ = Eigen::Map<const Eigen::RowVectorXf>(in.array("min_logvar", {d}).data(), d);
    m.members_.resize(static_cast<std::size_t>(e_n));
    int width_in = in_dim;
    for (std::size_t l = 0; l <= hidden.size(); ++l) {
      const bool head = l == hidden.size();
      const int width_out = head ? 2 * d : hidden[l];
      if (width_out < 1) throw in.error("hidden[" + std::to_string(l) + "] must be >= 1");
      // EnsembleLinear: weight [E, in, out], bias [E, 1, out] (exported as [E, out]).
      std::vector<const std::vector<float>*> w, b;
      if (!head) {
        w.push_back(&in.array("hidden" + std::to_string(l) + ".weight", {e_n, width_in, width_out}));
        b.push_back(&in.array("hidden" + std::to_string(l) + ".bias", {e_n, width_out}));
      } else {  // mean and log-variance heads side by side: one [H, 2D] product per member
        w.push_back(&in.array("mean_head.weight", {e_n, width_in, d}));
        w.push_back(&in.array("logvar_head.weight", {e_n, width_in, d}));
        b.push_back(&in.array("mean_head.bias", {e_n, d}));
        b.push_back(&in.array("logvar_head.bias", {e_n, d}));
      }
      const int part = head ? d : width_out;
      for (int e = 0; e < e_n; ++e) {
        Member::Layer layer;
        layer.weight.resize(width_in, width_out);
        layer.bias.resize(width_out);
        for (std::size_t k = 0; k < w.size(); ++k) {
          const auto offset = static_cast<std::ptrdiff_t>(e) * width_in * part;
          layer.weight.middleCols(static_cast<Eigen::Index>(k) * part, part) =
              Eigen::Map<const RowMatrixXf>(w[k]->data() + offset, width_in, part);
          layer.bias.segment(static_cast<Eigen::Index>(k) * part, part) =
              Eigen::Map<const Eigen::RowVectorXf>(b[k]->data() + static_cast<std::ptrdiff_t>(e) * part,
                                                   part);
        }
        m.members_[static_cast<std::size_t>(e)].layers.push_back(std::move(layer));
      }
      width_in = width_out;
    }
    m.hidden_ = hidden;
    m.set_block_rows(kDefaultBlockRows);
    return m;
  }

  [[nodiscard]] int obs_dim() const { return obs_dim_; }
  [[nodiscard]] int act_dim() const { return act_dim_; }
  [[nodiscard]] int output_dim() const { return obs_dim_ + 1; }
  [[nodiscard]] int ensemble_size() const { return ensemble_size_; }
  [[nodiscard]] const std::vector<int>& elites() const { return elites_; }
  [[nodiscard]] const std::vector<int>& hidden() const { return hidden_; }

  /// Rows per internal block (memory/cache trade-off; results do not depend on it).
  void set_block_rows(Eigen::Index rows) {
    if (rows < 1)
      throw ValueError("DynamicsEnsemble::set_block_rows: must be >= 1, got " + std::to_string(rows));
    block_rows_ = rows;
    const int widest = std::max(*std::max_element(hidden_.begin(), hidden_.end()), 2 * output_dim());
    x_.resize(rows, obs_dim_ + act_dim_);
    h0_.resize(rows, widest);
    h1_.resize(rows, widest);
  }

  /// Per-member mean and std of [next_obs, reward] for obs [B, O] and act [B, A]. `out` is resized only
  /// when its shape changes, so a loop with a fixed batch allocates nothing.
  /// @throws ShapeError (sizes), ValueError (NaN/Inf inputs).
  void predict(const Eigen::Ref<const RowMatrixXf>& obs, const Eigen::Ref<const RowMatrixXf>& act,
               Prediction& out) {
    detail::check_rows(obs, -1, obs_dim_, "DynamicsEnsemble observations");
    detail::check_rows(act, obs.rows(), act_dim_, "DynamicsEnsemble actions");
    const Eigen::Index b = obs.rows();
    const Eigen::Index d = output_dim();
    const Eigen::Index total = static_cast<Eigen::Index>(ensemble_size_) * b;
    if (out.mean.rows() != total || out.mean.cols() != d) out.mean.resize(total, d);
    if (out.std.rows() != total || out.std.cols() != d) out.std.resize(total, d);
    out.ensemble_size = ensemble_size_;
    out.batch_size = b;
    for (Eigen::Index r0 = 0; r0 < b; r0 += block_rows_) {
      const Eigen::Index c = std::min(block_rows_, b - r0);
      auto x = x_.topRows(c);
      x.leftCols(obs_dim_) = obs.middleRows(r0, c);
      x.rightCols(act_dim_) = act.middleRows(r0, c);
      // Normalizer::transform: (x − μ) / σ.
      x = ((x.rowwise() - in_mean_).array().rowwise() / in_std_.array()).matrix();
      for (int e = 0; e < ensemble_size_; ++e) {
        const auto& layers = members_[static_cast<std::size_t>(e)].layers;
        const RowMatrixXf* src = &x_;
        for (std::size_t l = 0; l < layers.size(); ++l) {
          RowMatrixXf& dst = (l % 2 == 0) ? h0_ : h1_;
          const auto& layer = layers[l];
          const Eigen::Index width = layer.weight.cols();
          auto h = dst.topLeftCorner(c, width);
          h.rowwise() = layer.bias;
          h.noalias() += src->topLeftCorner(c, layer.weight.rows()) * layer.weight;
          if (l + 1 < layers.size()) {
            h.array() *= ((-h.array()).exp() + 1.0f).inverse();  // swish h·sigmoid(h) (torch::silu)
          }
          src = &dst;
        }
        const auto head = src->topLeftCorner(c, 2 * d);
        const Eigen::Index row = static_cast<Eigen::Index>(e) * b + r0;
        auto mean = out.mean.middleRows(row, c);
        mean = head.leftCols(d);
        mean.leftCols(obs_dim_) += obs.middleRows(r0, c);  // next_obs = obs + Δobs
        auto sd = out.std.middleRows(row, c);
        // Soft clamp (bnn.py): lv = max − softplus(max − ℓ); lv = min + softplus(lv − min).
        sd = (-head.rightCols(d)).rowwise() + max_logvar_;
        softplus_(sd);
        sd = (-sd).rowwise() + max_logvar_;
        sd.rowwise() -= min_logvar_;
        softplus_(sd);
        sd.rowwise() += min_logvar_;
        sd = (sd.array() * 0.5f).exp().matrix();  // σ = exp(logvar / 2)
      }
    }
  }

  /// MOPO's model step on a prediction: per row an elite drawn uniformly from elites() with `rng`, then
  /// next_obs, reward = mean + std ⊙ ε, ε ~ N(0, I) (or the mean when `deterministic`).
  template <class URBG>
  void sample(const Prediction& pred, URBG& rng, ModelStep& out, bool deterministic = false) const {
    if (pred.ensemble_size != ensemble_size_ || pred.mean.cols() != output_dim() ||
        pred.mean.rows() != pred.ensemble_size * pred.batch_size || pred.std.rows() != pred.mean.rows() ||
        pred.std.cols() != pred.mean.cols()) {
      throw ShapeError("DynamicsEnsemble::sample: prediction of shape [" + std::to_string(pred.mean.rows()) +
                       ", " + std::to_string(pred.mean.cols()) + "] does not match " +
                       std::to_string(ensemble_size_) + " members × " + std::to_string(output_dim()) +
                       " outputs");
    }
    const Eigen::Index b = pred.batch_size;
    if (out.next_obs.rows() != b || out.next_obs.cols() != obs_dim_) out.next_obs.resize(b, obs_dim_);
    if (out.reward.size() != b) out.reward.resize(b);
    out.member.resize(static_cast<std::size_t>(b));
    std::uniform_int_distribution<std::size_t> pick(0, elites_.size() - 1);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (Eigen::Index r = 0; r < b; ++r) {
      const int member = elites_[pick(rng)];
      out.member[static_cast<std::size_t>(r)] = member;
      const Eigen::Index row = member * b + r;
      for (int j = 0; j <= obs_dim_; ++j) {
        float y = pred.mean(row, j);
        if (!deterministic) y += pred.std(row, j) * normal(rng);
        if (j < obs_dim_) {
          out.next_obs(r, j) = y;
        } else {
          out.reward[r] = y;
        }
      }
    }
  }

  /// predict() then sample() into caller-held buffers.
  template <class URBG>
  void sample(const Eigen::Ref<const RowMatrixXf>& obs, const Eigen::Ref<const RowMatrixXf>& act, URBG& rng,
              Prediction& pred, ModelStep& out, bool deterministic = false) {
    predict(obs, act, pred);
    sample(pred, rng, out, deterministic);
  }

 private:
  struct Member {
    struct Layer {
      RowMatrixXf weight;  ///< [in, out] (EnsembleLinear's per-member layout)
      Eigen::RowVectorXf bias;
    };
    std::vector<Layer> layers;  ///< hidden layers, then the fused [mean | logvar] head
  };

  DynamicsEnsemble() = default;

  /// torch::softplus in place (β = 1, threshold 20): x for x > 20, else log(1 + eˣ).
  template <class BlockT>
  static void softplus_(BlockT&& x) {
    auto a = x.array();
    a = (a > 20.0f).select(a, a.exp().log1p());
  }

  int obs_dim_ = 0;
  int act_dim_ = 0;
  int ensemble_size_ = 0;
  std::vector<int> hidden_;
  std::vector<int> elites_;
  Eigen::RowVectorXf in_mean_, in_std_, max_logvar_, min_logvar_;
  std::vector<Member> members_;
  Eigen::Index block_rows_ = kDefaultBlockRows;
  RowMatrixXf x_, h0_, h1_;
};

}  // namespace mopo::deploy
