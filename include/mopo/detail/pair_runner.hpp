/// @file pair_runner.hpp
/// @brief Runs two functions at once, one on a persistent worker thread with one intra-op (BLAS) thread and
/// one on the caller's thread (the two-thread fused SAC update and ensemble training step).
#pragma once

#include <ATen/Parallel.h>

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace mopo::detail {

/// Runs two functions at once: one on a persistent worker thread, one on the caller's thread.
/// The worker uses one intra-op (BLAS) thread. Exceptions from either side are rethrown by run().
class PairRunner {
 public:
  PairRunner() = default;
  PairRunner(const PairRunner&) = delete;
  PairRunner& operator=(const PairRunner&) = delete;
  ~PairRunner() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }

  void run(const std::function<void()>& on_worker, const std::function<void()>& on_caller) {
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &on_worker;
      done_ = false;
      worker_error_ = nullptr;
    }
    wake_.notify_all();
    std::exception_ptr caller_error;
    try {
      on_caller();
    } catch (...) {
      caller_error = std::current_exception();
    }
    std::unique_lock<std::mutex> lock(mutex_);
    finished_.wait(lock, [this] { return done_; });
    if (caller_error) std::rethrow_exception(caller_error);
    if (worker_error_) std::rethrow_exception(worker_error_);
  }

 private:
  void loop() {
    // OpenMP's thread count is per thread: a new thread would otherwise let OpenBLAS use every core.
    at::set_num_threads(1);
    for (;;) {
      const std::function<void()>* task = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stop_ || task_ != nullptr; });
        if (stop_) return;
        task = task_;
        task_ = nullptr;
      }
      std::exception_ptr error;
      try {
        (*task)();
      } catch (...) {
        error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        worker_error_ = error;
        done_ = true;
      }
      finished_.notify_all();
    }
  }

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_, finished_;
  const std::function<void()>* task_ = nullptr;
  bool done_ = true;
  bool stop_ = false;
  std::exception_ptr worker_error_;
};

}  // namespace mopo::detail
