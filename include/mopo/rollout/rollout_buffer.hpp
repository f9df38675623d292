/// @file rollout_buffer.hpp
/// @brief RolloutBuffer: the model-data buffer of MOPO, keeping exactly the last k epochs of rollouts.
///
/// The original keeps `model_retain_epochs = 5` epochs of model transitions in a FIFO of capacity
/// retain · h · rollout_batch (mopo-algorithm.md §5.1). A plain ring of that capacity keeps *more* than
/// k epochs whenever rollouts terminate early; this buffer tracks epoch boundaries, so it holds exactly
/// the transitions of the last k calls to begin_epoch(), whatever their lengths.
///
/// Storage is preallocated (capacity = k · epoch_capacity rows, float32): observations [C, O],
/// actions [C, A], rewards [C], next_observations [C, O], terminals [C]. Rows of one epoch are
/// contiguous in ring order; the valid region runs from start_ for size_ rows (wrapping).
#pragma once

#include <torch/torch.h>

#include <deque>
#include <string>

#include "mopo/core/error.hpp"
#include "mopo/core/random.hpp"
#include "mopo/core/types.hpp"
#include "mopo/detail/checks.hpp"

namespace mopo::rollout {

class RolloutBuffer {
 public:
  /// @param retain_epochs k ≥ 1 epochs kept
  /// @param epoch_capacity most rows one epoch may add (rollout_batch · h)
  /// @throws ValueError for non-positive sizes.
  RolloutBuffer(int64_t retain_epochs, int64_t epoch_capacity, int64_t obs_dim, int64_t act_dim,
                torch::Device device = torch::kCPU)
      : retain_(retain_epochs), epoch_capacity_(epoch_capacity), obs_dim_(obs_dim), act_dim_(act_dim) {
    if (retain_epochs <= 0 || epoch_capacity <= 0 || obs_dim <= 0 || act_dim <= 0) {
      throw ValueError("RolloutBuffer: retain_epochs, epoch_capacity, obs_dim and act_dim must be > 0, got " +
                       std::to_string(retain_epochs) + ", " + std::to_string(epoch_capacity) + ", " +
                       std::to_string(obs_dim) + ", " + std::to_string(act_dim));
    }
    capacity_ = retain_epochs * epoch_capacity;
    const auto f = torch::TensorOptions().dtype(torch::kFloat32).device(device);
    storage_ = {torch::zeros({capacity_, obs_dim}, f), torch::zeros({capacity_, act_dim}, f),
                torch::zeros({capacity_}, f), torch::zeros({capacity_, obs_dim}, f),
                torch::zeros({capacity_}, f)};
  }

  /// Starts a new epoch; if k epochs are already held, the oldest one is dropped.
  void begin_epoch() {
    epoch_sizes_.push_back(0);
    while (static_cast<int64_t>(epoch_sizes_.size()) > retain_) {
      const int64_t drop = epoch_sizes_.front();
      epoch_sizes_.pop_front();
      start_ = (start_ + drop) % capacity_;
      size_ -= drop;
    }
  }

  /// Appends rows to the current epoch (starting one if none was begun).
  /// @throws ShapeError / ValueError for malformed or non-finite rows, or if the epoch would exceed
  ///         epoch_capacity.
  void add(const Batch& batch) {
    batch.validate(obs_dim_, act_dim_, "RolloutBuffer::add batch");
    if (epoch_sizes_.empty()) begin_epoch();
    const int64_t n = batch.size();
    if (epoch_sizes_.back() + n > epoch_capacity_) {
      throw ValueError("RolloutBuffer::add: epoch would hold " + std::to_string(epoch_sizes_.back() + n) +
                       " rows, more than epoch_capacity " + std::to_string(epoch_capacity_));
    }
    torch::NoGradGuard no_grad;
    int64_t done = 0;
    while (done < n) {
      const int64_t pos = (start_ + size_ + done) % capacity_;
      const int64_t len = std::min(n - done, capacity_ - pos);
      auto put = [&](torch::Tensor& dst, const torch::Tensor& src) {
        dst.narrow(0, pos, len).copy_(src.narrow(0, done, len));
      };
      put(storage_.observations, batch.observations);
      put(storage_.actions, batch.actions);
      put(storage_.rewards, batch.rewards);
      put(storage_.next_observations, batch.next_observations);
      put(storage_.terminals, batch.terminals);
      done += len;
    }
    size_ += n;
    epoch_sizes_.back() += n;
  }

