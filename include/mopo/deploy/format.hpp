/// @file format.hpp
/// @brief The deploy export format (docs/deploy.md): one file = magic, a small JSON header, one
/// little-endian float32 blob. Reading and writing it needs neither LibTorch nor MuJoCo.
///
/// Layout (all integers little-endian):
///
///     bytes 0..7    magic "MOPODEPL"
///     bytes 8..15   uint64 H = length of the JSON header in bytes
///     bytes 16..    H bytes of UTF-8 JSON: {"format", "version", "blob_floats", "blob_crc32",
///                   "tensors": {name: {"shape": [...], "offset": floats}}, ...model fields}
///     then          blob_floats × float32, little-endian
///
/// The file length must be exactly 16 + H + 4·blob_floats (a truncated or extended file is rejected),
/// and the blob's CRC-32 (IEEE 802.3, as zlib) must match, so a corrupted file is an error, not
/// garbage weights. Every error is a mopo::IoError whose message starts with the file name.
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/core/json_text.hpp"

namespace mopo::deploy {

/// Version of the export format this header reads and writes. A reader accepts exactly this version.
inline constexpr int kFormatVersion = 1;
/// The "format" tag of a SAC actor export.
inline constexpr const char* kPolicyFormat = "mopo.deploy.policy";
/// The "format" tag of a GaussianEnsemble export.
inline constexpr const char* kDynamicsFormat = "mopo.deploy.dynamics";

namespace detail {

inline constexpr char kMagic[8] = {'M', 'O', 'P', 'O', 'D', 'E', 'P', 'L'};
inline constexpr std::size_t kPreambleBytes = 16;

/// CRC-32 (IEEE 802.3 polynomial 0xEDB88320, reflected; the zlib/PNG checksum).
inline std::uint32_t crc32(const unsigned char* data, std::size_t n) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1U) ? 0xEDB88320U ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFU;
  for (std::size_t i = 0; i < n; ++i) c = table[(c ^ data[i]) & 0xFFU] ^ (c >> 8);
  return c ^ 0xFFFFFFFFU;
}

/// One named float32 array of the blob (row-major, shape as written).
struct Array {
  std::vector<std::int64_t> shape;
  std::vector<float> data;
};

inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// The contents of one export file: the model-specific JSON fields and the named arrays.
struct Bundle {
  std::string format;
  nlohmann::json meta = nlohmann::json::object();  ///< model fields (dims, bounds, elites, …)
  std::vector<std::pair<std::string, Array>> arrays;

  void add(std::string name, std::vector<std::int64_t> shape, std::vector<float> data) {
    arrays.emplace_back(std::move(name), Array{std::move(shape), std::move(data)});
  }
  [[nodiscard]] const Array* find(const std::string& name) const {
    for (const auto& [n, a] : arrays) {
      if (n == name) return &a;
    }
    return nullptr;
  }
};

inline void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFU));
}

inline std::uint64_t get_u64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

/// Serialises a bundle (values written little-endian whatever the host's byte order).
/// @throws ValueError if an array's size does not match its shape or holds NaN/Inf.
inline std::string encode(const Bundle& bundle) {
  std::string blob;
  nlohmann::json tensors = nlohmann::json::object();
  std::uint64_t offset = 0;
  for (const auto& [name, a] : bundle.arrays) {
    std::int64_t n = 1;
    for (auto d : a.shape) n *= d;
    if (n != static_cast<std::int64_t>(a.data.size())) {
      throw ValueError("deploy export: array " + name + " has " + std::to_string(a.data.size()) +
                       " values for shape " + shape_string(a.shape));
    }
    for (std::size_t i = 0; i < a.data.size(); ++i) {
      if (!std::isfinite(a.data[i])) {
        throw ValueError("deploy export: array " + name + " holds a non-finite value at flat index " +
                         std::to_string(i));
      }
      std::uint32_t bits = 0;
      std::memcpy(&bits, &a.data[i], sizeof bits);
      for (int k = 0; k < 4; ++k) blob.push_back(static_cast<char>((bits >> (8 * k)) & 0xFFU));
    }
    tensors[name] = {{"shape", a.shape}, {"offset", offset}};
    offset += a.data.size();
  }
  nlohmann::json header = bundle.meta;
  header["format"] = bundle.format;
  header["version"] = kFormatVersion;
  header["blob_floats"] = offset;
  header["blob_crc32"] = crc32(reinterpret_cast<const unsigned char*>(blob.data()), blob.size());
  header["tensors"] = std::move(tensors);
  const std::string text = json_text(header, 1, false);
  std::string out(kMagic, sizeof kMagic);
  put_u64(out, text.size());
  out += text;
  out += blob;
  return out;
}

/// Writes a bundle atomically (temp file + fsync + rename; core/atomic_file.hpp).
inline void write_bundle(const std::filesystem::path& file, const Bundle& bundle) {
  atomic_write(file, encode(bundle));
}

