// A tiny zoo build on real MuJoCo Hopper: a short behaviour SAC run, then random / medium / mixed / expert /
// medium-expert datasets with cards. Checks files, cards, D4RL recording rules and the stored full state.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "mopo/data/d4rl_hdf5.hpp"
#include "mopo/env/hiv.hpp"
#include "mopo/env/mujoco/tasks/half_cheetah_jump.hpp"
#include "mopo/env/mujoco/tasks/hopper.hpp"
#include "mopo/env/ood.hpp"
#include "mopo/zoo/zoo.hpp"

namespace fs = std::filesystem;

TEST_CASE("a tiny zoo build writes valid D4RL files and cards", "[mujoco][data][zoo]") {
  const auto dir = fs::temp_directory_path() / ("mopo_test_zoo_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  mopo::zoo::ZooOptions o;
  o.size = 600;
  o.max_path = 150;
  o.sac_steps = 900;
  o.warmup_steps = 300;
  o.eval_every = 300;
  o.eval_episodes = 1;
  o.seed = 5;
  o.sac.hidden = {32, 32};
  mopo::env::Hopper env;
  mopo::env::Hopper eval_env;
  const mopo::env::ReferenceScores hopper_ref{-20.272305, 3234.3};  // environments.md §10.5
  // on_run: the same SAC run's whole replay saved as a relabelled replay dataset (as --with-ant-angle does).
  nlohmann::json replay_card;
  const auto summary = mopo::zoo::build_task(
      "hopper", env, eval_env, o, dir, hopper_ref, {}, {}, [&](mopo::zoo::BehaviourRun& run) {
        replay_card =
            mopo::zoo::save_replay_dataset("hopper-replay", "hopper", run, o, dir, "test",
                                           [](const mopo::data::TransitionDataset& d) { return -d.rewards; });
      });
  REQUIRE(summary["checkpoints"].size() == 3);
  {
    CHECK(replay_card["transitions"] == 900);
    const auto r = mopo::data::load_d4rl_hdf5(dir / "hopper-replay.hdf5");
    REQUIRE(r.infos.count("behaviour_rewards") == 1);
    CHECK(r.rewards.equal(-r.infos.at("behaviour_rewards")));
    // mixed is the prefix of that replay up to the medium checkpoint
    const auto mixed = mopo::data::load_d4rl_hdf5(dir / "hopper-mixed.hdf5");
    CHECK(mixed.observations.equal(r.observations.slice(0, 0, mixed.size())));
    CHECK(mixed.rewards.equal(r.infos.at("behaviour_rewards").slice(0, 0, mixed.size())));
  }
  for (const std::string kind : {"random", "medium", "mixed", "expert", "medium-expert"}) {
    CAPTURE(kind);
    const auto file = dir / ("hopper-" + kind + ".hdf5");
    REQUIRE(fs::exists(file));
    REQUIRE(fs::exists(dir / ("hopper-" + kind + ".json")));
    const auto d = mopo::data::load_d4rl_hdf5(file);
    CHECK(d.observation_dim() == 11);
    CHECK(d.action_dim() == 3);
    REQUIRE(d.has_state());
    CHECK(d.qpos.size(1) == 6);
    CHECK(d.metadata["zoo_kind"] == kind);
    std::ifstream in(dir / ("hopper-" + kind + ".json"));
    nlohmann::json card;
    in >> card;
    CHECK(card["transitions"] == d.size());
    CHECK(card["episodes"]["complete"] == d.episode_stats().count);
    CHECK(card["recipe"]["size"] == 600);
    // D4RL rule: a time-limit step is a time-out, never also a terminal; episodes never exceed max_path.
    CHECK_FALSE(d.terminals.logical_and(d.timeouts).any().item<bool>());
    const auto ends = d.terminals.logical_or(d.timeouts).nonzero().reshape({-1});
    if (ends.size(0) > 1) CHECK((ends.slice(0, 1) - ends.slice(0, 0, -1)).max().item<int64_t>() <= 150);
    // Within an episode s' of row i is s of row i + 1.
    const auto cont =
        d.terminals.logical_or(d.timeouts).logical_not().slice(0, 0, -1).nonzero().reshape({-1});
    CHECK(d.next_observations.index_select(0, cont).equal(d.observations.index_select(0, cont + 1)));
    // The stored state reproduces the stored observation (state before the action).
    for (int64_t i : {int64_t{0}, d.size() / 2, d.size() - 1}) {
      const auto qp = d.qpos[i].to(torch::kFloat64).contiguous();
      const auto qv = d.qvel[i].to(torch::kFloat64).contiguous();
      env.set_state({qp.data_ptr<double>(), qp.data_ptr<double>() + 6},
                    {qv.data_ptr<double>(), qv.data_ptr<double>() + 6});
      const auto obs = env.observation();
      for (int64_t k = 0; k < 11; ++k)
        CHECK(obs[k] == Approx(d.observations[i][k].item<float>()).margin(1e-5));
    }
    const auto q = mopo::data::qlearning_dataset(d);
    CHECK(q.size() > 0);
  }
  // Sizes: random / medium / expert are cut to `size`; mixed is the replay up to the medium checkpoint.
  CHECK(summary["datasets"]["random"]["transitions"] == 600);
  CHECK(summary["datasets"]["expert"]["transitions"] == 600);
  CHECK(summary["datasets"]["mixed"]["transitions"] ==
        summary["datasets"]["medium"]["behaviour"]["sac_step"]);
  CHECK(summary["datasets"]["medium-expert"]["transitions"].get<int64_t>() <= 1200);
  CHECK(summary["datasets"]["medium-expert"]["transitions"].get<int64_t>() > 600);
  CHECK(summary["datasets"]["expert"]["behaviour"].contains("d4rl_normalized_score"));
  // Policies were saved and can be reused without training (no mixed dataset then).
  const auto again = dir / "again";
  // Cards name the policies relative to their own directory, never by an absolute path.
  const auto medium_policy = summary["datasets"]["medium"]["behaviour"]["policy"].get<std::string>();
  const auto expert_policy = summary["datasets"]["expert"]["behaviour"]["policy"].get<std::string>();
  CHECK(medium_policy.rfind("policies/hopper/policy_", 0) == 0);
  CHECK(fs::path(expert_policy).is_relative());
  mopo::zoo::PretrainedPolicies pre{(dir / medium_policy).string(), (dir / expert_policy).string()};
  const auto s2 = mopo::zoo::build_task("hopper", env, eval_env, o, again, hopper_ref, pre);
  CHECK_FALSE(fs::exists(again / "hopper-mixed.hdf5"));
  // Same seed, same policies → the same medium data.
  CHECK(mopo::data::load_d4rl_hdf5(again / "hopper-medium.hdf5")
            .observations.equal(mopo::data::load_d4rl_hdf5(dir / "hopper-medium.hdf5").observations));
  fs::remove_all(dir);
}

TEST_CASE("replay recipe: halfcheetah-jump relabelled rewards match the jump task, HIV prefix",
          "[mujoco][data][zoo]") {
  const auto dir = fs::temp_directory_path() / ("mopo_test_zoo_replay_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  mopo::zoo::ZooOptions o;
  o.sac_steps = 400;
  o.warmup_steps = 200;
  o.eval_every = 200;
  o.eval_episodes = 1;
  o.max_path = 150;
  o.seed = 2;
  o.sac.hidden = {32, 32};
  {
    auto env = mopo::env::make_halfcheetah_jump(mopo::env::JumpReward::kBehaviour);
    auto eval_env = mopo::env::make_halfcheetah_jump(mopo::env::JumpReward::kBehaviour);
    const auto card = mopo::zoo::build_replay_task(
        "halfcheetah-jump", env, eval_env, o, dir, "test", [](const mopo::data::TransitionDataset& d) {
          return mopo::env::halfcheetah_jump_relabel(d.next_observations, d.rewards);
        });
    CHECK(card["transitions"] == 400);
    const auto d = mopo::data::load_d4rl_hdf5(dir / "halfcheetah-jump.hdf5");
    REQUIRE(d.size() == 400);
    REQUIRE(d.has_state());
    REQUIRE(d.infos.count("behaviour_rewards") == 1);
    // Replaying a stored (state, action) in the test-reward task gives the relabelled reward.
    auto test_env = mopo::env::make_halfcheetah_jump(mopo::env::JumpReward::kTest);
    test_env.reset(0);
    for (int64_t i : {int64_t{3}, int64_t{149}, int64_t{250}, int64_t{399}}) {
      const auto qp = d.qpos[i].to(torch::kFloat64).contiguous();
      const auto qv = d.qvel[i].to(torch::kFloat64).contiguous();
      const auto a = d.actions[i].to(torch::kFloat64).contiguous();
      test_env.set_state({qp.data_ptr<double>(), qp.data_ptr<double>() + qp.numel()},
                         {qv.data_ptr<double>(), qv.data_ptr<double>() + qv.numel()});
      const auto res = test_env.step({a.data_ptr<double>(), a.data_ptr<double>() + a.numel()});
      CHECK(d.rewards[i].item<float>() == Approx(res.reward).margin(2e-3));
    }
  }
  {
    mopo::env::Hiv env;
    mopo::env::Hiv eval_env;
    const auto card = mopo::zoo::build_replay_task("hiv", env, eval_env, o, dir, "test");
    const auto d = mopo::data::load_d4rl_hdf5(dir / "hiv.hdf5");
    CHECK(d.size() == 400);
    CHECK(d.observation_dim() == 6);
    CHECK_FALSE(d.has_state());  // the observation is the full ODE state
    CHECK(card["behaviour"]["checkpoints"].size() == 2);
    const auto first = card["behaviour"]["checkpoints"][0]["policy"].get<std::string>();
    CHECK(first.rfind("policies/hiv/policy_", 0) == 0);
    CHECK(fs::exists(dir / first));
  }
  fs::remove_all(dir);
}