  /// `n` rows drawn uniformly (with replacement) from the held epochs.
  /// @throws ValueError if the buffer is empty or n ≤ 0.
  [[nodiscard]] Batch sample(int64_t n, RandomState& rng) const {
    if (n <= 0) throw ValueError("RolloutBuffer::sample: n must be > 0, got " + std::to_string(n));
    if (size_ == 0)
      throw ValueError("RolloutBuffer::sample: the buffer is empty (run a model rollout first)");
    auto idx = (rng.randint(size_, n) + start_).remainder_(capacity_);
    if (!storage_.observations.device().is_cpu()) idx = idx.to(storage_.observations.device());
    return gather(idx);
  }

  /// The held rows, oldest first (a copy).
  [[nodiscard]] Batch contents() const {
    return gather((torch::arange(size_, torch::kLong) + start_).remainder_(capacity_));
  }

  [[nodiscard]] int64_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] int64_t capacity() const { return capacity_; }
  [[nodiscard]] int64_t epochs() const { return static_cast<int64_t>(epoch_sizes_.size()); }
  [[nodiscard]] int64_t retain_epochs() const { return retain_; }
  [[nodiscard]] int64_t epoch_capacity() const { return epoch_capacity_; }
  [[nodiscard]] int64_t obs_dim() const { return obs_dim_; }
  [[nodiscard]] int64_t act_dim() const { return act_dim_; }

  /// Writes the held rows and epoch boundaries into an archive (for trainer checkpoints).
  void save(torch::serialize::OutputArchive& archive, const std::string& prefix = "rollout_buffer") const {
    const Batch c = contents();
    archive.write(prefix + ".observations", c.observations.cpu(), true);
    archive.write(prefix + ".actions", c.actions.cpu(), true);
    archive.write(prefix + ".rewards", c.rewards.cpu(), true);
    archive.write(prefix + ".next_observations", c.next_observations.cpu(), true);
    archive.write(prefix + ".terminals", c.terminals.cpu(), true);
    std::vector<int64_t> sizes(epoch_sizes_.begin(), epoch_sizes_.end());
    archive.write(prefix + ".epoch_sizes", torch::tensor(sizes, torch::kLong), true);
  }

  /// Restores what save() wrote (the buffer's dims must match). @throws ShapeError / ValueError.
  void load(torch::serialize::InputArchive& archive, const std::string& prefix = "rollout_buffer") {
    Batch c;
    torch::Tensor sizes;
    archive.read(prefix + ".observations", c.observations, true);
    archive.read(prefix + ".actions", c.actions, true);
    archive.read(prefix + ".rewards", c.rewards, true);
    archive.read(prefix + ".next_observations", c.next_observations, true);
    archive.read(prefix + ".terminals", c.terminals, true);
    archive.read(prefix + ".epoch_sizes", sizes, true);
    for (const auto* t :
         {&c.observations, &c.actions, &c.rewards, &c.next_observations, &c.terminals, &sizes})
      mopo::detail::check_storage(*t, prefix);
    if (sizes.numel() > retain_ || (sizes.numel() > 0 && sizes.max().item<int64_t>() > epoch_capacity_) ||
        sizes.sum().item<int64_t>() != c.size()) {
      throw ValueError(prefix + ": saved epochs do not fit this buffer (retain " + std::to_string(retain_) +
                       ", epoch capacity " + std::to_string(epoch_capacity_) + ")");
    }
    epoch_sizes_.clear();
    start_ = 0;
    size_ = 0;
    int64_t offset = 0;
    for (int64_t i = 0; i < sizes.numel(); ++i) {
      const int64_t n = sizes[i].item<int64_t>();
      epoch_sizes_.push_back(0);
      if (n > 0) {
        add({c.observations.narrow(0, offset, n), c.actions.narrow(0, offset, n),
             c.rewards.narrow(0, offset, n), c.next_observations.narrow(0, offset, n),
             c.terminals.narrow(0, offset, n)});
      }
      offset += n;
    }
  }

 private:
  [[nodiscard]] Batch gather(const torch::Tensor& idx) const {
    return {storage_.observations.index_select(0, idx), storage_.actions.index_select(0, idx),
            storage_.rewards.index_select(0, idx), storage_.next_observations.index_select(0, idx),
            storage_.terminals.index_select(0, idx)};
  }

  int64_t retain_;
  int64_t epoch_capacity_;
  int64_t obs_dim_;
  int64_t act_dim_;
  int64_t capacity_ = 0;
  Batch storage_;
  std::deque<int64_t> epoch_sizes_;
  int64_t start_ = 0;
  int64_t size_ = 0;
};

}  // namespace mopo::rollout
