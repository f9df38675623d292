/// @file torch_archive.hpp
/// @brief Internal (not API): every LibTorch archive mopo reads (model.pt, agent.pt, trainer.pt, policy and
/// normalizer files) goes through read_torch_archive(), which checks the file's zip directory and each
/// record's CRC-32 before LibTorch parses a byte of it.
///
/// Why: LibTorch 1.13 does not compare a record with the CRC-32 its writer stored (a damaged record reaches
/// its unpickler and TorchScript parser, which crash on some: SEGV in ScriptTypeParser::parseClassConstant,
/// reservations of many GB in Unpickler::readBytes; docs/reliability.md, the fuzz campaigns of 2026-12-02 and
/// 2026-12-07). PyTorchStreamWriter writes every record's CRC-32 into the zip's central directory (tensors
/// and pickles stored, method 0; the TorchScript code/ records deflated, method 8), so comparing them turns
/// accidental damage (flipped bits, an overwritten or zeroed stretch, a copy cut short and padded) into an
/// IoError naming the file and the record. A file crafted with
/// matching CRCs still reaches LibTorch: this guards against damage, not against an attacker.
///
/// The zip layout read here (PKWARE APPNOTE 6.3.x, §4.3): the end-of-central-directory record (EOCD, 22 bytes
/// + comment) at the end, optionally preceded by a zip64 locator pointing at a zip64 EOCD
/// (PyTorchStreamWriter writes both); central-directory entries (46 bytes + name + extra + comment) giving
/// each record's method, CRC-32, sizes and local-header offset (zip64 extra field 0x0001 where a 32-bit field
/// is 0xFFFFFFFF); each local header (30 bytes + name + extra) followed by the record's bytes. A file with no
/// EOCD at all is left to LibTorch, whose message for "not a zip file" is already clear.
#pragma once

#include <zlib.h>

#include <torch/torch.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <string>

#include "mopo/core/atomic_file.hpp"
#include "mopo/core/error.hpp"
#include "mopo/detail/checks.hpp"

namespace mopo::detail {

/// Whether read_torch_archive() compares CRC-32s (default true). Only the fuzz builds of the LibTorch targets
/// turn it off, so that the fuzzer's mutations reach LibTorch and mopo's own checks after it instead of
/// stopping at the CRC (tests/fuzz/fuzz_entry.cpp; the regression test does the same for the inputs those
/// campaigns found).
inline std::atomic<bool>& archive_crc_checks() {
  static std::atomic<bool> on{true};
  return on;
}

namespace zip {

inline uint16_t u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t u32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t u64(const unsigned char* p) {
  return static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32);
}

inline std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

/// CRC-32 (zip's, ISO 3309) of `size` bytes, through zlib in pieces of at most 1 GiB (its length is a uInt).
inline uint32_t crc32_of(const unsigned char* p, std::size_t size) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  while (size > 0) {
    const auto piece = static_cast<uInt>(size < (std::size_t{1} << 30) ? size : (std::size_t{1} << 30));
    crc = ::crc32(crc, p, piece);
    p += piece;
    size -= piece;
  }
  return static_cast<uint32_t>(crc);
}

/// Inflates the raw deflate stream (zip method 8) of `size` bytes at `p` in 64 KiB pieces, for its CRC-32
/// and length; stops once more than `limit` bytes came out. Returns "" if the stream ended properly (then
/// `crc` and `length` are set), else what is wrong with it.
inline std::string inflate_crc32(const unsigned char* p, uint64_t size, uint64_t limit, uint32_t& crc,
                                 uint64_t& length) {
  z_stream s{};
  if (inflateInit2(&s, -MAX_WBITS) != Z_OK) return "zlib could not start inflating";
  unsigned char out[1 << 16];
  uLong c = ::crc32(0L, Z_NULL, 0);
  length = 0;
  int rc = Z_OK;
  while (rc == Z_OK && length <= limit) {
    if (s.avail_in == 0 && size > 0) {
      const auto piece = static_cast<uInt>(size < (uint64_t{1} << 30) ? size : (uint64_t{1} << 30));
      s.next_in = const_cast<Bytef*>(p);
      s.avail_in = piece;
      p += piece;
      size -= piece;
    }
    s.next_out = out;
    s.avail_out = sizeof out;
    rc = inflate(&s, Z_NO_FLUSH);
    const auto produced = static_cast<uInt>(sizeof out - s.avail_out);
    c = ::crc32(c, out, produced);
    length += produced;
  }
  std::string what;
  if (length > limit) {
    what = "inflates to more than its " + std::to_string(limit) + " bytes";
  } else if (rc != Z_STREAM_END) {
    what = std::string("is not a complete deflate stream (zlib: ") +
           (s.msg != nullptr ? s.msg : "ends early") + ")";
  }
  inflateEnd(&s);
  crc = static_cast<uint32_t>(c);
  return what;
}

}  // namespace zip

