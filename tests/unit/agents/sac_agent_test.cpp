// Tests of mopo::agents::SACAgent and its networks: squashed-Gaussian log-prob, entropy and temperature
// signs, clipped double-Q target, Polyak averaging, save/load determinism, bad input, and convergence on
// a quadratic contextual bandit.
#include <torch/torch.h>  // before Catch: glog's CHECK must not replace Catch's
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <random>

#include "mopo/agents/sac_agent.hpp"
#include "mopo/config/json_config.hpp"
#include "mopo/rollout/replay_buffer.hpp"

using mopo::Batch;
using mopo::agents::SACAgent;
using mopo::agents::SACOptions;

namespace {

SACOptions small_options() {
  SACOptions o;
  o.hidden = {32, 32};
  return o;
}

Batch random_batch(int64_t n, int64_t obs_dim, int64_t act_dim, uint64_t seed, double terminal_value = 0.0) {
  mopo::RandomState rs(seed);
  auto& g = rs.generator();
  return {torch::randn({n, obs_dim}, g), torch::rand({n, act_dim}, g) * 2 - 1, torch::randn({n}, g),
          torch::randn({n, obs_dim}, g), torch::full({n}, terminal_value)};
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

std::filesystem::path temp_file(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("mopo_sac_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir / name;
}

}  // namespace

TEST_CASE("squashed Gaussian log-prob matches the change-of-variables density", "[unit][agents]") {
  mopo::RandomState init(3);
  mopo::agents::SquashedGaussianActor actor(5, 3, std::vector<int64_t>{16}, -20.0, 2.0, init.generator());
  mopo::RandomState rs(4);
  torch::NoGradGuard no_grad;
  const auto obs = torch::randn({64, 5}, rs.generator());
  const auto s = actor->sample(obs, rs.generator());
  REQUIRE(s.action.sizes() == torch::IntArrayRef({64, 3}));
  REQUIRE(s.log_prob.sizes() == torch::IntArrayRef({64}));
  REQUIRE(s.action.abs().max().item<float>() < 1.0f);
  // Numerical density of a = tanh(u), u ~ N(μ, σ²): P(a−h < A < a+h) / 2h from the Gaussian CDF,
  // independent of the analytic Jacobian used by the actor.
  const auto a = s.action.to(torch::kFloat64);
  const auto mu = s.mean.to(torch::kFloat64);
  const auto sigma = s.log_std.to(torch::kFloat64).exp();
  int checked = 0;
  for (int64_t i = 0; i < 64; ++i) {
    if (a[i].abs().max().item<double>() > 0.97) continue;  // float32 tanh loses digits near ±1
    double log_density = 0;
    for (int64_t j = 0; j < 3; ++j) {
      const double aj = a[i][j].item<double>(), m = mu[i][j].item<double>(), sd = sigma[i][j].item<double>();
      const double h = 1e-4;
      const double p = normal_cdf((std::atanh(aj + h) - m) / sd) - normal_cdf((std::atanh(aj - h) - m) / sd);
      log_density += std::log(p / (2 * h));
    }
    CHECK(s.log_prob[i].item<double>() == Approx(log_density).margin(2e-3));
    ++checked;
  }
  CHECK(checked > 20);
  // The deterministic action is tanh(μ).
  CHECK(torch::allclose(actor->mode(obs), torch::tanh(s.mean), 1e-6, 1e-6));
}

TEST_CASE("target entropy defaults to -|A| and honours the option", "[unit][agents]") {
  CHECK(SACAgent(4, 6, small_options()).target_entropy() == -6.0);
  auto o = small_options();
  o.target_entropy = -3.0;  // MOPO's original setting for every D4RL task
  CHECK(SACAgent(4, 6, o).target_entropy() == -3.0);
  CHECK(SACAgent(4, 6, o).alpha() == Approx(1.0));
}

TEST_CASE("the TD target uses the minimum of the twin target critics and d only", "[unit][agents]") {
  auto o = small_options();
  o.gamma = 0.9;
  SACAgent agent(4, 2, o, 7);
  {  // make the two target critics clearly different so min ≠ mean
    torch::NoGradGuard no_grad;
    for (auto& p : agent.target_critic()->parameters()) p[1].add_(0.3);
  }
  for (double d : {0.0, 1.0}) {
    const auto batch = random_batch(32, 4, 2, 11, d);
    const auto t = agent.critic_target(batch);
    torch::NoGradGuard no_grad;
    const auto q = agent.target_critic()->forward(batch.next_observations, t.next_actions);
    CHECK(torch::allclose(q, t.next_q, 1e-6, 1e-6));
    const auto min_q = std::get<0>(q.min(0));
    CHECK((q[0] - q[1]).abs().max().item<float>() > 1e-3f);
    const auto expect = batch.rewards + 0.9 * (1.0 - d) * (min_q - agent.alpha() * t.next_log_prob);
    CHECK(torch::allclose(t.target, expect, 1e-5, 1e-5));
    if (d == 1.0) CHECK(torch::allclose(t.target, batch.rewards));  // terminal: no bootstrap
    if (d == 0.0) CHECK_FALSE(torch::allclose(t.target, batch.rewards, 1e-3, 1e-3));  // time-out bootstraps
  }
}

TEST_CASE("Polyak averaging moves the targets by tau towards the critics", "[unit][agents]") {
  auto o = small_options();
  o.tau = 0.05;
  SACAgent agent(4, 2, o, 5);
  // Two updates so target and critic differ before the checked update.
  agent.update(random_batch(64, 4, 2, 1));
  agent.update(random_batch(64, 4, 2, 2));
  std::vector<torch::Tensor> before;
  for (const auto& p : agent.target_critic()->parameters()) before.push_back(p.detach().clone());
  agent.update(random_batch(64, 4, 2, 3));
  const auto target = agent.target_critic()->parameters();
  const auto critic = agent.critic()->parameters();
  REQUIRE(target.size() == before.size());
  for (std::size_t i = 0; i < target.size(); ++i) {
    const auto expect = 0.95 * before[i] + 0.05 * critic[i].detach();
    CHECK(torch::allclose(target[i], expect, 1e-5, 1e-6));
    CHECK_FALSE(torch::equal(target[i], critic[i]));
  }
  // soft_update itself: τ = 1 copies.
  std::vector<torch::Tensor> a{torch::zeros({3})}, b{torch::ones({3})};
  mopo::agents::soft_update(a, b, 1.0);
  CHECK(torch::equal(a[0], b[0]));
  std::vector<torch::Tensor> c{torch::ones({2})};
  CHECK_THROWS_AS(mopo::agents::soft_update(a, c, 0.5), mopo::ShapeError);
}

TEST_CASE("the entropy term has the right sign", "[unit][agents]") {
  // With Q ≡ 0 (γ = 0, r = 0, zero last critic layer) the actor loss is α·E[log π]: minimising it must
  // raise the entropy, and actor_loss = −α·entropy.
  auto o = small_options();
  o.gamma = 0.0;
  o.auto_alpha = false;
  o.alpha = 0.5;
  o.actor_lr = 1e-2;
  SACAgent agent(3, 2, o, 9);
  {
    torch::NoGradGuard no_grad;
    auto params = agent.critic()->named_parameters();
    params["w2"].zero_();
    params["b2"].zero_();
    // Start narrow (σ ≈ 0.14) so there is room to grow: the squashed entropy is at most 2·log 2.
    agent.actor()->layers().back()->bias.narrow(0, 2, 2).fill_(-2.0);
  }
  auto batch = random_batch(128, 3, 2, 4);
  batch.rewards.zero_();
  const auto first = agent.update(batch);
  CHECK(first.q1 == 0.0);
  CHECK(first.actor_loss == Approx(-0.5 * first.entropy).margin(1e-5));
  mopo::agents::SACUpdateMetrics last;
  for (int i = 0; i < 200; ++i) last = agent.update(batch);
  CHECK(last.alpha == Approx(0.5));
  CHECK(last.entropy > first.entropy + 0.5);
}

TEST_CASE("the temperature moves towards the target entropy", "[unit][agents]") {
  for (double target : {20.0, -50.0}) {
    auto o = small_options();
    o.target_entropy = target;
    o.alpha_lr = 1e-2;
    SACAgent agent(3, 2, o, 2);
    const auto batch = random_batch(64, 3, 2, 6);
    mopo::agents::SACUpdateMetrics m;
    for (int i = 0; i < 20; ++i) m = agent.update(batch);
    // Entropy below the target → α grows (explore more); above → α shrinks.
    if (target > 0) {
      CHECK(m.entropy < target);
      CHECK(agent.alpha() > 1.1);
    } else {
      CHECK(m.entropy > target);
      CHECK(agent.alpha() < 0.9);
    }
  }
}

TEST_CASE("act returns bounded actions for one observation and for batches", "[unit][agents]") {
  SACAgent agent(5, 3, small_options(), 1);
  const auto obs = torch::randn({10, 5});
  const auto a = agent.act(obs);
  CHECK(a.sizes() == torch::IntArrayRef({10, 3}));
  CHECK(a.abs().max().item<float>() <= 1.0f);
  CHECK_FALSE(a.requires_grad());
  const auto det = agent.act(obs, true);
  CHECK(torch::allclose(det, agent.act(obs, true)));
  CHECK(torch::allclose(agent.act(obs[0], true), det[0]));
  std::vector<double> v(5, 0.1);
  const auto av = agent.act(v, true);
  REQUIRE(av.size() == 3);
  const auto at = agent.act(torch::full({5}, 0.1), true);
  for (int i = 0; i < 3; ++i)
    CHECK(av[static_cast<std::size_t>(i)] == Approx(at[i].item<double>()).margin(1e-6));
  // The lean single-observation path samples the same function as the tensor path.
  const auto state = agent.random_state().generator_state();
  const auto sv = agent.act(v, false);
  agent.random_state().set_generator_state(state);
  const auto st = agent.act(torch::full({5}, 0.1), false);
  for (int i = 0; i < 3; ++i)
    CHECK(sv[static_cast<std::size_t>(i)] == Approx(st[i].item<double>()).margin(1e-5));
  CHECK(agent.act(v, false) != sv);
}

TEST_CASE("save then load gives identical actions and an identical next update", "[unit][agents]") {
  auto o = small_options();
  SACAgent a(4, 2, o, 21);
  for (int i = 0; i < 5; ++i) a.update(random_batch(64, 4, 2, static_cast<uint64_t>(100 + i)));
  const auto file = temp_file("agent.pt");
  a.save(file);
  SACAgent b(4, 2, o, 999);  // different seed: everything must come from the file
  b.load(file);
  CHECK(b.num_updates() == 5);
  CHECK(b.alpha() == Approx(a.alpha()).epsilon(1e-12));
  const auto obs = torch::randn({8, 4});
  CHECK(torch::equal(a.act(obs, false), b.act(obs, false)));  // same RNG state → same exploration
  const auto batch = random_batch(64, 4, 2, 77);
  const auto ma = a.update(batch);
  const auto mb = b.update(batch);
  CHECK(ma.critic_loss == mb.critic_loss);
  CHECK(ma.actor_loss == mb.actor_loss);
  CHECK(ma.alpha_loss == mb.alpha_loss);
  const auto pa = a.actor()->parameters(), pb = b.actor()->parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) CHECK(torch::equal(pa[i], pb[i]));
  const auto ta = a.target_critic()->parameters(), tb = b.target_critic()->parameters();
  for (std::size_t i = 0; i < ta.size(); ++i) CHECK(torch::equal(ta[i], tb[i]));

  SECTION("mismatching or missing files are rejected") {
    SACAgent wrong(5, 2, o);
    CHECK_THROWS_AS(wrong.load(file), mopo::ShapeError);
    CHECK_THROWS_AS(b.load(temp_file("missing.pt")), mopo::IoError);
    mopo::atomic_write(temp_file("junk.pt"), "not a checkpoint");
    CHECK_THROWS_AS(b.load(temp_file("junk.pt")), mopo::IoError);
  }
  std::filesystem::remove_all(file.parent_path());
}

namespace {

// Max |a − b| over every parameter of the two agents' actors, critics and target critics, and log α.
double max_parameter_difference(SACAgent& a, SACAgent& b) {
  double worst = std::abs(std::log(a.alpha()) - std::log(b.alpha()));
  auto compare = [&](const std::vector<torch::Tensor>& x, const std::vector<torch::Tensor>& y) {
    REQUIRE(x.size() == y.size());
    for (std::size_t i = 0; i < x.size(); ++i)
      worst = std::max(worst, (x[i] - y[i]).abs().max().item<double>());
  };
  compare(a.actor()->parameters(), b.actor()->parameters());
  compare(a.critic()->parameters(), b.critic()->parameters());
  compare(a.target_critic()->parameters(), b.target_critic()->parameters());
  return worst;
}

bool identical_parameters(SACAgent& a, SACAgent& b) {
  auto same = [](const std::vector<torch::Tensor>& x, const std::vector<torch::Tensor>& y) {
    for (std::size_t i = 0; i < x.size(); ++i)
      if (!torch::equal(x[i], y[i])) return false;
    return true;
  };
  return a.alpha() == b.alpha() && same(a.actor()->parameters(), b.actor()->parameters()) &&
         same(a.critic()->parameters(), b.critic()->parameters()) &&
         same(a.target_critic()->parameters(), b.target_critic()->parameters());
}

}  // namespace

TEST_CASE("the fused update computes the autograd update", "[unit][agents]") {
  // Same seed, same batches: the hand-written forward/backward + flat Adam against LibTorch autograd +
  // torch::optim::Adam of the same semantics, over 12 updates (terminals, clamped log σ, fixed α included).
  auto o = small_options();
  const int variant = GENERATE(0, 1, 2);
  if (variant == 1) {  // a narrow log σ range, so the clamp's zero gradient is exercised
    o.log_std_min = -0.5;
    o.log_std_max = 0.3;
  }
  if (variant == 2) {
    o.auto_alpha = false;
    o.alpha = 0.2;
    o.hidden = {24, 16, 8};
  }
  INFO("variant " << variant);
  auto reference = o;
  reference.update = "autograd";
  SACAgent fused(5, 3, o, 11), autograd(5, 3, reference, 11);
  REQUIRE(max_parameter_difference(fused, autograd) == 0.0);
  for (int i = 0; i < 12; ++i) {
    const auto batch =
        random_batch(i % 2 == 0 ? 64 : 48, 5, 3, static_cast<uint64_t>(300 + i), i % 3 == 0 ? 1.0 : 0.0);
    const auto mf = fused.update(batch);
    const auto ma = autograd.update(batch);
    CHECK(mf.critic_loss == Approx(ma.critic_loss).epsilon(1e-4).margin(1e-5));
    CHECK(mf.actor_loss == Approx(ma.actor_loss).epsilon(1e-4).margin(1e-5));
    CHECK(mf.alpha_loss == Approx(ma.alpha_loss).epsilon(1e-4).margin(1e-5));
    CHECK(mf.alpha == Approx(ma.alpha).epsilon(1e-6));
    CHECK(mf.q1 == Approx(ma.q1).epsilon(1e-4).margin(1e-5));
    CHECK(mf.q2 == Approx(ma.q2).epsilon(1e-4).margin(1e-5));
    CHECK(mf.q_target == Approx(ma.q_target).epsilon(1e-4).margin(1e-5));
    CHECK(mf.entropy == Approx(ma.entropy).epsilon(1e-4).margin(1e-5));
  }
  const double diff = max_parameter_difference(fused, autograd);
  INFO("max parameter difference after 12 updates: " << diff);
  CHECK(diff < 2e-5);
  // The update moved the parameters far more than the two paths disagree.
  SACAgent untouched(5, 3, o, 11);
  CHECK(max_parameter_difference(fused, untouched) > 100 * diff);
  // Behaviour cloning on top (autograd gradients, the fused path's Adam moments) agrees too.
  const auto bc = random_batch(32, 5, 3, 999);
  CHECK(fused.behavior_cloning_update(bc) == Approx(autograd.behavior_cloning_update(bc)).epsilon(1e-4));
  CHECK(max_parameter_difference(fused, autograd) < 2e-5);
}

TEST_CASE("the two-thread fused update equals the one-thread update bit for bit", "[unit][agents]") {
  auto one = small_options();
  one.update_threads = 1;
  auto two = one;
  two.update_threads = 2;
  SACAgent a(6, 2, one, 5), b(6, 2, two, 5);
  for (int i = 0; i < 15; ++i) {
    const auto batch = random_batch(128, 6, 2, static_cast<uint64_t>(400 + i));
    const auto ma = a.update(batch);
    const auto mb = b.update(batch);
    CHECK(ma.critic_loss == mb.critic_loss);
    CHECK(ma.actor_loss == mb.actor_loss);
    CHECK(ma.entropy == mb.entropy);
  }
  CHECK(identical_parameters(a, b));
}

TEST_CASE("fused and autograd agents read each other's checkpoints", "[unit][agents]") {
  // The fused path writes its flat Adam moments in torch::optim::Adam's archive format, so a checkpoint
  // continues identically under either path.
  auto fused_options = small_options();
  auto autograd_options = fused_options;
  autograd_options.update = "autograd";
  SACAgent writer(4, 2, autograd_options, 8);
  for (int i = 0; i < 4; ++i) writer.update(random_batch(32, 4, 2, static_cast<uint64_t>(500 + i)));
  const auto file = temp_file("autograd.pt");
  writer.save(file);
  SACAgent fused(4, 2, fused_options, 1);
  fused.load(file);
  REQUIRE(max_parameter_difference(fused, writer) == 0.0);
  for (int i = 0; i < 3; ++i) {
    const auto batch = random_batch(32, 4, 2, static_cast<uint64_t>(600 + i));
    writer.update(batch);
    fused.update(batch);
  }
  CHECK(max_parameter_difference(fused, writer) < 1e-5);
  const auto back = temp_file("fused.pt");
  fused.save(back);
  SACAgent reader(4, 2, autograd_options, 2);
  reader.load(back);
  CHECK(identical_parameters(reader, fused));
  const auto batch = random_batch(32, 4, 2, 700);
  fused.update(batch);
  reader.update(batch);
  CHECK(max_parameter_difference(fused, reader) < 1e-5);
  std::filesystem::remove_all(file.parent_path());
}

TEST_CASE("bad input raises mopo errors naming the problem", "[unit][agents]") {
  SACAgent agent(4, 2, small_options());
  CHECK_THROWS_AS(agent.act(torch::zeros({3})), mopo::ShapeError);
  CHECK_THROWS_AS(agent.act(torch::zeros({2, 2, 4})), mopo::ShapeError);
  CHECK_THROWS_AS(agent.act(std::vector<double>(5, 0.0)), mopo::ShapeError);
  CHECK_THROWS_AS(agent.act(std::vector<double>{0, 0, NAN, 0}), mopo::ValueError);
  CHECK_THROWS_AS(agent.act(torch::full({4}, INFINITY)), mopo::ValueError);
  auto batch = random_batch(16, 4, 2, 1);
  batch.rewards[3] = NAN;
  CHECK_THROWS_WITH(agent.update(batch), Catch::Contains("rewards") && Catch::Contains("NaN"));
  auto wrong = random_batch(16, 4, 3, 1);
  CHECK_THROWS_WITH(agent.update(wrong), Catch::Contains("actions") && Catch::Contains("[16, 3]"));
  auto wrong_rows = random_batch(16, 4, 2, 1);
  wrong_rows.terminals = torch::zeros({15});
  CHECK_THROWS_AS(agent.update(wrong_rows), mopo::ShapeError);
  CHECK(agent.num_updates() == 0);

  SACOptions bad;
  bad.tau = 0;
  CHECK_THROWS_WITH(SACAgent(4, 2, bad), Catch::Contains("tau"));
  bad = SACOptions{};
  bad.device = "tpu";
  CHECK_THROWS_AS(SACAgent(4, 2, bad), mopo::ConfigError);
  bad = SACOptions{};
  bad.update = "fast";
  CHECK_THROWS_WITH(SACAgent(4, 2, bad), Catch::Contains("update") && Catch::Contains("fast"));
  bad = SACOptions{};
  bad.update_threads = 3;
  CHECK_THROWS_WITH(SACAgent(4, 2, bad), Catch::Contains("update_threads"));
  CHECK_THROWS_AS(SACAgent(0, 2), mopo::ValueError);
  SACOptions from_json;
  CHECK_THROWS_WITH(mopo::config::from_json(mopo::config::json{{"actor_lrr", 1e-3}}, from_json),
                    Catch::Contains("actor_lr"));
  mopo::config::from_json(mopo::config::json{{"target_entropy", -3}, {"hidden", {64, 64}}}, from_json);
  CHECK(*from_json.target_entropy == -3.0);
  CHECK(from_json.hidden == std::vector<int64_t>({64, 64}));
}

TEST_CASE("SAC converges to the optimum of a quadratic contextual bandit", "[unit][agents]") {
  // s ~ U(−1, 1), r = −(a − a*(s))² with a*(s) = 0.6·s − 0.2, every step terminal: Q(s, a) = r, and the
  // greedy action tanh(μ(s)) must approach a*(s).
  auto o = small_options();
  o.hidden = {64, 64};
  o.batch_size = 128;
  o.actor_lr = 1e-3;
  o.critic_lr = 1e-3;
  o.alpha_lr = 1e-3;
  SACAgent agent(1, 1, o, 42);
  mopo::rollout::ReplayBuffer buffer(10'000, 1, 1);
  mopo::RandomState rng(43);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  auto optimum = [](double s) { return 0.6 * s - 0.2; };
  for (int step = 0; step < 2500; ++step) {
    const double s = u(rng.engine());
    const auto a = step < 256 ? std::vector<double>{u(rng.engine())} : agent.act(std::vector<double>{s});
    const double r = -(a[0] - optimum(s)) * (a[0] - optimum(s));
    buffer.add({s}, a, r, {s}, /*terminal=*/true);
    if (buffer.size() >= o.batch_size) agent.update(buffer.sample(o.batch_size, rng));
  }
  for (double s : {-0.8, -0.3, 0.0, 0.4, 0.9}) {
    const double a = agent.act(std::vector<double>{s}, true)[0];
    INFO("s = " << s << ", a = " << a << ", a* = " << optimum(s));
    CHECK(a == Approx(optimum(s)).margin(0.08));
  }
}
