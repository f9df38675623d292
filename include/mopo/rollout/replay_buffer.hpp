/// @file replay_buffer.hpp
/// @brief A fixed-capacity ring buffer of transitions stored as preallocated tensors, with uniform
/// sampling through a mopo::RandomState and mixed sampling from two buffers (MOPO's real/model split).
///
/// Storage (C = capacity): observations [C, O], actions [C, A], rewards [C], next_observations [C, O],
/// terminals [C], float32 on one device. When full, each new row overwrites the oldest one (FIFO).
/// `terminals` must be 1 only for true terminal states; time-limit truncations are stored as 0.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/core/types.hpp"
#include "mopo/detail/checks.hpp"

namespace mopo::rollout {

class ReplayBuffer {
 public:
  /// @throws ValueError for non-positive sizes.
  ReplayBuffer(int64_t capacity, int64_t obs_dim, int64_t act_dim, torch::Device device = torch::kCPU)
      : capacity_(capacity), obs_dim_(obs_dim), act_dim_(act_dim), device_(device) {
    if (capacity <= 0 || obs_dim <= 0 || act_dim <= 0) {
      throw ValueError("ReplayBuffer: capacity, obs_dim and act_dim must be > 0, got " +
                       std::to_string(capacity) + ", " + std::to_string(obs_dim) + ", " +
                       std::to_string(act_dim));
    }
    const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
    storage_.observations = torch::zeros({capacity, obs_dim}, opts);
    storage_.actions = torch::zeros({capacity, act_dim}, opts);
    storage_.rewards = torch::zeros({capacity}, opts);
    storage_.next_observations = torch::zeros({capacity, obs_dim}, opts);
    storage_.terminals = torch::zeros({capacity}, opts);
  }

  /// Appends one transition (vectors as environments produce them).
  /// @throws ShapeError for wrong sizes, ValueError for NaN/Inf.
  void add(const std::vector<double>& obs, const std::vector<double>& action, double reward,
           const std::vector<double>& next_obs, bool terminal) {
    check_vector(obs, obs_dim_, "observation");
    check_vector(action, act_dim_, "action");
    check_vector(next_obs, obs_dim_, "next_observation");
    if (!std::isfinite(reward))
      throw ValueError("ReplayBuffer::add reward: not finite (" + std::to_string(reward) + ")");
    if (device_.is_cpu()) {
      copy_row(obs, storage_.observations.data_ptr<float>() + next_ * obs_dim_);
      copy_row(action, storage_.actions.data_ptr<float>() + next_ * act_dim_);
      copy_row(next_obs, storage_.next_observations.data_ptr<float>() + next_ * obs_dim_);
      storage_.rewards.data_ptr<float>()[next_] = static_cast<float>(reward);
      storage_.terminals.data_ptr<float>()[next_] = terminal ? 1.0f : 0.0f;
    } else {
      auto f = [](const std::vector<double>& v) {
        return torch::tensor(v, torch::kFloat64).to(torch::kFloat32);
      };
      storage_.observations[next_].copy_(f(obs));
      storage_.actions[next_].copy_(f(action));
      storage_.next_observations[next_].copy_(f(next_obs));
      storage_.rewards[next_].fill_(reward);
      storage_.terminals[next_].fill_(terminal ? 1.0 : 0.0);
    }
    advance(1);
  }

  /// Appends every row of `batch` in order (the last `capacity` rows if the batch is larger).
  /// @throws ShapeError / ValueError naming the field.
  void add(const Batch& batch) {
    batch.validate(obs_dim_, act_dim_, "ReplayBuffer::add batch");
    int64_t n = batch.size();
    int64_t start = 0;
    if (n > capacity_) start = n - capacity_, n = capacity_;
    torch::NoGradGuard no_grad;
    int64_t done = 0;
    while (done < n) {
      const int64_t chunk = std::min(n - done, capacity_ - next_);
      auto put = [&](torch::Tensor& dst, const torch::Tensor& src) {
        dst.narrow(0, next_, chunk).copy_(src.narrow(0, start + done, chunk));
      };
      put(storage_.observations, batch.observations);
      put(storage_.actions, batch.actions);
      put(storage_.rewards, batch.rewards);
      put(storage_.next_observations, batch.next_observations);
      put(storage_.terminals, batch.terminals);
      advance(chunk);
      done += chunk;
    }
  }

  /// `n` rows drawn uniformly with replacement from the stored ones.
  /// @throws ValueError if the buffer is empty or n ≤ 0.
  [[nodiscard]] Batch sample(int64_t n, RandomState& rng) const {
    if (size_ == 0) throw ValueError("ReplayBuffer::sample: the buffer is empty");
    if (n <= 0) throw ValueError("ReplayBuffer::sample: batch size must be > 0, got " + std::to_string(n));
    auto idx = rng.randint(size_, n);
    if (!device_.is_cpu()) idx = idx.to(device_);
    return gather(idx);
  }

