/// @file progress.hpp
/// @brief A progress bar that redraws one line on a terminal and prints plain lines otherwise.
///
/// On a TTY: "label [#######.....] 700/1000 70% 512.3 it/s ETA 0:00:01 | suffix", redrawn in place at
/// most 10 times a second. Not on a TTY (CI logs, files, pipes): one plain line every `lines`-th part
/// of the work (default 10 lines per run) and at the end, so logs stay short and readable.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>

namespace mopo {

class ProgressBar {
 public:
  /// @param total number of work units (> 0; 0 is treated as 1)
  /// @param tty force TTY/plain mode; by default, TTY when `out` is std::cerr/std::cout on a terminal
  /// @param lines plain-mode lines per run
  ProgressBar(int64_t total, std::string label, std::ostream& out = std::cerr,
              std::optional<bool> tty = std::nullopt, int lines = 10)
      : total_(std::max<int64_t>(total, 1)),
        label_(std::move(label)),
        out_(&out),
        tty_(tty ? *tty : detect_tty(out)),
        lines_(std::max(lines, 1)),
        start_(Clock::now()),
        last_draw_(start_ - std::chrono::seconds(1)) {}

  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar() {
    if (!finished_ && done_ > 0) finish();
  }

  /// Reports progress `done` (absolute, 0…total) with an optional suffix (e.g. metrics).
  void update(int64_t done, const std::string& suffix = "") {
    done_ = std::clamp<int64_t>(done, 0, total_);
    suffix_ = suffix;
    const auto now = Clock::now();
    if (tty_) {
      if (done_ == total_ || now - last_draw_ >= std::chrono::milliseconds(100)) {
        *out_ << '\r' << render(now) << "\033[K" << std::flush;
        last_draw_ = now;
      }
    } else {
      const int64_t bucket = done_ * lines_ / total_;
      if (bucket > printed_bucket_ && done_ < total_) {
        printed_bucket_ = bucket;
        *out_ << render(now) << '\n' << std::flush;
      }
    }
  }

  /// Prints the final state and ends the line. Called by the destructor if needed.
  void finish(const std::string& suffix = "") {
    if (finished_) return;
    finished_ = true;
    if (!suffix.empty()) suffix_ = suffix;
    const auto now = Clock::now();
    if (tty_) {
      *out_ << '\r' << render(now) << "\033[K\n" << std::flush;
    } else {
      *out_ << render(now) << '\n' << std::flush;
    }
  }

  [[nodiscard]] bool is_tty() const { return tty_; }

 private:
  using Clock = std::chrono::steady_clock;

  static bool detect_tty(const std::ostream& out) {
    if (&out == &std::cerr || &out == &std::clog) return ::isatty(fileno(stderr)) != 0;
    if (&out == &std::cout) return ::isatty(fileno(stdout)) != 0;
    return false;
  }

  static std::string hms(double seconds) {
    const auto s = static_cast<int64_t>(std::max(seconds, 0.0) + 0.5);
    std::ostringstream os;
    os << s / 3600 << ':' << std::setw(2) << std::setfill('0') << (s / 60) % 60 << ':' << std::setw(2)
       << std::setfill('0') << s % 60;
    return os.str();
  }

  [[nodiscard]] std::string render(Clock::time_point now) const {
    const double elapsed = std::chrono::duration<double>(now - start_).count();
    const double frac = static_cast<double>(done_) / static_cast<double>(total_);
    const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
    std::ostringstream os;
    os << label_ << ' ';
    if (tty_) {
      constexpr int kWidth = 24;
      const int filled = static_cast<int>(frac * kWidth);
      os << '[' << std::string(static_cast<std::size_t>(filled), '#')
         << std::string(static_cast<std::size_t>(kWidth - filled), '.') << "] ";
    }
    os << done_ << '/' << total_ << ' ' << static_cast<int>(frac * 100.0) << "% " << std::fixed
       << std::setprecision(1);
    if (rate > 0 && rate < 1) {
      os << 1.0 / rate << " s/it ";  // slow items (training epochs): seconds per item reads better
    } else {
      os << rate << " it/s ";
    }
    if (done_ < total_) {
      os << "ETA " << (rate > 0 ? hms(static_cast<double>(total_ - done_) / rate) : std::string("?"));
    } else {
      os << "took " << hms(elapsed);
    }
    if (!suffix_.empty()) os << " | " << suffix_;
    return os.str();
  }

  int64_t total_;
  std::string label_;
  std::ostream* out_;
  bool tty_;
  int lines_;
  Clock::time_point start_;
  Clock::time_point last_draw_;
  int64_t done_ = 0;
  int64_t printed_bucket_ = 0;
  bool finished_ = false;
  std::string suffix_;
};

}  // namespace mopo
