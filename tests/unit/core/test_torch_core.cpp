// Tests of the core utilities that use LibTorch: seeding, Normalizer, runtime facts (BLAS), checks.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <unistd.h>
#include <filesystem>
#include <string>

#include "mopo/core/normalizer.hpp"
#include "mopo/core/random.hpp"
#include "mopo/core/runtime.hpp"
#include "mopo/detail/checks.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

TEST_CASE("LibTorch runs on OpenBLAS (a broken set-up must fail loudly, not run 30x slower)",
          "[unit][core][runtime]") {
  const std::string blas = mopo::blas_library();
  INFO("BLAS mapped into this process: " << (blas.empty() ? "<none>" : blas));
  INFO("fix: scripts/install-deps.sh installs libopenblas0-openmp and pins the libblas.so.3 alternative");
  CHECK(mopo::blas_is_openblas());
  CHECK(blas.find("openblas") != std::string::npos);
}

TEST_CASE("configure_process sets the intra-op thread count", "[unit][core][runtime]") {
  mopo::configure_process({2, true});
  CHECK(at::get_num_threads() == 2);
  mopo::configure_process();
  CHECK(at::get_num_threads() == 1);
}

TEST_CASE("RandomState: same seed, same streams; different seeds or streams differ", "[unit][core][random]") {
  mopo::RandomState a(42), b(42), c(43);
  const auto xa = torch::randn({5}, a.generator());
  const auto xb = torch::randn({5}, b.generator());
  const auto xc = torch::randn({5}, c.generator());
  CHECK(torch::equal(xa, xb));
  CHECK_FALSE(torch::equal(xa, xc));
  CHECK(a.engine()() == b.engine()());
  CHECK(a.seed() == 42);

  const auto s1 = a.spawn(1), s1b = b.spawn(1), s2 = a.spawn(2);
  auto g1 = s1, g1b = s1b, g2 = s2;
  CHECK(torch::equal(torch::rand({4}, g1.generator()), torch::rand({4}, g1b.generator())));
  CHECK_FALSE(torch::equal(torch::rand({4}, s1.spawn(0).generator()), torch::rand({4}, g2.generator())));

  // Generator state round trip reproduces the continuation.
  mopo::RandomState r(7);
  (void)torch::rand({3}, r.generator());
  const auto state = r.generator_state();
  const auto next = torch::rand({3}, r.generator());
  r.set_generator_state(state);
  CHECK(torch::equal(torch::rand({3}, r.generator()), next));

  // seed_global makes module initialisation reproducible.
  a.seed_global();
  const auto w1 = torch::nn::Linear(4, 3)->weight.clone();
  mopo::RandomState(42).seed_global();
  const auto w2 = torch::nn::Linear(4, 3)->weight.clone();
  CHECK(torch::equal(w1, w2));

  const auto idx = a.randint(10, 1000);
  CHECK(idx.min().item<int64_t>() >= 0);
  CHECK(idx.max().item<int64_t>() <= 9);
}

TEST_CASE("Normalizer: fit, transform, inverse, zero-std guard", "[unit][core][normalizer]") {
  mopo::RandomState rng(1);
  auto x = torch::randn({1000, 4}, rng.generator()) * torch::tensor({1.0, 2.0, 0.5, 3.0}) +
           torch::tensor({0.0, -1.0, 5.0, 2.0});
  x.index_put_({torch::indexing::Slice(), 3}, 7.0);  // constant column
  mopo::Normalizer n;
  CHECK_FALSE(n.fitted());
  n.fit(x);
  const auto z = n.transform(x);
  CHECK(z.mean(0).abs().max().item<double>() < 1e-5);
  CHECK(z.index({torch::indexing::Slice(), torch::indexing::Slice(0, 3)})
            .std(0, false)
            .sub(1)
            .abs()
            .max()
            .item<double>() < 1e-4);
  CHECK(n.std()[3].item<double>() == 1.0);  // guarded, not 0
  CHECK(torch::isfinite(z).all().item<bool>());
  CHECK(torch::allclose(n.inverse(z), x, 1e-5, 1e-5));
  // Leading batch dimensions broadcast ([E, B, D]).
  CHECK(n.transform(x.view({10, 100, 4})).sizes().vec() == std::vector<int64_t>({10, 100, 4}));

  CHECK_THROWS_WITH(n.transform(torch::zeros({3, 5})),
                    Contains("Normalizer::transform: expected last dimension 4, got [3, 5] Float"));
  CHECK_THROWS_AS(mopo::Normalizer().transform(x), mopo::ValueError);
  CHECK_THROWS_WITH(mopo::Normalizer().fit(torch::zeros({0, 3})), Contains("no rows"));
  auto bad = x.clone();
  bad[5][1] = std::nan("");
  CHECK_THROWS_WITH(mopo::Normalizer().fit(bad), Contains("NaN or Inf") && Contains("[5, 1]"));
  CHECK_THROWS_AS(mopo::Normalizer().fit(torch::zeros({3})), mopo::ShapeError);
}

TEST_CASE("Normalizer: save/load round trip and bad files", "[unit][core][normalizer]") {
  const auto dir = fs::temp_directory_path() / ("mopo_norm_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  mopo::Normalizer n(torch::tensor({1.0f, 2.0f}), torch::tensor({0.5f, 0.0f}));
  CHECK(n.std()[1].item<float>() == 1.0f);
  n.save(dir / "norm.pt");
  mopo::Normalizer m;
  m.load(dir / "norm.pt");
  CHECK(torch::equal(m.mean(), n.mean()));
  CHECK(torch::equal(m.std(), n.std()));
  CHECK_THROWS_WITH(m.load(dir / "missing.pt"), Contains("missing.pt: no such file"));
  mopo::atomic_write(dir / "garbage.pt", "not a torch archive");
  CHECK_THROWS_AS(m.load(dir / "garbage.pt"), mopo::IoError);
  CHECK_THROWS_WITH(m.load(dir / "garbage.pt"), Contains("garbage.pt"));
  fs::remove_all(dir);
}

TEST_CASE("checks name the tensor and its shape", "[unit][core]") {
  CHECK_THROWS_WITH(mopo::detail::check_shape(torch::zeros({2, 3}), {2, 4}, "obs"),
                    "obs: expected shape [2, 4], got [2, 3] Float");
  CHECK_THROWS_WITH(mopo::detail::check_shape(torch::zeros({2}), {-1, 4}, "act"),
                    "act: expected shape [*, 4], got [2] Float");
  CHECK_NOTHROW(mopo::detail::check_shape(torch::zeros({7, 4}), {-1, 4}, "act"));
  auto t = torch::zeros({2, 2});
  t[1][0] = INFINITY;
  CHECK_THROWS_WITH(mopo::detail::check_finite(t, "rewards"),
                    Contains("rewards: contains NaN or Inf") && Contains("first at index [1, 0]"));
}