  /// The rows at `indices` (int64 [N], each in [0, size())).
  [[nodiscard]] Batch gather(const torch::Tensor& indices) const {
    return {storage_.observations.index_select(0, indices), storage_.actions.index_select(0, indices),
            storage_.rewards.index_select(0, indices), storage_.next_observations.index_select(0, indices),
            storage_.terminals.index_select(0, indices)};
  }

  /// Views of the stored rows in storage order (not insertion order once the ring has wrapped).
  [[nodiscard]] Batch stored() const {
    return {storage_.observations.narrow(0, 0, size_), storage_.actions.narrow(0, 0, size_),
            storage_.rewards.narrow(0, 0, size_), storage_.next_observations.narrow(0, 0, size_),
            storage_.terminals.narrow(0, 0, size_)};
  }

  /// Forgets every row (storage stays allocated).
  void clear() { size_ = 0, next_ = 0; }

  [[nodiscard]] int64_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] int64_t capacity() const { return capacity_; }
  [[nodiscard]] int64_t obs_dim() const { return obs_dim_; }
  [[nodiscard]] int64_t act_dim() const { return act_dim_; }
  [[nodiscard]] const torch::Device& device() const { return device_; }
  /// Row the next add() writes to.
  [[nodiscard]] int64_t next_index() const { return next_; }

 private:
  void advance(int64_t n) {
    next_ = (next_ + n) % capacity_;
    size_ = std::min(size_ + n, capacity_);
  }
  static void copy_row(const std::vector<double>& v, float* dst) {
    for (std::size_t i = 0; i < v.size(); ++i) dst[i] = static_cast<float>(v[i]);
  }
  static void check_vector(const std::vector<double>& v, int64_t dim, const char* what) {
    if (static_cast<int64_t>(v.size()) != dim) {
      throw ShapeError(std::string("ReplayBuffer::add ") + what + ": expected " + std::to_string(dim) +
                       " values, got " + std::to_string(v.size()));
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!std::isfinite(v[i])) {
        throw ValueError(std::string("ReplayBuffer::add ") + what + ": value at index " + std::to_string(i) +
                         " is not finite");
      }
    }
  }

  int64_t capacity_;
  int64_t obs_dim_;
  int64_t act_dim_;
  torch::Device device_;
  Batch storage_;
  int64_t size_ = 0;
  int64_t next_ = 0;
};

/// A batch of `n` rows: ⌊n·ratio⌋ from `first`, the rest from `second`, concatenated in that order.
/// MOPO trains SAC on 5 % real / 95 % model rows (OfflineRL-Kit `--real-ratio 0.05`: int(256·0.05) = 12
/// real + 244 model; mopo-algorithm.md §8). `First` and `Second` are any row sources with
/// `sample(n, RandomState&) → Batch`: a ReplayBuffer, a RolloutBuffer (D_model), a TransitionDataset (D_env).
/// MopoTrainer draws its batches with it.
/// @throws ValueError for ratio outside [0, 1], n ≤ 0 or an empty source that must supply rows;
///         ShapeError when the two sources' rows differ in observation or action size.
template <class First, class Second>
Batch sample_mixed(const First& first, const Second& second, int64_t n, double ratio, RandomState& rng) {
  if (!(ratio >= 0.0 && ratio <= 1.0)) {
    throw ValueError("sample_mixed: ratio must be in [0, 1], got " + std::to_string(ratio));
  }
  if (n <= 0) throw ValueError("sample_mixed: batch size must be > 0, got " + std::to_string(n));
  const auto n_first = static_cast<int64_t>(std::floor(static_cast<double>(n) * ratio + 1e-9));
  const int64_t n_second = n - n_first;
  if (n_first == 0) return second.sample(n_second, rng);
  if (n_second == 0) return first.sample(n_first, rng);
  Batch a = first.sample(n_first, rng);
  Batch b = second.sample(n_second, rng);
  if (a.observations.size(1) != b.observations.size(1) || a.actions.size(1) != b.actions.size(1)) {
    throw ShapeError("sample_mixed: the two sources' rows differ in dims (obs " +
                     std::to_string(a.observations.size(1)) + " vs " +
                     std::to_string(b.observations.size(1)) + ", act " + std::to_string(a.actions.size(1)) +
                     " vs " + std::to_string(b.actions.size(1)) + ")");
  }
  return concat(a, b);
}

}  // namespace mopo::rollout
