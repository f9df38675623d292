// Tests of the inference part of the dynamics ensemble (models/ensemble_inference.hpp,
// ensemble_prediction.hpp): the fast predict path against predict_reference, predict_into's buffer
// reuse, and sample_prediction.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cmath>

#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/models/ensemble_prediction.hpp"
#include "mopo/models/gaussian_ensemble.hpp"
#include "support/synthetic_dynamics.hpp"

using mopo::models::EnsembleTrainOptions;
using mopo::models::GaussianEnsemble;
using namespace mopo::testing;  // kObs, kAct, make_data, small_ensemble_options, …

TEST_CASE("GaussianEnsemble fast predict equals the plain module path; predict_into reuses buffers",
          "[unit][models]") {
  mopo::seed_global(31);
  const auto data = make_data(500, 32);
  auto options = small_ensemble_options();
  options.inference_chunk_rows = 37;  // several chunks and a ragged tail
  options.parallel_chunks = true;     // exercised below with two threads
  GaussianEnsemble model(kObs, kAct, options);
  EnsembleTrainOptions train;
  train.max_epochs = 3;
  model.fit(data.obs, data.act, data.next_obs, data.rew, train);
  const auto fast = model.predict(data.obs, data.act);
  const auto ref = model.predict_reference(data.obs, data.act);
  CHECK(torch::allclose(fast.mean, ref.mean, 1e-5, 1e-5));
  CHECK(torch::allclose(fast.std, ref.std, 1e-5, 1e-6));
  CHECK_FALSE(fast.mean.requires_grad());
  // Two threads: whole chunks run in parallel, one workspace slot per thread; same numbers.
  const int threads_before = at::get_num_threads();
  at::set_num_threads(2);
  const auto parallel = model.predict(data.obs, data.act);
  at::set_num_threads(threads_before);
  CHECK(torch::allclose(parallel.mean, ref.mean, 1e-5, 1e-5));
  CHECK(torch::allclose(parallel.std, ref.std, 1e-5, 1e-6));
  // std stays within the soft-clamped bounds.
  CHECK(fast.std.max().item<double>() <=
        std::exp(0.5 * model.network()->max_logvar.max().item<double>()) + 1e-6);

  mopo::models::EnsemblePrediction out;
  model.predict_into(data.obs, data.act, out);
  const auto* ptr = out.mean.data_ptr<float>();
  model.predict_into(data.obs, data.act, out);
  CHECK(out.mean.data_ptr<float>() == ptr);
  CHECK(torch::equal(out.mean, fast.mean));
  // Float64 inputs are accepted (converted to the model's dtype).
  CHECK(torch::allclose(model.predict(data.obs.to(torch::kFloat64), data.act.to(torch::kFloat64)).mean,
                        fast.mean));
  // Empty batch.
  CHECK(model.predict(torch::zeros({0, kObs}), torch::zeros({0, kAct})).mean.size(1) == 0);
}

TEST_CASE("sample_prediction draws only elites, uniformly, from their Gaussians", "[unit][models]") {
  const int64_t e = 4, b = 20000;
  auto mean = torch::zeros({e, b, 3});
  for (int64_t i = 0; i < e; ++i) mean[i].fill_(static_cast<double>(i));
  mopo::models::EnsemblePrediction pred{mean, torch::zeros({e, b, 3})};
  mopo::RandomState rng(9);
  const auto s = mopo::models::sample_prediction(pred, {1, 3}, rng.generator());
  CHECK(torch::equal(s.next_obs.select(1, 0), s.member.to(torch::kFloat)));
  CHECK(torch::equal(s.reward, s.member.to(torch::kFloat)));
  const double frac3 = (s.member == 3).to(torch::kDouble).mean().item<double>();
  CHECK(((s.member == 1) | (s.member == 3)).all().item<bool>());
  CHECK(frac3 == Approx(0.5).margin(0.02));
  // With noise: draws have the member's std.
  pred.std = torch::full({e, b, 3}, 0.5);
  const auto noisy = mopo::models::sample_prediction(pred, {2}, rng.generator());
  CHECK((noisy.next_obs - 2.0).std().item<double>() == Approx(0.5).epsilon(0.03));
  const auto det = mopo::models::sample_prediction(pred, {2}, rng.generator(), /*deterministic=*/true);
  CHECK(torch::all(det.next_obs == 2.0).item<bool>());
  CHECK_THROWS_AS(mopo::models::sample_prediction(pred, {}, rng.generator()), mopo::ValueError);
  CHECK_THROWS_AS(mopo::models::sample_prediction(pred, {4}, rng.generator()), mopo::ValueError);
}
