/// @file metrics.hpp
/// @brief Metrics as returned by update()/train steps, and CSV / JSON-lines writers for them.
///
/// Algorithms return `Metrics` (an ordered list of name → value) instead of logging (style.md P4);
/// programs decide where they go:
/// @code
/// mopo::CsvWriter csv("runs/x/metrics.csv");
/// mopo::JsonlWriter jsonl("runs/x/metrics.jsonl");
/// mopo::Metrics m{{"step", 1000}, {"eval/return", 4123.5}};
/// csv.write(m); jsonl.write(m);
/// @endcode
/// Log files are appended line by line, each row with one write(2), so a crash loses at most one row
/// (they are logs, not checkpoints, so they are not written atomically). A row that cannot be written
/// (disk full, file too large, read-only file system) throws IoError naming the file, and the partial
/// row is cut off again: the file keeps its complete rows.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iomanip>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/json_text.hpp"

namespace mopo {

/// One named scalar.
struct Metric {
  std::string name;
  double value = 0.0;
};

/// An ordered collection of metrics; names are unique (set() replaces).
class Metrics {
 public:
  Metrics() = default;
  Metrics(std::initializer_list<Metric> init) {
    for (const auto& m : init) set(m.name, m.value);
  }

  /// Sets (or replaces) a value, keeping first-insertion order.
  Metrics& set(const std::string& name, double value) {
    for (auto& m : items_) {
      if (m.name == name) {
        m.value = value;
        return *this;
      }
    }
    items_.push_back({name, value});
    return *this;
  }

  /// Appends every metric of `other`, with an optional name prefix ("eval/").
  Metrics& merge(const Metrics& other, const std::string& prefix = "") {
    for (const auto& m : other) set(prefix + m.name, m.value);
    return *this;
  }

  [[nodiscard]] bool contains(const std::string& name) const {
    for (const auto& m : items_) {
      if (m.name == name) return true;
    }
    return false;
  }

  /// @throws ValueError naming the metric if absent.
  [[nodiscard]] double at(const std::string& name) const {
    for (const auto& m : items_) {
      if (m.name == name) return m.value;
    }
    throw ValueError("metric \"" + name + "\" not present");
  }

  [[nodiscard]] std::size_t size() const { return items_.size(); }
  [[nodiscard]] bool empty() const { return items_.empty(); }
  [[nodiscard]] std::vector<Metric>::const_iterator begin() const { return items_.begin(); }
  [[nodiscard]] std::vector<Metric>::const_iterator end() const { return items_.end(); }

  /// "name=value name=value" for progress lines.
  [[nodiscard]] std::string to_string(int precision = 4) const {
    std::ostringstream os;
    os << std::setprecision(precision);
    bool first = true;
    for (const auto& m : items_) {
      os << (first ? "" : " ") << m.name << '=' << m.value;
      first = false;
    }
    return os.str();
  }

 private:
  std::vector<Metric> items_;
};

namespace detail {
/// An append-only log file written one whole line (or header + line) at a time: either all of the bytes
/// reach the file or none do — after a failed write (disk full, file too large, read-only, I/O error) the
/// file is cut back to its length before the call, so it keeps only complete rows.
class LogFile {
 public:
  LogFile(std::filesystem::path file, bool append) : file_(std::move(file)) {
    std::error_code ec;
    if (file_.has_parent_path()) std::filesystem::create_directories(file_.parent_path(), ec);
    fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0644);
    if (fd_ < 0) throw IoError(file_.string() + ": cannot open for writing: " + std::strerror(errno));
    if (!append) return;
    if (::lseek(fd_, 0, SEEK_END) < 0) {
      const int err = errno;
      ::close(fd_);
      throw IoError(file_.string() + ": cannot seek to the end: " + std::strerror(err));
    }
  }
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;
  ~LogFile() {
    if (fd_ >= 0) ::close(fd_);
  }

  /// Appends `text` whole. @throws IoError naming the file and the reason; the file is unchanged then.
  void append(const std::string& text) {
    const off_t before = ::lseek(fd_, 0, SEEK_END);
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd_, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        const int err = n < 0 ? errno : EIO;
        // Cut the partial row off (needs no space); if even that fails, the torn last line is what a
        // resumed run drops (keep_log_rows_through).
        if (before >= 0 && done > 0) (void)::ftruncate(fd_, before);
        throw IoError(file_.string() + ": cannot append a row (" + std::to_string(done) + " of " +
                      std::to_string(text.size()) +
                      " bytes written, the row was removed again): " + std::strerror(err));
      }
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  std::filesystem::path file_;
  int fd_ = -1;
};

/// Shortest round-trip text for a double; NaN/Inf spelled as Python's csv/pandas read them.
inline std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream os;
  os << std::setprecision(std::numeric_limits<double>::max_digits10) << v;
  // Prefer the short form when it round-trips.
  for (int p = 6; p < std::numeric_limits<double>::max_digits10; ++p) {
    std::ostringstream s;
    s << std::setprecision(p) << v;
    if (std::stod(s.str()) == v) return s.str();
  }
  return os.str();
}

/// One CSV field as RFC 4180 (and Python's csv module) reads it: quoted, inner quotes doubled, when it
/// holds a comma, a quote or a line break — a file path may (train_mopo's dataset.csv records one).
inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (const char c : s) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + '"';
}
}  // namespace detail

