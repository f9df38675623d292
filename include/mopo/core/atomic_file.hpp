/// @file atomic_file.hpp
/// @brief Atomic file writes: write a temporary file beside the target, flush it to disk, rename it over
/// the target. A reader sees either the old file or the complete new one, never a torn write, and a crash
/// mid-write leaves the old file intact. Every mopo save function (checkpoints, datasets, normalisers)
/// goes through these functions.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include "mopo/core/error.hpp"

namespace mopo {

namespace detail {
inline std::string temp_path_for(const std::filesystem::path& target) {
  static std::atomic<unsigned long> counter{0};
  return target.string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
}

/// fsync(2) of `path`: 0 on success (or where the file system cannot sync: EINVAL, ENOTSUP, or the path
/// cannot be opened for it), else the errno of the failed sync (EIO, ENOSPC, EDQUOT: data did not reach
/// the disk).
inline int fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return 0;  // best effort: some filesystems refuse to open directories
  int err = ::fsync(fd) == 0 ? 0 : errno;
  ::close(fd);
  if (err == EINVAL || err == ENOTSUP || err == EROFS) err = 0;
  return err;
}
}  // namespace detail

/// Writes a file atomically through a callback that creates it.
///
/// `write(tmp)` must create the complete file at path `tmp` (for libraries such as HDF5 that want a
/// path rather than a stream). If it throws, the temporary file is removed and the exception is
/// rethrown; `target` is untouched. Parent directories are created.
/// @throws IoError naming `target` if the directory cannot be created, the file cannot be flushed to disk
/// or renamed; the temporary file is then removed and the previous `target` is kept.
inline void atomic_write_with(const std::filesystem::path& target,
                              const std::function<void(const std::string& tmp)>& write) {
  namespace fs = std::filesystem;
  if (target.empty()) throw IoError("atomic write: empty target path");
  std::error_code ec;
  if (target.has_parent_path()) {
    fs::create_directories(target.parent_path(), ec);
    if (ec) {
      throw IoError(target.string() + ": cannot create directory " + target.parent_path().string() + ": " +
                    ec.message());
    }
  }
  const std::string tmp = detail::temp_path_for(target);
  try {
    write(tmp);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  if (!fs::exists(tmp, ec)) {
    throw IoError(target.string() + ": atomic write produced no file at " + tmp);
  }
  if (const int err = detail::fsync_path(tmp, false); err != 0) {
    fs::remove(tmp, ec);
    throw IoError(target.string() + ": cannot flush " + tmp + " to disk: " + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    fs::remove(tmp, ec);
    throw IoError(target.string() + ": cannot rename temporary file into place: " + why);
  }
  (void)detail::fsync_path(target.has_parent_path() ? target.parent_path().string() : ".", true);
}

/// Writes `bytes` to `target` atomically (temp file + fsync + rename).
/// @throws IoError naming `target` on any failure; the previous file, if any, is kept.
inline void atomic_write(const std::filesystem::path& target, std::string_view bytes) {
  atomic_write_with(target, [&](const std::string& tmp) {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    if (f == nullptr) {
      throw IoError(target.string() + ": cannot open " + tmp + " for writing: " + std::strerror(errno));
    }
    // The first failure's errno (ENOSPC, EFBIG, EDQUOT, EIO); a later call would overwrite it.
    int err = 0;
    const std::size_t n = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
    if (n != bytes.size()) err = errno;
    if (std::fflush(f) != 0 && err == 0) err = errno;
    if (std::fclose(f) != 0 && err == 0) err = errno;
    if (n != bytes.size() || err != 0) {
      throw IoError(target.string() + ": cannot write " + tmp + " (" + std::to_string(n) + " of " +
                    std::to_string(bytes.size()) + " bytes written): " + std::strerror(err != 0 ? err : EIO));
    }
  });
}

/// Reads a whole file. @throws IoError naming `path` if it cannot be read.
inline std::string read_file(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw IoError(path.string() + ": cannot open for reading: " + std::strerror(errno));
  std::string out;
  char buf[1 << 16];
  std::size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw IoError(path.string() + ": read error");
  return out;
}

}  // namespace mopo
