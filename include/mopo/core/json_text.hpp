/// @file json_text.hpp
/// @brief JSON text for the files mopo writes (configs, cards, summaries, checkpoint indices, metrics).
///
/// nlohmann's dump() throws type_error 316 on a string that is not valid UTF-8, and such strings reach
/// these files from the command line: a dataset, policy or output path is bytes on Linux (a Latin-1 file
/// name, say). Writing the file must not fail for that, so every file mopo writes is dumped with the
/// replace handler: each invalid byte becomes U+FFFD in the JSON, the rest of the string is kept, and the
/// file stays valid JSON that any reader parses. The paths themselves are used unchanged.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace mopo {

/// `j` as JSON text (pretty-printed with `indent` spaces; -1: one line), invalid UTF-8 bytes in its strings
/// replaced by U+FFFD. Ends with a newline when `newline` is set (files), not otherwise (JSONL rows).
/// A template so that an nlohmann::ordered_json keeps its key order (metrics rows, result.json); a braced
/// initializer list becomes a plain nlohmann::json (sorted keys).
template <class Json = nlohmann::json>
std::string json_text(const Json& j, int indent = 2, bool newline = true) {
  std::string s = j.dump(indent, ' ', false, Json::error_handler_t::replace);
  if (newline) s += '\n';
  return s;
}

}  // namespace mopo