/// Writes metrics rows to a CSV file. The columns are fixed by the first row (or the constructor);
/// a later row may omit columns (empty cell) but may not add new ones.
class CsvWriter {
 public:
  /// @param append keep an existing file (e.g. when resuming) and check its header matches.
  explicit CsvWriter(std::filesystem::path file, bool append = false) : file_(std::move(file)) {
    if (append && std::filesystem::exists(file_)) {
      std::ifstream in(file_);
      std::string header;
      std::getline(in, header);
      std::stringstream ss(header);
      for (std::string col; std::getline(ss, col, ',');) columns_.push_back(col);
    }
    out_ = std::make_unique<detail::LogFile>(file_, append);
  }

  /// Appends one row (with the header before the first one), whole or not at all.
  /// @throws ValueError naming a metric that is not a column; IoError naming the file if the write fails
  /// (the file then still ends with the last complete row).
  void write(const Metrics& row) {
    std::vector<std::string> columns = columns_;
    std::ostringstream text;
    if (columns.empty()) {
      for (const auto& m : row) {
        if (m.name.find_first_of(",\"\n") != std::string::npos) {
          throw ValueError(file_.string() + ": metric name \"" + m.name + "\" cannot be a CSV column");
        }
        columns.push_back(m.name);
      }
      for (std::size_t i = 0; i < columns.size(); ++i) text << (i ? "," : "") << columns[i];
      text << '\n';
    }
    for (const auto& m : row) {
      bool known = false;
      for (const auto& c : columns) known = known || c == m.name;
      if (!known)
        throw ValueError(file_.string() + ": metric \"" + m.name + "\" is not a column of this CSV");
    }
    for (std::size_t i = 0; i < columns.size(); ++i) {
      if (i) text << ',';
      if (row.contains(columns[i])) text << detail::format_number(row.at(columns[i]));
    }
    text << '\n';
    out_->append(text.str());
    columns_ = std::move(columns);
  }

  [[nodiscard]] const std::vector<std::string>& columns() const { return columns_; }

 private:
  std::filesystem::path file_;
  std::unique_ptr<detail::LogFile> out_;
  std::vector<std::string> columns_;
};

/// Writes one JSON object per line ("JSON lines"); rows may have different keys. NaN/Inf become null.
class JsonlWriter {
 public:
  explicit JsonlWriter(std::filesystem::path file, bool append = false)
      : file_(std::move(file)), out_(std::make_unique<detail::LogFile>(file_, append)) {}

  /// Appends one line, whole or not at all. @throws IoError naming the file if the write fails.
  void write(const Metrics& row) {
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    for (const auto& m : row) {
      if (std::isfinite(m.value)) {
        j[m.name] = m.value;
      } else {
        j[m.name] = nullptr;
      }
    }
    out_->append(json_text(j, -1));
  }

 private:
  std::filesystem::path file_;
  std::unique_ptr<detail::LogFile> out_;
};

/// Keeps the rows of a metrics log (CSV with a header, or JSON lines) whose `column` is at most `max_value`,
/// dropping later rows and a torn last line (no newline: the process was killed while writing it); the
/// file is rewritten atomically, and only when something is dropped. A resumed run calls it with the
/// checkpoint's epoch before appending, so every epoch's row appears exactly once, whenever the previous
/// process was killed. A missing file is left missing.
/// @throws IoError naming the file and line when a complete row has no readable `column`.
inline void keep_log_rows_through(const std::filesystem::path& file, const std::string& column,
                                  double max_value) {
  if (!std::filesystem::exists(file)) return;
  std::ifstream in(file, std::ios::binary);
  if (!in) throw IoError(file.string() + ": cannot open for reading: " + std::strerror(errno));
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string text = buf.str();
  const bool csv = file.extension() == ".csv";
  std::string kept;
  std::size_t col = std::string::npos;
  bool dropped = false;
  std::size_t pos = 0;
  for (int64_t line_no = 1; pos < text.size(); ++line_no) {
    const std::size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {  // torn last line
      dropped = true;
      break;
    }
    const std::string line = text.substr(pos, nl - pos);
    pos = nl + 1;
    auto bad = [&](const std::string& why) {
      return IoError(file.string() + ":" + std::to_string(line_no) + ": " + why);
    };
    if (csv && line_no == 1) {  // the header
      std::stringstream ss(line);
      std::size_t i = 0;
      for (std::string name; std::getline(ss, name, ','); ++i) {
        if (name == column) col = i;
      }
      if (col == std::string::npos) throw bad("no column \"" + column + "\" in the header");
      kept += line + '\n';
      continue;
    }
    if (line.empty()) continue;
    double value = std::numeric_limits<double>::quiet_NaN();
    if (csv) {
      std::stringstream ss(line);
      std::string cell;
      std::size_t i = 0;
      while (i <= col && std::getline(ss, cell, ',')) ++i;
      if (i <= col) throw bad("the row has no cell for column \"" + column + "\"");
      try {
        value = std::stod(cell);
      } catch (const std::exception&) {
        throw bad("column \"" + column + "\" is not a number: \"" + cell + "\"");
      }
    } else {
      const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object() || !j.contains(column) || !j[column].is_number())
        throw bad("not a JSON object with a number \"" + column + "\"");
      value = j[column].get<double>();
    }
    if (value <= max_value) {
      kept += line + '\n';
    } else {
      dropped = true;
    }
  }
  if (dropped) atomic_write(file, kept);
}

}  // namespace mopo
