// bench_checkpoint: what MopoTrainer::save_checkpoint() costs per epoch with a full model buffer, on
// HalfCheetah shapes (obs 17, act 6), default SAC (2×256) and ensemble (7 members, 4×200).
//
// The buffer is the trainer's own RolloutBuffer at its capacity, retain_epochs (5) × rollout_batch
// (50 000) × h, filled by five real rollout() calls: h = 1 (halfcheetah-medium) holds 250 000 rows, h = 5
// (the other halfcheetah configs) 1 250 000. halfcheetah never terminates, so every rollout fills its
// epoch. Each iteration writes one checkpoint (agent.pt, model.pt, trainer.pt with the buffer, then
// latest.json, each through atomic_write: temp file, fsync, rename) into a directory under
// $TMPDIR (default /tmp; pass --benchmark_... flags as usual), on the disk runs are written to.
// Reported: wall time per save, bytes on disk (total and trainer.pt), buffer rows, and the time to
// load the checkpoint back (MopoTrainer::load_checkpoint), load_s, and the same with the CRC-32 comparison of
// the LibTorch files off (mopo/detail/torch_archive.hpp; what the fuzz builds do), load_no_crc_s.
// Dataset: random rows of the right shapes (the cost does not depend on the values); the model is
// trained for 2 epochs so its normaliser and elites exist.
#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include <mopo/detail/torch_archive.hpp>
#include <mopo/train/mopo_trainer.hpp>

namespace {

namespace fs = std::filesystem;

mopo::data::TransitionDataset random_dataset(int64_t n) {
  mopo::RandomState rng(0);
  mopo::data::TransitionDataset d;
  d.observations = torch::randn({n, 17}, rng.generator());
  d.actions = torch::rand({n, 6}, rng.generator()) * 2 - 1;
  d.rewards = torch::randn({n}, rng.generator());
  d.next_observations = d.observations + 0.1 * torch::randn({n, 17}, rng.generator());
  d.terminals = torch::zeros({n}, torch::kBool);
  return d;
}

double bytes_under(const fs::path& dir) {
  double total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += static_cast<double>(e.file_size());
  }
  return total;
}

void BM_SaveCheckpoint(benchmark::State& state) {
  at::set_num_threads(1);
  mopo::train::MopoConfig cfg;
  cfg.task = "halfcheetah";
  cfg.rollout.rollout_batch = 50'000;
  cfg.rollout.horizon = state.range(0);
  cfg.rollout_threads = 2;
  cfg.model_training.max_epochs = 2;
  mopo::train::Mopo trainer(cfg, random_dataset(20'000));
  trainer.train_model();
  for (int64_t i = 0; i < cfg.retain_epochs; ++i) (void)trainer.rollout();
  const auto& buffer = trainer.model_buffer();
  if (buffer.size() != buffer.capacity()) {
    state.SkipWithError("the model buffer is not full");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("mopo_bench_checkpoint_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  for (auto _ : state) trainer.save_checkpoint(dir);
  const auto sub = dir / ("epoch-" + std::to_string(trainer.epoch()));
  state.counters["buffer_rows"] = static_cast<double>(buffer.size());
  state.counters["MB_on_disk"] = bytes_under(dir) / 1e6;
  state.counters["MB_trainer_pt"] = static_cast<double>(fs::file_size(sub / "trainer.pt")) / 1e6;
  state.counters["MB_agent_pt"] = static_cast<double>(fs::file_size(sub / "agent.pt")) / 1e6;
  state.counters["MB_model_pt"] = static_cast<double>(fs::file_size(sub / "model.pt")) / 1e6;
  mopo::train::Mopo restored(cfg, random_dataset(20'000));
  const auto t0 = std::chrono::steady_clock::now();
  restored.load_checkpoint(dir);
  state.counters["load_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (restored.model_buffer().size() != buffer.size()) state.SkipWithError("the restored buffer differs");
  mopo::detail::archive_crc_checks() = false;
  mopo::train::Mopo unchecked(cfg, random_dataset(20'000));
  const auto t1 = std::chrono::steady_clock::now();
  unchecked.load_checkpoint(dir);
  state.counters["load_no_crc_s"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  mopo::detail::archive_crc_checks() = true;
  fs::remove_all(dir);
}
BENCHMARK(BM_SaveCheckpoint)->Arg(1)->Arg(5)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
