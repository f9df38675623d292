// export_policy: turn a full SAC checkpoint (SACAgent::save: networks, targets, optimisers, α) into the
// small actor-only policy file the dataset zoo uses (zoo::save_policy), and evaluate it.
//
//   export_policy --task halfcheetah --agent runs/sac-halfcheetah-s0/agent.pt
//                 --out data/zoo/policies/halfcheetah/expert.pt --episodes 5      (one command line)
#include <CLI/CLI.hpp>

#include <iostream>

#include <mopo/core/runtime.hpp>
#include <mopo/data/zoo.hpp>
#include <mopo/env/registry.hpp>
#include <mopo/train/sac_trainer.hpp>

int main(int argc, char** argv) {
  mopo::configure_process();
  CLI::App app{"Export the actor of a SAC checkpoint as a zoo policy file"};
  std::string task, agent_file, out;
  int64_t episodes = 5;
  uint64_t seed = 0;
  app.add_option("--task", task, "task the agent was trained on")->required();
  app.add_option("--agent", agent_file, "SACAgent::save checkpoint")->required()->check(CLI::ExistingFile);
  app.add_option("--out", out, "policy file to write")->required();
  app.add_option("--episodes", episodes, "deterministic evaluation episodes (0 = none)");
  app.add_option("--seed", seed, "evaluation seed");
  CLI11_PARSE(app, argc, argv);
  try {
    auto env = mopo::env::make(task);
    mopo::agents::SACAgent agent(env->observation_dim(), env->action_dim());
    agent.load(agent_file);
    mopo::zoo::save_policy(agent, out);
    std::cout << "wrote " << out << "\n";
    if (episodes > 0) {
      mopo::RandomState rng(seed);
      const auto r = mopo::train::evaluate(*env, agent, episodes, rng);
      std::cout << "evaluation over " << episodes << " episodes: return " << r.return_mean << " ± "
                << r.return_std;
      if (mopo::env::d4rl_reference_scores(task)) {
        std::cout << " (D4RL normalised " << mopo::env::normalized_score_percent(task, r.return_mean) << ")";
      }
      std::cout << "\n";
    }
  } catch (const mopo::Error& e) {
    std::cerr << "export_policy: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
