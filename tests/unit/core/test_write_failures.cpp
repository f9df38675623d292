// Write failures of the torch-free writers (issue 16, item 5): atomic_write and the metrics logs under a
// real "file too large" (RLIMIT_FSIZE: write(2) fails with EFBIG, as on a full quota) and a real "no space
// left on device" (/dev/full). Neither needs root; the tmpfs and read-only mounts of whole runs are in
// tests/integration/write_failure_test.py.
#include <signal.h>
#include <sys/resource.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>

#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/metrics.hpp"

namespace fs = std::filesystem;
using Catch::Matchers::Contains;

namespace {

fs::path fresh_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("mopo_wf_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Lowers this process's file-size limit for its lifetime; SIGXFSZ is ignored so write(2) returns EFBIG.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_) == 0);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = old_;
    lim.rlim_cur = bytes;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &lim) == 0);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit old_{};
  sighandler_t old_handler_ = SIG_DFL;
};

std::string what_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const mopo::IoError& e) {
    return e.what();
  }
  return "(no IoError)";
}

bool has_temp_files(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("atomic_write: a write that hits the file-size limit keeps the old file and names the path",
          "[unit][core][io][write-failure]") {
  const auto dir = fresh_dir("atomic");
  const auto target = dir / "checkpoint.pt";
  mopo::atomic_write(target, "the previous checkpoint");
  std::string message;
  {
    const FileSizeLimit limit(4096);
    message = what_of([&] { mopo::atomic_write(target, std::string(64 * 1024, 'x')); });
  }
  CHECK_THAT(message, Contains(target.string()) && Contains("File too large"));
  CHECK(mopo::read_file(target) == "the previous checkpoint");
  CHECK_FALSE(has_temp_files(dir));
  fs::remove_all(dir);
}

TEST_CASE("metrics logs: a row that does not fit is removed again, the file keeps its complete rows",
          "[unit][core][metrics][write-failure]") {
  const auto dir = fresh_dir("logs");
  const auto csv_file = dir / "metrics.csv";
  const auto jsonl_file = dir / "metrics.jsonl";
  mopo::CsvWriter csv(csv_file);
  mopo::JsonlWriter jsonl(jsonl_file);
  const mopo::Metrics row{{"epoch", 1}, {"sac/critic_loss", 0.123456789}, {"eval/return_mean", -386.95}};
  csv.write(row);
  jsonl.write(row);
  const std::string csv_before = mopo::read_file(csv_file);
  const std::string jsonl_before = mopo::read_file(jsonl_file);
  std::string csv_error, jsonl_error;
  {
    // Room for a few bytes more than the files hold: each next row starts, is cut by EFBIG, is removed.
    const FileSizeLimit limit(static_cast<rlim_t>(std::max(csv_before.size(), jsonl_before.size()) + 8));
    csv_error = what_of([&] { csv.write(row); });
    jsonl_error = what_of([&] { jsonl.write(row); });
  }
  CHECK_THAT(csv_error, Contains(csv_file.string()) && Contains("File too large"));
  CHECK_THAT(jsonl_error, Contains(jsonl_file.string()) && Contains("File too large"));
  CHECK(mopo::read_file(csv_file) == csv_before);
  CHECK(mopo::read_file(jsonl_file) == jsonl_before);
  // Room again: the writers go on with complete rows (the header is not repeated).
  csv.write(mopo::Metrics{{"epoch", 2}});
  jsonl.write(mopo::Metrics{{"epoch", 2}});
  CHECK(mopo::read_file(csv_file) == csv_before + "2,,\n");
  CHECK(mopo::read_file(jsonl_file) == jsonl_before + "{\"epoch\":2.0}\n");
  fs::remove_all(dir);
}

TEST_CASE("metrics logs: a full device (/dev/full, ENOSPC) is an IoError naming the file",
          "[unit][core][metrics][write-failure]") {
  if (!fs::exists("/dev/full")) {
    WARN("SKIPPED: no /dev/full on this system; the ENOSPC case is not checked here");
    return;
  }
  mopo::CsvWriter csv("/dev/full");
  CHECK_THAT(what_of([&] {
               csv.write(mopo::Metrics{{"epoch", 1}});
             }),
             Contains("/dev/full") && Contains("No space left on device"));
  mopo::JsonlWriter jsonl("/dev/full");
  CHECK_THAT(what_of([&] {
               jsonl.write(mopo::Metrics{{"epoch", 1}});
             }),
             Contains("/dev/full") && Contains("No space left on device"));
}
