// Tests of mopo::rollout::ReplayBuffer, mopo::rollout::sample_mixed (over replay buffers, a dataset and a
// RolloutBuffer) and mopo::Batch.
#include <torch/torch.h>  // before Catch: glog's CHECK must not replace Catch's
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "mopo/core/types.hpp"
#include "mopo/data/transition_dataset.hpp"
#include "mopo/rollout/replay_buffer.hpp"
#include "mopo/rollout/rollout_buffer.hpp"

using mopo::Batch;
using mopo::rollout::ReplayBuffer;

namespace {
void add_marked(ReplayBuffer& b, double mark) {
  b.add(std::vector<double>(static_cast<std::size_t>(b.obs_dim()), mark),
        std::vector<double>(static_cast<std::size_t>(b.act_dim()), mark / 10), mark,
        std::vector<double>(2, -mark), static_cast<int64_t>(mark) % 2 == 1);
}
Batch marked_batch(int64_t n, double first_mark) {
  const auto m = torch::arange(first_mark, first_mark + static_cast<double>(n));
  return {m.unsqueeze(1).repeat({1, 2}), (m / 10).unsqueeze(1), m.clone(), -m.unsqueeze(1).repeat({1, 2}),
          torch::fmod(m, 2)};
}
}  // namespace

TEST_CASE("the ring buffer stores rows and evicts the oldest", "[unit][agents][buffer]") {
  ReplayBuffer b(3, 2, 1);
  CHECK(b.empty());
  for (int i = 0; i < 5; ++i) add_marked(b, i);
  CHECK(b.size() == 3);
  CHECK(b.next_index() == 2);
  const auto s = b.stored();
  // Rows 0 and 1 were overwritten by marks 3 and 4; row 2 keeps mark 2.
  CHECK(s.rewards[0].item<float>() == 3.0f);
  CHECK(s.rewards[1].item<float>() == 4.0f);
  CHECK(s.rewards[2].item<float>() == 2.0f);
  CHECK(s.observations[1][0].item<float>() == 4.0f);
  CHECK(s.actions[1][0].item<float>() == Approx(0.4f));
  CHECK(s.next_observations[1][1].item<float>() == -4.0f);
  CHECK(s.terminals[0].item<float>() == 1.0f);
  CHECK(s.terminals[1].item<float>() == 0.0f);
  b.clear();
  CHECK(b.size() == 0);
}

TEST_CASE("adding batches wraps around and keeps the newest rows", "[unit][agents][buffer]") {
  ReplayBuffer b(5, 2, 1);
  b.add(marked_batch(3, 0));
  b.add(marked_batch(4, 3));  // wraps: marks 3,4 at rows 3,4; 5,6 at rows 0,1
  CHECK(b.size() == 5);
  CHECK(b.next_index() == 2);
  auto r = b.stored().rewards;
  CHECK(r[0].item<float>() == 5.0f);
  CHECK(r[1].item<float>() == 6.0f);
  CHECK(r[2].item<float>() == 2.0f);
  CHECK(r[4].item<float>() == 4.0f);
  b.add(marked_batch(12, 100));  // larger than capacity: only the last 5 rows (marks 107..111) remain
  r = b.stored().rewards;
  CHECK(r.min().item<float>() == 107.0f);
  CHECK(r.max().item<float>() == 111.0f);
}

TEST_CASE("sampling is uniform, seeded and returns stored rows", "[unit][agents][buffer]") {
  ReplayBuffer b(100, 2, 1);
  b.add(marked_batch(10, 0));
  mopo::RandomState r1(5), r2(5);
  const auto x = b.sample(20000, r1);
  const auto y = b.sample(20000, r2);
  CHECK(torch::equal(x.rewards, y.rewards));
  CHECK(x.observations.sizes() == torch::IntArrayRef({20000, 2}));
  CHECK(x.terminals.sizes() == torch::IntArrayRef({20000}));
  // Only the 10 stored rows, each consistent across fields, each ~2000 times.
  CHECK(x.rewards.min().item<float>() == 0.0f);
  CHECK(x.rewards.max().item<float>() == 9.0f);
  CHECK(torch::equal(x.observations.select(1, 0), x.rewards));
  CHECK(torch::equal(x.next_observations.select(1, 1), -x.rewards));
  const auto counts = torch::bincount(x.rewards.to(torch::kLong));
  CHECK(counts.min().item<int64_t>() > 1800);
  CHECK(counts.max().item<int64_t>() < 2200);
}