/// Checks the `size` bytes at `data`, a LibTorch archive called `name` in messages: the zip directory lies
/// inside the file and every record it lists does too, each stored (method 0) or deflated (method 8, the
/// only two LibTorch reads); if `compare_crcs`, each record's CRC-32 (of its bytes, or of what they inflate
/// to) and size match the directory's. Returns without a word for bytes that hold no end-of-central-
/// directory record (not a zip file: LibTorch's own error says so).
/// @throws IoError "<name>: damaged file: …" naming the record or directory field at fault.
inline void check_torch_archive(const char* data, std::size_t size, const std::string& name,
                                bool compare_crcs = true) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  const uint64_t n = size;
  auto damaged = [&](const std::string& what) { return IoError(name + ": damaged file: " + what); };
  // The EOCD: its signature within the last 22 + 65 535 bytes (a comment is at most 65 535 bytes), the last
  // one whose comment ends exactly at the end of the file; any other signature found is kept as a fallback,
  // the way readers tolerate trailing bytes.
  constexpr uint64_t kEocd = 22;
  if (n < kEocd) return;
  uint64_t eocd = UINT64_MAX;
  const uint64_t lowest = n > kEocd + 65535 ? n - kEocd - 65535 : 0;
  for (uint64_t at = n - kEocd + 1; at-- > lowest;) {
    if (zip::u32(bytes + at) != 0x06054b50) continue;
    if (at + kEocd + zip::u16(bytes + at + 20) == n) {
      eocd = at;
      break;
    }
    if (eocd == UINT64_MAX) eocd = at;
  }
  if (eocd == UINT64_MAX) return;  // not a zip file at all
  const unsigned char* e = bytes + eocd;
  uint64_t entries = zip::u16(e + 10), cd_size = zip::u32(e + 12), cd_offset = zip::u32(e + 16);
  // zip64: a locator (20 bytes) just before the EOCD points at the zip64 EOCD (56 bytes at least), whose
  // 64-bit fields replace the EOCD's.
  if (eocd >= 20 && zip::u32(e - 20) == 0x07064b50) {
    const uint64_t z64 = zip::u64(e - 12);
    if (z64 > eocd - 20 || eocd - 20 - z64 < 56 || zip::u32(bytes + z64) != 0x06064b50) {
      throw damaged("its zip64 locator points at " + std::to_string(z64) +
                    ", where no zip64 end-of-directory record is");
    }
    entries = zip::u64(bytes + z64 + 32);
    cd_size = zip::u64(bytes + z64 + 40);
    cd_offset = zip::u64(bytes + z64 + 48);
  }
  if (cd_offset > eocd || cd_size > eocd - cd_offset) {
    throw damaged("the zip directory (" + std::to_string(cd_size) + " bytes at offset " +
                  std::to_string(cd_offset) + ") does not end before its end record at " +
                  std::to_string(eocd));
  }
  constexpr uint64_t kCentral = 46, kLocal = 30;
  if (entries > cd_size / kCentral) {
    throw damaged("the zip directory claims " + std::to_string(entries) + " records in " +
                  std::to_string(cd_size) + " bytes");
  }
  uint64_t at = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < entries; ++i) {
    if (cd_end - at < kCentral || zip::u32(bytes + at) != 0x02014b50) {
      throw damaged("zip directory entry " + std::to_string(i) + " of " + std::to_string(entries) +
                    " (at offset " + std::to_string(at) + ") is not a directory entry");
    }
    const unsigned char* c = bytes + at;
    const uint16_t method = zip::u16(c + 10);
    const uint32_t crc = zip::u32(c + 16);
    uint64_t stored = zip::u32(c + 20), plain = zip::u32(c + 24), local = zip::u32(c + 42);
    const uint64_t name_len = zip::u16(c + 28), extra_len = zip::u16(c + 30), comment_len = zip::u16(c + 32);
    if (cd_end - at - kCentral < name_len + extra_len + comment_len) {
      throw damaged("zip directory entry " + std::to_string(i) + " runs past the directory's end");
    }
    // The record's name for messages, as printable ASCII (a damaged name may hold any bytes).
    std::string record(reinterpret_cast<const char*>(c + kCentral), name_len);
    for (char& ch : record) {
      if (ch < 0x20 || ch > 0x7e) ch = '?';
    }
    // zip64 extended information (APPNOTE §4.5.3): the 64-bit values of the fields set to 0xFFFFFFFF, in the
    // order plain size, stored size, local-header offset.
    const unsigned char* x = c + kCentral + name_len;
    for (uint64_t off = 0; off + 4 <= extra_len;) {
      const uint16_t id = zip::u16(x + off), len = zip::u16(x + off + 2);
      if (off + 4 + len > extra_len) break;
      if (id == 0x0001) {
        const unsigned char* v = x + off + 4;
        uint64_t left = len;
        for (uint64_t* field : {&plain, &stored, &local}) {
          if (*field != 0xFFFFFFFFu) continue;
          if (left < 8) throw damaged("record '" + record + "': its zip64 sizes are cut short");
          *field = zip::u64(v);
          v += 8;
          left -= 8;
        }
      }
      off += 4 + len;
    }
    if (local > cd_offset || cd_offset - local < kLocal || zip::u32(bytes + local) != 0x04034b50) {
      throw damaged("record '" + record + "': no local header at offset " + std::to_string(local));
    }
    const uint64_t begin = local + kLocal + zip::u16(bytes + local + 26) + zip::u16(bytes + local + 28);
    if (begin > cd_offset || stored > cd_offset - begin) {
      throw damaged("record '" + record + "' (" + std::to_string(stored) + " bytes at offset " +
                    std::to_string(begin) + ") reaches past the records' end at " +
                    std::to_string(cd_offset));
    }
    if (method != 0 && method != 8) {
      throw damaged("record '" + record + "' uses zip compression method " + std::to_string(method) +
                    " (LibTorch reads only 0, stored, and 8, deflate)");
    }
    // Stored: PyTorchStreamWriter's tensors and pickles, the record's bytes themselves. Deflated: its
    // TorchScript code/ records (whose parser is where most damaged files crashed LibTorch).
    if (method == 0 && plain != stored) {
      throw damaged("record '" + record + "' is stored uncompressed in " + std::to_string(stored) +
                    " bytes but the directory gives its size as " + std::to_string(plain));
    }
    if (compare_crcs) {
      uint32_t actual = 0;
      if (method == 0) {
        actual = zip::crc32_of(bytes + begin, stored);
      } else {
        uint64_t length = 0;
        const std::string bad = zip::inflate_crc32(bytes + begin, stored, plain, actual, length);
        if (!bad.empty()) {
          throw damaged("record '" + record + "' (" + std::to_string(stored) + " bytes deflated) " + bad);
        }
        if (length != plain) {
          throw damaged("record '" + record + "' inflates to " + std::to_string(length) +
                        " bytes, but the zip directory says " + std::to_string(plain));
        }
      }
      if (actual != crc) {
        throw damaged("record '" + record + "' (" + std::to_string(stored) + " bytes" +
                      (method == 0 ? "" : " deflated") + ") has CRC-32 " + zip::hex32(actual) +
                      ", but the zip directory says " + zip::hex32(crc) +
                      " (the file changed after it was written)");
      }
    }
    at += kCentral + name_len + extra_len + comment_len;
  }
}

/// Reads the LibTorch archive `file` (or, if `data` is not null, the `size` bytes there, called `file` in
/// messages) into `archive` after check_torch_archive(). Anything LibTorch throws becomes
/// IoError("<file>: <not_what> (<LibTorch's message>)"), e.g. not_what = "not a mopo SACAgent checkpoint".
/// @throws IoError naming `file`: missing or unreadable, damaged, or refused by LibTorch.
inline void read_torch_archive(torch::serialize::InputArchive& archive, const std::string& file,
                               const std::string& not_what, const char* data = nullptr, std::size_t size = 0,
                               const c10::optional<torch::Device>& device = c10::nullopt) {
  std::string held;
  if (data == nullptr) {
    if (!std::filesystem::exists(file)) throw IoError(file + ": no such file");
    held = read_file(file);
    data = held.data();
    size = held.size();
  }
  check_torch_archive(data, size, file, archive_crc_checks().load(std::memory_order_relaxed));
  try {
    archive.load_from(data, size, device);
  } catch (const std::exception& e) {  // c10::Error, torch::jit::ErrorReport
    throw IoError(file + ": " + not_what + " (" + torch_message(e) + ")");
  }
}

}  // namespace mopo::detail
