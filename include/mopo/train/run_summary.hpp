/// @file run_summary.hpp
/// @brief What a run says about itself: how model training ended (describe_stop, model_report_json, as
/// train_mopo writes <out>/model_report.json) and what the metrics log says — final, best and recent
/// evaluation scores and the wall time, read back from `metrics.jsonl` (MopoTrainer::fit writes one JSON
/// object per epoch; epochs without an evaluation carry null scores). No LibTorch needed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mopo/core/error.hpp"
#include "mopo/models/ensemble_options.hpp"

namespace mopo::train {

/// Why model training ended, in words, e.g. "epoch cap (model_training.max_epochs = 30)".
inline std::string describe_stop(const models::EnsembleFitReport& r, const models::EnsembleTrainOptions& o) {
  auto num = [](double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  if (r.stop_reason == "early_stopping") {
    return "early stop (no member improved its holdout MSE by > " + num(100 * o.improvement_threshold) +
           " % for " + std::to_string(o.max_epochs_since_update + 1) + " epochs)";
  }
  if (r.stop_reason == "max_epochs")
    return "epoch cap (model_training.max_epochs = " + std::to_string(o.max_epochs) + ")";
  if (r.stop_reason == "max_seconds")
    return "time cap (model_training.max_seconds = " + num(o.max_seconds) + ")";
  return r.stop_reason;
}

/// A fit report as JSON: epochs, stop reason (key and words), seconds, split sizes, elites, every member's
/// holdout MSE, and the elites' mean holdout MSE overall, per output dimension, over the Δobs dimensions
/// and for the reward (the last dimension).
inline nlohmann::json model_report_json(const models::EnsembleFitReport& r,
                                        const models::EnsembleTrainOptions& o) {
  double mse = 0;
  for (auto i : r.elites) mse += r.best_holdout_mse.at(static_cast<std::size_t>(i));
  mse /= static_cast<double>(std::max<std::size_t>(r.elites.size(), 1));
  const auto& d = r.holdout_mse_per_dim;
  double obs = 0;
  for (std::size_t i = 0; i + 1 < d.size(); ++i) obs += d[i];
  if (d.size() > 1) obs /= static_cast<double>(d.size() - 1);
  return {{"epochs", r.epochs()},         {"stop_reason", r.stop_reason},
          {"stop", describe_stop(r, o)},  {"seconds", r.seconds},
          {"train_rows", r.train_size},   {"holdout_rows", r.holdout_size},
          {"elites", r.elites},           {"best_holdout_mse", r.best_holdout_mse},
          {"elite_holdout_mse", mse},     {"elite_holdout_mse_per_dim", d},
          {"elite_holdout_mse_obs", obs}, {"elite_holdout_mse_reward", d.empty() ? 0.0 : d.back()}};
}

/// Evaluation summary of one run.
struct ScoreSummary {
  std::string column;       ///< the score column used (eval/normalized_score, else eval/return_mean)
  int64_t epochs = 0;       ///< metrics rows (epochs trained)
  int64_t evaluations = 0;  ///< rows with a finite score
  double final_score = std::numeric_limits<double>::quiet_NaN();  ///< last evaluation
  int64_t final_epoch = 0;
  double best_score = std::numeric_limits<double>::quiet_NaN();
  int64_t best_epoch = 0;
  double recent_mean = std::numeric_limits<double>::quiet_NaN();  ///< mean of the last `recent` evaluations
  int64_t recent = 0;                                             ///< how many that mean covers
  double seconds = 0.0;  ///< sum of the rows' epoch_seconds (policy training + evaluation wall time)
};

/// Reads `metrics_jsonl` and summarises its evaluations; `last_n` sets how many recent evaluations
/// `recent_mean` averages. @throws IoError naming the file (and line) when it is missing or malformed.
inline ScoreSummary summarize_metrics(const std::filesystem::path& metrics_jsonl, int64_t last_n = 5) {
  std::ifstream in(metrics_jsonl);
  if (!in) throw IoError(metrics_jsonl.string() + ": cannot open metrics log");
  struct Row {
    int64_t epoch;
    double score;
    double ret;
  };
  std::vector<Row> rows;
  double seconds = 0.0;
  auto number = [](const nlohmann::json& row, const char* key) {
    const auto it = row.find(key);
    return it != row.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
  };
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw IoError(metrics_jsonl.string() + ":" + std::to_string(line_no) + ": not a JSON object (" +
                    e.what() + ")");
    }
    if (!row.is_object()) {
      throw IoError(metrics_jsonl.string() + ":" + std::to_string(line_no) + ": not a JSON object");
    }
    const double epoch = number(row, "epoch");
    rows.push_back(
        {std::isfinite(epoch) ? static_cast<int64_t>(epoch) : static_cast<int64_t>(rows.size() + 1),
         number(row, "eval/normalized_score"), number(row, "eval/return_mean")});
    const double s = number(row, "epoch_seconds");
    if (std::isfinite(s)) seconds += s;
  }
  ScoreSummary out;
  out.epochs = static_cast<int64_t>(rows.size());
  out.seconds = seconds;
  bool have_score = false;
  for (const auto& r : rows) have_score = have_score || std::isfinite(r.score);
  out.column = have_score ? "eval/normalized_score" : "eval/return_mean";
  std::vector<std::pair<int64_t, double>> evals;
  for (const auto& r : rows) {
    const double v = have_score ? r.score : r.ret;
    if (std::isfinite(v)) evals.emplace_back(r.epoch, v);
  }
  out.evaluations = static_cast<int64_t>(evals.size());
  if (evals.empty()) return out;
  out.final_epoch = evals.back().first;
  out.final_score = evals.back().second;
  out.best_score = -std::numeric_limits<double>::infinity();
  for (const auto& [epoch, v] : evals) {
    if (v > out.best_score) {
      out.best_score = v;
      out.best_epoch = epoch;
    }
  }
  out.recent = std::min<int64_t>(std::max<int64_t>(last_n, 1), out.evaluations);
  double sum = 0.0;
  for (int64_t i = out.evaluations - out.recent; i < out.evaluations; ++i)
    sum += evals[static_cast<std::size_t>(i)].second;
  out.recent_mean = sum / static_cast<double>(out.recent);
  return out;
}

}  // namespace mopo::train