/// Parses the bytes of an export file; `file` only names it in error messages.
/// @throws IoError naming the file: bad magic, truncated or extended file, malformed JSON header,
/// other format than `expected_format`, other version than kFormatVersion, CRC mismatch, arrays
/// outside the blob, non-finite values.
inline Bundle decode(const std::string& bytes, const std::filesystem::path& file,
                     const std::string& expected_format) {
  const std::string where = file.string() + ": ";
  const auto fail = [&](const std::string& why) { return IoError(where + why); };
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < kPreambleBytes || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw fail("not a mopo deploy export (no MOPODEPL magic; " + std::to_string(bytes.size()) + " bytes)");
  }
  const std::uint64_t header_bytes = get_u64(p + 8);
  if (header_bytes > bytes.size() - kPreambleBytes) {
    throw fail("truncated: header of " + std::to_string(header_bytes) + " bytes, file has " +
               std::to_string(bytes.size()) + " bytes");
  }
  nlohmann::json header;
  try {
    header =
        nlohmann::json::parse(bytes.begin() + kPreambleBytes,
                              bytes.begin() + static_cast<std::ptrdiff_t>(kPreambleBytes + header_bytes));
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("corrupted JSON header: ") + e.what());
  }
  Bundle out;
  std::uint64_t blob_floats = 0;
  std::uint32_t crc = 0;
  try {
    if (!header.is_object()) throw fail("JSON header is not an object");
    out.format = header.at("format").get<std::string>();
    if (out.format != expected_format) {
      throw fail("format '" + out.format + "', expected '" + expected_format + "'");
    }
    const int version = header.at("version").get<int>();
    if (version != kFormatVersion) {
      throw fail("format version " + std::to_string(version) + ", this reader supports version " +
                 std::to_string(kFormatVersion) + " only (re-export with a matching mopo)");
    }
    blob_floats = header.at("blob_floats").get<std::uint64_t>();
    crc = header.at("blob_crc32").get<std::uint32_t>();
    const std::uint64_t expected_size = kPreambleBytes + header_bytes + 4 * blob_floats;
    if (blob_floats > bytes.size() || bytes.size() != expected_size) {
      throw fail((bytes.size() < expected_size ? "truncated: " : "trailing bytes: ") +
                 std::to_string(bytes.size()) + " bytes, the header describes " +
                 std::to_string(expected_size));
    }
    const unsigned char* blob = p + kPreambleBytes + header_bytes;
    if (crc32(blob, 4 * blob_floats) != crc) throw fail("corrupted: blob CRC-32 mismatch");
    for (const auto& [name, t] : header.at("tensors").items()) {
      Array a;
      a.shape = t.at("shape").get<std::vector<std::int64_t>>();
      const auto offset = t.at("offset").get<std::uint64_t>();
      // The element count is checked against the blob as it is multiplied up: the product of many dims
      // each <= blob_floats could wrap around 2^64 (16 dims of 16 give 0) and pass the bound below.
      const bool empty = std::find(a.shape.begin(), a.shape.end(), 0) != a.shape.end();
      std::uint64_t n = empty ? 0 : 1;
      for (auto d : a.shape) {
        if (d < 0 || d > static_cast<std::int64_t>(blob_floats)) {
          throw fail("array " + name + " has invalid shape " + shape_string(a.shape));
        }
        if (empty) continue;
        if (n > blob_floats / static_cast<std::uint64_t>(d)) {
          throw fail("array " + name + " " + shape_string(a.shape) + " has more values than the blob of " +
                     std::to_string(blob_floats) + " floats");
        }
        n *= static_cast<std::uint64_t>(d);
      }
      if (n > blob_floats || offset > blob_floats - n) {
        throw fail("array " + name + " " + shape_string(a.shape) + " at offset " + std::to_string(offset) +
                   " lies outside the blob of " + std::to_string(blob_floats) + " floats");
      }
      a.data.resize(n);
      for (std::uint64_t i = 0; i < n; ++i) {
        const unsigned char* q = blob + 4 * (offset + i);
        const std::uint32_t bits =
            static_cast<std::uint32_t>(q[0]) | (static_cast<std::uint32_t>(q[1]) << 8) |
            (static_cast<std::uint32_t>(q[2]) << 16) | (static_cast<std::uint32_t>(q[3]) << 24);
        std::memcpy(&a.data[i], &bits, sizeof bits);
        if (!std::isfinite(a.data[i])) throw fail("array " + name + " holds a non-finite value");
      }
      out.arrays.emplace_back(name, std::move(a));
    }
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("malformed header: ") + e.what());
  }
  for (const char* key : {"format", "version", "blob_floats", "blob_crc32", "tensors"}) header.erase(key);
  out.meta = std::move(header);
  return out;
}

/// Reads and decodes an export file. @throws IoError naming the file (see decode()).
inline Bundle read_bundle(const std::filesystem::path& file, const std::string& expected_format) {
  return decode(read_file(file), file, expected_format);
}

/// Typed access to the fields of a decoded bundle, with errors naming the file and the key.
class BundleReader {
 public:
  BundleReader(const Bundle& bundle, std::filesystem::path file) : bundle_(bundle), file_(std::move(file)) {}

  template <class T>
  [[nodiscard]] T field(const char* key) const {
    try {
      return bundle_.meta.at(key).get<T>();
    } catch (const nlohmann::json::exception& e) {
      throw error(std::string("header field '") + key + "': " + e.what());
    }
  }

  /// The array `name`, which must have exactly `shape`.
  [[nodiscard]] const std::vector<float>& array(const std::string& name,
                                                const std::vector<std::int64_t>& shape) const {
    const Array* a = bundle_.find(name);
    if (a == nullptr) throw error("missing array " + name);
    if (a->shape != shape) {
      throw error("array " + name + " has shape " + shape_string(a->shape) + ", expected " +
                  shape_string(shape));
    }
    return a->data;
  }

  [[nodiscard]] IoError error(const std::string& why) const { return IoError(file_.string() + ": " + why); }

 private:
  const Bundle& bundle_;
  std::filesystem::path file_;
};

}  // namespace detail
}  // namespace mopo::deploy
