// A MopoConfig small enough for a full MOPO loop in a second or two (3 members of 32×32, SAC 32×32,
// 200 rollout starts, 2 epochs of 20 updates, 3 model epochs): the integration tests' starting point.
#pragma once

#include "mopo/train/mopo_config.hpp"

namespace mopo::testing {

inline train::MopoConfig tiny_mopo_config() {
  train::MopoConfig c;
  c.task = "halfcheetah";
  c.lambda = 1.0;
  c.rollout.rollout_batch = 200;
  c.rollout.horizon = 3;
  c.rollout_freq = 20;
  c.retain_epochs = 2;
  c.epochs = 2;
  c.steps_per_epoch = 20;
  c.eval_episodes = 1;
  c.seed = 5;
  c.ensemble.ensemble_size = 3;
  c.ensemble.num_elites = 2;
  c.ensemble.hidden = {32, 32};
  c.ensemble.weight_decay = {2.5e-5, 5e-5, 1e-4};
  c.model_training.max_epochs = 3;
  c.sac.hidden = {32, 32};
  c.sac.batch_size = 32;
  return c;
}

}  // namespace mopo::testing
