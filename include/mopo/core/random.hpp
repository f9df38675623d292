/// @file random.hpp
/// @brief Seeding: one seed gives a LibTorch generator and a std engine, and independent child streams.
///
/// Determinism guarantees (CPU):
/// - The same seed, the same mopo/LibTorch build and the same number of intra-op threads give
///   bit-identical results for everything mopo draws through a RandomState (sampling, exploration
///   noise, holdout splits) and for module initialisation after `seed_global()`.
/// - Different thread counts may change floating-point summation order (OpenBLAS, reductions), so
///   results can differ in the last bits; they stay statistically equivalent.
/// - Nothing in mopo draws from hidden global RNG state except LibTorch's module initialisers, which
///   use the global CPU generator: call `seed_global(seed)` (or construct networks through
///   `RandomState::seed_global()`) before building networks.
/// - CUDA kernels are not guaranteed deterministic.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <random>

namespace mopo {

/// SplitMix64 (Steele, Lea & Flood 2014): decorrelates derived seeds.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Seeds LibTorch's global CPU generator (used by nn module initialisers) and, if present, CUDA's.
inline void seed_global(uint64_t seed) { torch::manual_seed(seed); }

/// One seed → a torch::Generator (for tensor sampling) and a std::mt19937_64 (for scalar draws).
/// Pass it by reference to whatever needs randomness. Not thread-safe: give each thread its own
/// stream via spawn().
class RandomState {
 public:
  explicit RandomState(uint64_t seed = 0)
      : seed_(seed),
        generator_(at::detail::createCPUGenerator(splitmix64(seed))),
        engine_(splitmix64(seed ^ 0x5EEDull)) {}

  /// The seed this state was created from.
  [[nodiscard]] uint64_t seed() const { return seed_; }
  /// Generator for torch ops that take one (torch::randn(sizes, gen), torch::randint(…, gen), …).
  torch::Generator& generator() { return generator_; }
  /// Engine for std distributions.
  std::mt19937_64& engine() { return engine_; }

  /// An independent stream derived from (seed, stream): same inputs give the same child.
  [[nodiscard]] RandomState spawn(uint64_t stream) const {
    return RandomState(splitmix64(seed_ ^ splitmix64(stream + 1)));
  }

  /// Seeds LibTorch's global generator from this seed (for module initialisers).
  void seed_global() const { mopo::seed_global(splitmix64(seed_ ^ 0x610BA1ull)); }

  /// A fresh 64-bit seed drawn from the engine (e.g. for an environment reset).
  uint64_t next_seed() { return engine_(); }

  /// Uniform integers in [0, high) as an int64 tensor of `n` elements.
  torch::Tensor randint(int64_t high, int64_t n) {
    return torch::randint(high, {n}, generator_, torch::TensorOptions().dtype(torch::kLong));
  }

  /// The generator's state (uint8 tensor) for checkpoints; restore with set_state().
  [[nodiscard]] torch::Tensor generator_state() const { return generator_.get_state(); }
  void set_generator_state(const torch::Tensor& state) { generator_.set_state(state); }

 private:
  uint64_t seed_;
  torch::Generator generator_;
  std::mt19937_64 engine_;
};

}  // namespace mopo
