// The command-line conventions shared by the example programs (docs/reliability.md#exit-codes):
//   exit 0  success (and --help);
//   exit 2  bad input: a command-line error (CLI11: unknown flag, missing or malformed value, a file that
//           does not exist) or any mopo::Error (bad config, dataset, checkpoint or model file, a mismatch
//           between them, a write that failed), reported as one line "<program>: error: <message>";
//   exit 1  an unexpected failure (a bug): any other exception, "<program>: internal error: <message>".
#pragma once

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>
#include <string>
#include <utility>

#include <mopo/core/error.hpp>

namespace mopo::examples {

inline constexpr int kExitBadInput = 2;
inline constexpr int kExitInternalError = 1;

/// A CLI11 check for counts and seeds: CLI11 would read "-1" into an unsigned option as 2^64 − 1, and a
/// negative --epochs / --episodes would be taken as "not given".
inline const CLI::Validator kNonNegative(
    [](std::string& value) {
      const auto first = value.find_first_not_of(" \t");
      return first != std::string::npos && value[first] == '-' ? "must be >= 0, got " + value : std::string();
    },
    "NON-NEGATIVE");

/// Parses the command line, then runs `body` (returning the exit code) with the exit-code mapping above.
template <class Body>
int run_cli(const std::string& program, CLI::App& app, int argc, char** argv, Body&& body) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitBadInput;  // app.exit prints the message (or the help)
  }
  try {
    return std::forward<Body>(body)();
  } catch (const mopo::Error& e) {
    std::cerr << program << ": error: " << e.what() << "\n";
    return kExitBadInput;
  } catch (const std::exception& e) {
    std::cerr << program << ": internal error: " << e.what() << "\n";
    return kExitInternalError;
  }
}

}  // namespace mopo::examples
