/// @file normalizer.hpp
/// @brief Per-feature standardisation: fit mean/std on data, apply, invert, save/load.
///
/// x̃ = (x − μ) / σ with μ, σ taken over the rows of the fitting data (population std, as numpy's
/// `np.std`, used by the reference implementations' StandardScaler). Features whose σ is below
/// `kMinStd` get σ = 1, so constant inputs pass through centred rather than dividing by zero
/// (OfflineRL-Kit `scaler.py` does the same with 1e-12).
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <sstream>
#include <string>

#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/detail/torch_archive.hpp"

namespace mopo {

class Normalizer {
 public:
  /// Standard deviations below this are replaced by 1.
  static constexpr double kMinStd = 1e-12;

  Normalizer() = default;
  /// From known statistics (both [D]).
  Normalizer(torch::Tensor mean, torch::Tensor std) { set(std::move(mean), std::move(std)); }

  /// Fits μ and σ over the rows of `x` [N, D] (N ≥ 1). @throws ShapeError / ValueError.
  void fit(const torch::Tensor& x) {
    detail::check_shape(x, {-1, -1}, "Normalizer::fit input");
    if (x.size(0) == 0)
      throw ValueError("Normalizer::fit input: no rows (shape " + detail::describe(x) + ")");
    detail::check_finite(x, "Normalizer::fit input");
    torch::NoGradGuard no_grad;
    const auto xd = x.to(torch::kFloat64);
    auto mean = xd.mean(0);
    auto std = xd.std(0, /*unbiased=*/false);
    std = torch::where(std < kMinStd, torch::ones_like(std), std);
    mean_ = mean.to(x.scalar_type());
    std_ = std.to(x.scalar_type());
  }

  /// Sets μ and σ directly ([D] each, σ > 0 after the kMinStd guard).
  void set(torch::Tensor mean, torch::Tensor std) {
    detail::check_shape(mean, {-1}, "Normalizer mean");
    detail::check_shape(std, {mean.size(0)}, "Normalizer std");
    detail::check_finite(mean, "Normalizer mean");
    detail::check_finite(std, "Normalizer std");
    if ((std < 0).any().item<bool>()) throw ValueError("Normalizer std: negative entries");
    mean_ = mean.detach().clone();
    std_ = torch::where(std < kMinStd, torch::ones_like(std), std).detach().clone();
  }

  [[nodiscard]] bool fitted() const { return mean_.defined(); }
  [[nodiscard]] int64_t dim() const { return fitted() ? mean_.size(0) : 0; }
  [[nodiscard]] const torch::Tensor& mean() const { return mean_; }
  [[nodiscard]] const torch::Tensor& std() const { return std_; }

  /// (x − μ) / σ over the last dimension of `x` [..., D]. Differentiable in x.
  [[nodiscard]] torch::Tensor transform(const torch::Tensor& x) const {
    check_input(x, "Normalizer::transform");
    return (x - mean_.to(x.options())) / std_.to(x.options());
  }

  /// x · σ + μ, the inverse of transform().
  [[nodiscard]] torch::Tensor inverse(const torch::Tensor& x) const {
    check_input(x, "Normalizer::inverse");
    return x * std_.to(x.options()) + mean_.to(x.options());
  }

  /// Moves the statistics to a device / dtype.
  void to(const torch::TensorOptions& options) {
    if (!fitted()) return;
    mean_ = mean_.to(options);
    std_ = std_.to(options);
  }

  /// Writes μ and σ into an archive (for embedding in a model checkpoint).
  void save(torch::serialize::OutputArchive& archive, const std::string& prefix = "normalizer") const {
    if (!fitted()) throw ValueError(prefix + ": cannot save an unfitted Normalizer");
    archive.write(prefix + ".mean", mean_.cpu(), /*is_buffer=*/true);
    archive.write(prefix + ".std", std_.cpu(), /*is_buffer=*/true);
  }

  /// Reads μ and σ written by save(archive, prefix).
  void load(torch::serialize::InputArchive& archive, const std::string& prefix = "normalizer") {
    torch::Tensor mean, std;
    if (!archive.try_read(prefix + ".mean", mean) || !archive.try_read(prefix + ".std", std)) {
      throw IoError("Normalizer: archive has no key " + prefix + ".mean / " + prefix + ".std");
    }
    detail::check_storage(mean, prefix + ".mean");
    detail::check_storage(std, prefix + ".std");
    set(mean, std);
  }

  /// Saves to a file atomically. @throws IoError naming the file.
  void save(const std::filesystem::path& file) const {
    torch::serialize::OutputArchive archive;
    save(archive);
    std::ostringstream os;
    archive.save_to(os);
    atomic_write(file, os.str());
  }

  /// Loads from a file written by save(file). @throws IoError naming the file.
  void load(const std::filesystem::path& file) {
    torch::serialize::InputArchive archive;
    detail::read_torch_archive(archive, file.string(), "not a mopo Normalizer file");
    try {
      load(archive);
    } catch (const Error& e) {
      throw IoError(file.string() + ": " + e.what());
    } catch (const std::exception& e) {
      throw IoError(file.string() + ": " + detail::torch_message(e));
    }
  }

 private:
  void check_input(const torch::Tensor& x, const char* what) const {
    if (!fitted()) throw ValueError(std::string(what) + ": Normalizer is not fitted");
    if (!x.defined() || x.dim() < 1 || x.size(-1) != mean_.size(0)) {
      throw ShapeError(std::string(what) + ": expected last dimension " + std::to_string(mean_.size(0)) +
                       ", got " + detail::describe(x));
    }
  }

  torch::Tensor mean_;
  torch::Tensor std_;
};

}  // namespace mopo