TEST_CASE("sample_mixed draws the requested split from two buffers", "[unit][agents][buffer]") {
  ReplayBuffer real(50, 2, 1), model(50, 2, 1);
  real.add(marked_batch(10, 1000));
  model.add(marked_batch(10, 0));
  mopo::RandomState rng(1);
  const auto b = mopo::rollout::sample_mixed(real, model, 256, 0.05, rng);
  REQUIRE(b.size() == 256);
  // OfflineRL-Kit: int(256 · 0.05) = 12 real rows, first.
  CHECK((b.rewards >= 1000).sum().item<int64_t>() == 12);
  CHECK((b.rewards.narrow(0, 0, 12) >= 1000).all().item<bool>());
  CHECK(mopo::rollout::sample_mixed(real, model, 10, 1.0, rng).rewards.min().item<float>() >= 1000.0f);
  CHECK(mopo::rollout::sample_mixed(real, model, 10, 0.0, rng).rewards.max().item<float>() < 1000.0f);
  CHECK_THROWS_AS(mopo::rollout::sample_mixed(real, model, 10, 1.5, rng), mopo::ValueError);
  ReplayBuffer empty(5, 2, 1);
  CHECK_THROWS_AS(mopo::rollout::sample_mixed(real, empty, 10, 0.5, rng), mopo::ValueError);
  ReplayBuffer other(5, 3, 1);
  other.add({torch::zeros({2, 3}), torch::zeros({2, 1}), torch::zeros({2}), torch::zeros({2, 3}),
             torch::zeros({2})});
  CHECK_THROWS_AS(mopo::rollout::sample_mixed(real, other, 10, 0.5, rng), mopo::ShapeError);
}

TEST_CASE("sample_mixed mixes a dataset (D_env) with a RolloutBuffer (D_model), as MopoTrainer does",
          "[unit][agents][buffer]") {
  mopo::data::TransitionDataset real;
  real.observations = torch::full({20, 2}, 1000.0f);
  real.actions = torch::zeros({20, 1});
  real.rewards = torch::full({20}, 1000.0f);
  real.next_observations = torch::full({20, 2}, 1000.0f);
  real.terminals = torch::zeros({20});
  mopo::rollout::RolloutBuffer model(2, 100, 2, 1);
  model.begin_epoch();
  model.add(marked_batch(30, 0));
  mopo::RandomState rng(3);
  const auto b = mopo::rollout::sample_mixed(real, model, 40, 0.25, rng);
  REQUIRE(b.size() == 40);
  CHECK((b.rewards.narrow(0, 0, 10) == 1000).all().item<bool>());
  CHECK((b.rewards.narrow(0, 10, 30) < 1000).all().item<bool>());
}

TEST_CASE("the buffer rejects bad input", "[unit][agents][buffer]") {
  CHECK_THROWS_AS(ReplayBuffer(0, 2, 1), mopo::ValueError);
  ReplayBuffer b(5, 2, 1);
  mopo::RandomState rng(0);
  CHECK_THROWS_AS(b.sample(4, rng), mopo::ValueError);
  CHECK_THROWS_WITH(b.add({1, 2, 3}, {0}, 0, {1, 2}, false),
                    Catch::Contains("observation") && Catch::Contains("3"));
  CHECK_THROWS_AS(b.add({1, 2}, {0, 0}, 0, {1, 2}, false), mopo::ShapeError);
  CHECK_THROWS_AS(b.add({1, NAN}, {0}, 0, {1, 2}, false), mopo::ValueError);
  CHECK_THROWS_AS(b.add({1, 2}, {0}, INFINITY, {1, 2}, false), mopo::ValueError);
  auto bad = marked_batch(3, 0);
  bad.next_observations[1][0] = NAN;
  CHECK_THROWS_WITH(b.add(bad), Catch::Contains("next_observations"));
  bad = marked_batch(3, 0);
  bad.rewards = torch::zeros({3, 1});
  CHECK_THROWS_AS(b.add(bad), mopo::ShapeError);
  CHECK(b.size() == 0);
}

TEST_CASE("Batch concat and to keep the layout", "[unit][agents][buffer]") {
  const auto a = marked_batch(3, 0), c = marked_batch(2, 10);
  const auto ab = mopo::concat(a, c);
  CHECK(ab.size() == 5);
  CHECK(ab.rewards[3].item<float>() == 10.0f);
  CHECK(mopo::concat(Batch{}, c).size() == 2);
  CHECK(ab.to(torch::kFloat64).rewards.dtype() == torch::kFloat64);
  CHECK_NOTHROW(ab.validate(2, 1, "x"));
  CHECK_THROWS_AS(ab.validate(3, 1, "x"), mopo::ShapeError);
}
