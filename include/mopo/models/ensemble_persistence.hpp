/// @file ensemble_persistence.hpp
/// @brief The persistence part of GaussianEnsemble (declared in gaussian_ensemble.hpp): save() and load().
///
/// The file is one LibTorch archive, written atomically (mopo::atomic_write), format tag
/// "mopo.GaussianEnsemble.v1": `network` (GaussianEnsembleNet's parameters and buffers: weights, biases,
/// max/min log-variance, spectral-norm vectors), `normalizer.mean` / `normalizer.std`, `elites` (int64),
/// `obs_dim`, `act_dim` and `options` (EnsembleOptions as JSON). load() checks the tag, that the file is
/// large enough for the weights its dims imply (before allocating them), every tensor's shape, dtype,
/// storage and finiteness, and throws IoError naming the file. docs/ensemble.md, "Save / load".
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "mopo/config/json_config.hpp"
#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/detail/checks.hpp"
#include "mopo/detail/torch_archive.hpp"
#include "mopo/models/ensemble_options.hpp"
#include "mopo/models/gaussian_ensemble.hpp"

namespace mopo::models {

namespace detail {
/// What a file GaussianEnsemble::load cannot read is called in its IoError.
inline constexpr const char* kNotAnEnsemble = "not a mopo GaussianEnsemble file";
}  // namespace detail

inline void GaussianEnsemble::save(const std::filesystem::path& file) const {
  require_trained("GaussianEnsemble::save");
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive net_archive;
  net().save(net_archive);
  archive.write("network", net_archive);
  normalizer_.save(archive, "normalizer");
  archive.write("format", c10::IValue(std::string(kFormat)));
  archive.write("obs_dim", c10::IValue(obs_dim_));
  archive.write("act_dim", c10::IValue(act_dim_));
  archive.write("options", c10::IValue(config::to_json(options_).dump()));
  archive.write("elites", torch::tensor(elites_, torch::kLong), /*is_buffer=*/true);
  std::ostringstream os;
  archive.save_to(os);
  atomic_write(file, os.str());
}

inline GaussianEnsemble GaussianEnsemble::load(const std::filesystem::path& file) {
  torch::serialize::InputArchive archive;
  mopo::detail::read_torch_archive(archive, file.string(), detail::kNotAnEnsemble);
  return from_archive(archive, file.string(), /*file_bytes=*/std::filesystem::file_size(file));
}

inline GaussianEnsemble GaussianEnsemble::load(const char* data, std::size_t size, const std::string& name) {
  torch::serialize::InputArchive archive;
  mopo::detail::read_torch_archive(archive, name, detail::kNotAnEnsemble, data, size);
  return from_archive(archive, name, size);
}

inline GaussianEnsemble GaussianEnsemble::from_archive(torch::serialize::InputArchive& archive,
                                                       const std::string& file, std::uintmax_t file_bytes) {
  try {
    c10::IValue format, obs_dim, act_dim, options_text;
    if (!archive.try_read("format", format) || !format.isString() || format.toStringRef() != kFormat) {
      throw IoError("missing or unknown format tag (expected " + std::string(kFormat) + ")");
    }
    if (!archive.try_read("obs_dim", obs_dim) || !archive.try_read("act_dim", act_dim) ||
        !archive.try_read("options", options_text) || !obs_dim.isInt() || !act_dim.isInt() ||
        !options_text.isString()) {
      throw IoError("missing obs_dim / act_dim / options");
    }
    EnsembleOptions options;
    config::from_json(config::parse(options_text.toStringRef(), "options"), options);
    // The file stores every float32 weight uncompressed, so dims and hidden sizes that need more bytes
    // than it has are corrupt; checked before the network is allocated (a damaged obs_dim of 10^12 would
    // otherwise ask for terabytes).
    const double in = static_cast<double>(obs_dim.toInt()) + static_cast<double>(act_dim.toInt());
    double weights = 0;
    double width = in;
    for (const auto h : options.hidden)
      weights += width * static_cast<double>(h), width = static_cast<double>(h);
    weights += width * (static_cast<double>(obs_dim.toInt()) + 1);
    weights *= static_cast<double>(options.ensemble_size);
    if (obs_dim.toInt() >= 1 && act_dim.toInt() >= 1 && 4 * weights > static_cast<double>(file_bytes)) {
      throw IoError("obs_dim " + std::to_string(obs_dim.toInt()) + ", act_dim " +
                    std::to_string(act_dim.toInt()) + " and options need " + std::to_string(4 * weights) +
                    " bytes of weights, the file has " + std::to_string(file_bytes));
    }
    GaussianEnsemble model(obs_dim.toInt(), act_dim.toInt(), options);
    // Module::load copies tensors without checking shapes: record them and compare afterwards.
    std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
    for (const auto& p : model.net().named_parameters())
      expected.emplace_back(p.key(), p.value().sizes().vec());
    for (const auto& p : model.net().named_buffers()) expected.emplace_back(p.key(), p.value().sizes().vec());
    torch::serialize::InputArchive net_archive;
    if (!archive.try_read("network", net_archive)) throw IoError("missing network");
    model.net().load(net_archive);
    const auto params = model.net().named_parameters();
    const auto buffers = model.net().named_buffers();
    for (const auto& [name, sizes] : expected) {
      const auto* t = params.find(name);
      if (t == nullptr) t = buffers.find(name);
      // The dtype too: Module::load also replaces a float32 parameter by a tensor of another dtype.
      if (t == nullptr || t->sizes().vec() != sizes || t->scalar_type() != torch::kFloat32) {
        throw IoError("tensor network." + name + " is " + (t ? mopo::detail::describe(*t) : "<missing>") +
                      ", expected float32 of shape " + c10::str(c10::IntArrayRef(sizes)));
      }
      mopo::detail::check_storage(*t, "tensor network." + name);
      mopo::detail::check_finite(*t, "tensor network." + name);
    }
    model.normalizer_.load(archive, "normalizer");
    if (model.normalizer_.dim() != model.input_dim()) throw IoError("normaliser dimension mismatch");
    torch::Tensor elites;
    if (!archive.try_read("elites", elites, /*is_buffer=*/true)) throw IoError("missing elites");
    mopo::detail::check_storage(elites, "elites");
    const auto el = elites.to(torch::kLong).contiguous();
    model.set_elites(std::vector<int64_t>(el.data_ptr<int64_t>(), el.data_ptr<int64_t>() + el.numel()));
    model.net().eval();
    return model;
  } catch (const IoError& err) {
    throw IoError(file + ": " + err.what());
  } catch (const Error& err) {
    throw IoError(file + ": " + err.what());
  } catch (const std::exception& err) {  // c10::Error, torch::jit::ErrorReport
    throw IoError(file + ": " + mopo::detail::torch_message(err));
  }
}

}  // namespace mopo::models
