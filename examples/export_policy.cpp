// export_policy: turn a full SAC checkpoint (SACAgent::save: networks, targets, optimisers, α) into the
// small actor-only policy file the dataset zoo uses (agents::save_policy, --format torch, the default) or
// into the LibTorch-free deploy format (--format eigen: deploy::export_policy with the task's action box,
// read by mopo::deploy::Policy; docs/deploy.md), and evaluate it.
//
//   export_policy --task halfcheetah --agent runs/sac-halfcheetah-s0/agent.pt
//                 --out data/zoo/policies/halfcheetah/expert.pt --episodes 5      (one command line)
//   export_policy --task halfcheetah --agent runs/sac-halfcheetah-s0/agent.pt --format eigen
//                 --out halfcheetah.policy.mopo --episodes 0
#include <CLI/CLI.hpp>

#include <iostream>

#include <mopo/agents/policy_file.hpp>
#include <mopo/core/runtime.hpp>
#include <mopo/deploy/deploy.hpp>
#include <mopo/deploy/export.hpp>
#include <mopo/env/registry.hpp>
#include <mopo/train/sac_trainer.hpp>

#include "common/cli.hpp"

int main(int argc, char** argv) {
  mopo::configure_process();
  CLI::App app{"Export the actor of a SAC checkpoint as a zoo policy file"};
  std::string task, agent_file, out, format = "torch";
  int64_t episodes = 5;
  uint64_t seed = 0;
  app.add_option("--task", task, "task the agent was trained on")->required();
  std::string policy_file;
  auto* agent_opt =
      app.add_option("--agent", agent_file, "SACAgent::save checkpoint")->check(CLI::ExistingFile);
  auto* policy_opt = app.add_option("--policy", policy_file, "or: a zoo policy file (agents::save_policy)")
                         ->check(CLI::ExistingFile);
  agent_opt->excludes(policy_opt);
  app.add_option("--out", out, "policy file to write")->required();
  app.add_option("--format", format, "torch (zoo policy file) or eigen (deploy format, docs/deploy.md)")
      ->check(CLI::IsMember({"torch", "eigen"}));
  app.add_option("--episodes", episodes, "deterministic evaluation episodes (0 = none)")
      ->check(mopo::examples::kNonNegative);
  app.add_option("--seed", seed, "evaluation seed")->check(mopo::examples::kNonNegative);
  return mopo::examples::run_cli("export_policy", app, argc, argv, [&] {
    auto env = mopo::env::make(task);
    mopo::agents::SACAgent agent(env->observation_dim(), env->action_dim());
    if (!agent_file.empty()) {
      agent.load(agent_file);
    } else if (!policy_file.empty()) {
      mopo::agents::load_policy(agent, policy_file);
    } else {
      throw mopo::ConfigError("give --agent or --policy");
    }
    if (format == "eigen") {
      mopo::deploy::export_policy(agent, out, env->action_space());
    } else {
      mopo::agents::save_policy(agent, out);
    }
    std::cout << "wrote " << out << " (" << format << ")\n";
    if (episodes > 0) {
      mopo::RandomState rng(seed);
      const auto r = mopo::train::evaluate(*env, agent, episodes, rng);
      std::cout << "evaluation over " << episodes << " episodes: return " << r.return_mean << " ± "
                << r.return_std;
      if (mopo::env::d4rl_reference_scores(task)) {
        std::cout << " (D4RL normalised " << mopo::env::normalized_score_percent(task, r.return_mean) << ")";
      }
      std::cout << "\n";
      if (format == "eigen") {  // the written file, driven by the LibTorch-free runtime
        auto policy = mopo::deploy::Policy::load(out);
        double total = 0.0;
        Eigen::VectorXf obs(policy.obs_dim()), action(policy.act_dim());
        for (int64_t k = 0; k < episodes; ++k) {
          auto o = env->reset(seed + static_cast<uint64_t>(k));
          for (bool done = false; !done;) {
            for (int64_t i = 0; i < policy.obs_dim(); ++i)
              obs[i] = static_cast<float>(o[static_cast<std::size_t>(i)]);
            policy.act(obs, action);
            const auto res = env->step(mopo::env::Vector(action.data(), action.data() + action.size()));
            total += res.reward;
            o = res.observation;
            done = res.terminated || res.truncated;
          }
        }
        std::cout << "deploy::Policy on the same task: mean return " << total / static_cast<double>(episodes)
                  << "\n";
      }
    }
    return 0;
  });
}
