/// @file json_config.hpp
/// @brief Typed options structs loaded from JSON: defaults live in the struct, unknown keys are
/// rejected, and every error names the key path (e.g. "sac.actor_lr: expected number, got string").
///
/// An options struct describes its fields with one member template:
/// @code
/// struct SACOptions {
///   double actor_lr = 3e-4;
///   std::vector<int64_t> hidden = {256, 256};
///   template <class V> void visit(V&& v) { v("actor_lr", actor_lr); v("hidden", hidden); }
///   void validate() const { if (actor_lr <= 0) throw mopo::ConfigError("actor_lr: must be > 0"); }
/// };
/// auto opts = mopo::config::load_file<SACOptions>("sac.json");  // keys absent from the file keep defaults
/// @endcode
/// Supported field types: bool, integers, floating point, std::string, std::vector<T>,
/// std::optional<T> (JSON null = empty), std::map<std::string, T>, and nested structs that have visit().
/// `validate()` is optional; when present it runs after loading, and a ConfigError it throws is
/// prefixed with the struct's key path.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/json_text.hpp"
#include "mopo/detail/detected.hpp"

namespace mopo::config {

using json = nlohmann::json;

namespace detail {

struct NameCollector {
  std::vector<std::string> names;
  template <class T>
  void operator()(const char* name, T& /*field*/) {
    names.emplace_back(name);
  }
};

template <class T>
using visit_t = decltype(std::declval<T&>().visit(std::declval<NameCollector&>()));
template <class T>
using validate_t = decltype(std::declval<const T&>().validate());

template <class T>
inline constexpr bool is_options_v = mopo::detail::is_detected_v<visit_t, T>;

template <class T>
struct is_vector : std::false_type {};
template <class T, class A>
struct is_vector<std::vector<T, A>> : std::true_type {};
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_string_map : std::false_type {};
template <class T, class C, class A>
struct is_string_map<std::map<std::string, T, C, A>> : std::true_type {};

inline std::string join_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

inline std::string at(const std::string& path) { return path.empty() ? std::string("<root>") : path; }

/// "number", "string", … plus the value for scalars, for error messages.
inline std::string describe(const json& j) {
  std::string s = j.is_number() ? std::string("number") : std::string(j.type_name());
  if (j.is_primitive() && !j.is_null()) s += " " + j.dump();
  return s;
}

inline std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace detail

template <class T>
void from_json(const json& j, T& out, const std::string& path = "");

template <class T>
json to_json(const T& value);

namespace detail {

template <class T>
void parse_value(const json& j, T& out, const std::string& path) {
  auto fail = [&](const char* expected) {
    throw ConfigError(at(path) + ": expected " + expected + ", got " + describe(j));
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!j.is_boolean()) fail("boolean");
    out = j.get<bool>();
  } else if constexpr (std::is_integral_v<T>) {
    if (j.is_number_integer() || j.is_number_unsigned()) {
      if (j.is_number_unsigned()) {
        const auto v = j.get<std::uint64_t>();
        if (v > static_cast<std::uint64_t>(std::numeric_limits<T>::max())) {
          throw ConfigError(at(path) + ": value " + j.dump() + " is out of range");
        }
        out = static_cast<T>(v);
      } else {
        const auto v = j.get<std::int64_t>();
        if (v < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
            (v > 0 &&
             static_cast<std::uint64_t>(v) > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))) {
          throw ConfigError(at(path) + ": value " + j.dump() + " is out of range");
        }
        out = static_cast<T>(v);
      }
    } else if (j.is_number_float()) {
      // Accept whole numbers written as floats (1e6), reject fractions.
      const double v = j.get<double>();
      if (!std::isfinite(v) || std::floor(v) != v) fail("integer");
      if (v < static_cast<double>(std::numeric_limits<T>::min()) ||
          v > static_cast<double>(std::numeric_limits<T>::max())) {
        throw ConfigError(at(path) + ": value " + j.dump() + " is out of range");
      }
      out = static_cast<T>(v);
    } else {
      fail("integer");
    }
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!j.is_number()) fail("number");
    out = j.get<T>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!j.is_string()) fail("string");
    out = j.get<std::string>();
  } else if constexpr (is_optional<T>::value) {
    if (j.is_null()) {
      out.reset();
    } else {
      typename T::value_type v{};
      if (out) v = *out;
      parse_value(j, v, path);
      out = std::move(v);
    }
  } else if constexpr (is_vector<T>::value) {
    if (!j.is_array()) fail("array");
    T result;
    result.reserve(j.size());
    for (std::size_t i = 0; i < j.size(); ++i) {
      typename T::value_type v{};
      parse_value(j[i], v, path + "[" + std::to_string(i) + "]");
      result.push_back(std::move(v));
    }
    out = std::move(result);
  } else if constexpr (is_string_map<T>::value) {
    if (!j.is_object()) fail("object");
    T result;
    for (auto it = j.begin(); it != j.end(); ++it) {
      typename T::mapped_type v{};
      parse_value(it.value(), v, join_path(path, it.key()));
      result.emplace(it.key(), std::move(v));
    }
    out = std::move(result);
  } else if constexpr (is_options_v<T>) {
    from_json(j, out, path);
  } else {
    static_assert(is_options_v<T>,
                  "mopo::config: unsupported field type; see include/mopo/config/json_config.hpp");
  }
}

template <class T>
json dump_value(const T& v) {
  if constexpr (is_optional<T>::value) {
    return v ? dump_value(*v) : json(nullptr);
  } else if constexpr (is_vector<T>::value) {
    json a = json::array();
    for (const auto& e : v) a.push_back(dump_value(e));
    return a;
  } else if constexpr (is_string_map<T>::value) {
    json o = json::object();
    for (const auto& [k, e] : v) o[k] = dump_value(e);
    return o;
  } else if constexpr (is_options_v<T>) {
    return to_json(v);
  } else {
    return json(v);
  }
}

}  // namespace detail

/// Overwrites the fields of `out` named in the JSON object `j`; absent keys keep their values.
/// All or nothing: on error `out` is unchanged.
/// @param path key path of `j` inside the whole document, used in error messages.
/// @throws ConfigError "<path>.<key>: unknown key …" or "<path>.<key>: expected …, got …".
template <class T>
void from_json(const json& j, T& out, const std::string& path) {
  static_assert(detail::is_options_v<T>,
                "mopo::config::from_json needs a struct with template <class V> void visit(V&&)");
  if (!j.is_object()) {
    throw ConfigError(detail::at(path) + ": expected object, got " + detail::describe(j));
  }
  detail::NameCollector names;
  out.visit(names);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find(names.names.begin(), names.names.end(), it.key()) != names.names.end()) continue;
    std::string msg = detail::join_path(path, it.key()) + ": unknown key";
    const std::string* best = nullptr;
    std::size_t best_d = 3;  // suggest only close spellings
    for (const auto& n : names.names) {
      const std::size_t d = detail::edit_distance(it.key(), n);
      if (d < best_d) best_d = d, best = &n;
    }
    if (best != nullptr) msg += " (did you mean \"" + *best + "\"?)";
    msg += "; known keys:";
    for (const auto& n : names.names) msg += " " + n;
    throw ConfigError(msg);
  }
  T result = out;  // all-or-nothing: `out` is untouched if anything below throws
  result.visit([&](const char* name, auto& field) {
    const auto it = j.find(name);
    if (it != j.end()) detail::parse_value(*it, field, detail::join_path(path, name));
  });
  if constexpr (mopo::detail::is_detected_v<detail::validate_t, T>) {
    try {
      result.validate();
    } catch (const ConfigError& e) {
      throw ConfigError(path.empty() ? std::string(e.what()) : path + "." + e.what());
    }
  }
  out = std::move(result);
}

/// Serialises every field of an options struct (all keys, defaults included).
template <class T>
json to_json(const T& value) {
  static_assert(detail::is_options_v<T>, "mopo::config::to_json needs a struct with visit()");
  T copy = value;  // visit() is non-const by design (one visitor for reading and writing)
  json j = json::object();
  copy.visit([&](const char* name, auto& field) { j[name] = detail::dump_value(field); });
  return j;
}

/// Parses JSON text. @param source names the text in errors (a file name, "--config", …).
/// @throws ConfigError "<source>: malformed JSON: … line L, column C …" (also for a number too large for a
/// double, e.g. 1e400, which nlohmann reports as out_of_range.406, not as a parse_error).
inline json parse(const std::string& text, const std::string& source) {
  try {
    return json::parse(text, nullptr, true, /*ignore_comments=*/true);
  } catch (const json::exception& e) {
    throw ConfigError(source + ": malformed JSON: " + e.what());
  }
}

/// Reads and parses a JSON file. @throws IoError (unreadable) or ConfigError (malformed).
inline json load_json_file(const std::filesystem::path& file) {
  return parse(read_file(file), file.string());
}

/// Loads an options struct from a JSON file; keys absent from the file keep their defaults.
/// Errors are prefixed with the file name: "run.json: sac.actor_lr: expected number, got string".
template <class T>
T load_file(const std::filesystem::path& file, T defaults = T{}) {
  const json j = load_json_file(file);
  try {
    from_json(j, defaults);
  } catch (const ConfigError& e) {
    throw ConfigError(file.string() + ": " + e.what());
  }
  return defaults;
}

/// Applies one command-line override "a.b.c=value" to an options struct. `value` is parsed as JSON
/// when it is valid JSON (numbers, true/false, arrays), otherwise taken as a string.
/// @throws ConfigError naming the key path.
template <class T>
void apply_override(T& options, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("override \"" + assignment + "\": expected key.path=value");
  }
  // JSON text is UTF-8: a value taken as a raw string would otherwise make every later dump() of the
  // config (the effective config, checkpoint/latest.json) throw json::type_error 316 (found by fuzzing).
  try {
    (void)json(assignment).dump();
  } catch (const json::type_error&) {
    throw ConfigError("override " + json(assignment).dump(-1, ' ', false, json::error_handler_t::replace) +
                      ": not valid UTF-8");
  }
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) value = text;
  // Build {"a": {"b": {"c": value}}}.
  json patch = value;
  std::string rest = key;
  std::vector<std::string> parts;
  for (std::size_t p; (p = rest.find('.')) != std::string::npos; rest = rest.substr(p + 1)) {
    parts.push_back(rest.substr(0, p));
  }
  parts.push_back(rest);
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    if (it->empty()) throw ConfigError("override \"" + assignment + "\": empty key in path");
    patch = json{{*it, patch}};
  }
  // Merge through from_json, so the checks (unknown keys, types, validate) are the file's checks.
  T result = options;
  from_json(patch, result);
  options = std::move(result);
}

/// Writes an options struct as pretty JSON, atomically (e.g. the effective config beside results).
template <class T>
void save_file(const std::filesystem::path& file, const T& options) {
  atomic_write(file, json_text(to_json(options)));
}

}  // namespace mopo::config
