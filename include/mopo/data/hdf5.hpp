/// @file hdf5.hpp
/// @brief Thin RAII layer over the HDF5 C library, used by the D4RL and Minari readers/writers.
///
/// Internal (namespace mopo::data::detail::h5), not API. Every hid_t is owned by a Handle that closes it with
/// the right H5?close function. HDF5's automatic error printing is switched off for the lifetime of an
/// ErrorSilencer (the previous setting is restored), and every failing call is turned into a mopo error
/// whose message names the file and the key and carries HDF5's own innermost error description.
///
/// Length: ~510 lines, the whole internal HDF5 layer (handles, error capture, typed reads and writes with
/// their size checks) in one internal header that only data/ and its tests include.
#pragma once

#include <hdf5.h>

#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "mopo/core/error.hpp"

namespace mopo::data::detail::h5 {

/// Owns one HDF5 identifier and closes it on destruction.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      closer_ = other.closer_;
    }
    return *this;
  }
  ~Handle() { reset(); }

  [[nodiscard]] hid_t get() const { return id_; }
  [[nodiscard]] bool valid() const { return id_ >= 0; }
  void reset() { (void)close(); }
  /// Closes now and returns the closer's status (< 0 on failure, e.g. a failed final flush of a file).
  herr_t close() {
    herr_t status = 0;
    if (id_ >= 0 && closer_ != nullptr) status = closer_(id_);
    id_ = H5I_INVALID_HID;
    return status;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

/// Switches off HDF5's automatic error-stack printing while alive; restores the previous handler.
class ErrorSilencer {
 public:
  ErrorSilencer() {
    (void)H5Eget_auto2(H5E_DEFAULT, &old_func_, &old_data_);
    (void)H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ErrorSilencer(const ErrorSilencer&) = delete;
  ErrorSilencer& operator=(const ErrorSilencer&) = delete;
  ~ErrorSilencer() { (void)H5Eset_auto2(H5E_DEFAULT, old_func_, old_data_); }

 private:
  H5E_auto2_t old_func_ = nullptr;
  void* old_data_ = nullptr;
};

/// The innermost description on HDF5's current error stack (e.g. "truncated file: eof = …"), or "".
inline std::string last_error() {
  std::string innermost;
  auto walker = [](unsigned /*n*/, const H5E_error2_t* err, void* data) -> herr_t {
    auto* out = static_cast<std::string*>(data);
    if (out->empty() && err != nullptr && err->desc != nullptr) *out = err->desc;
    return 0;
  };
  (void)H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walker, &innermost);
  (void)H5Eclear2(H5E_DEFAULT);
  return innermost;
}

/// "<file>: <key>: <what>[ (HDF5: <detail>)]".
inline std::string message(const std::string& file, const std::string& key, const std::string& what) {
  std::string msg = file + ": ";
  if (!key.empty()) msg += key + ": ";
  msg += what;
  const std::string detail = last_error();
  if (!detail.empty()) msg += " (HDF5: " + detail + ")";
  return msg;
}

/// Throws DatasetError naming file and key if `status` < 0.
inline void check(herr_t status, const std::string& file, const std::string& key, const std::string& what) {
  if (status < 0) throw DatasetError(message(file, key, what));
}

/// Wraps `id` with `closer`, throwing DatasetError naming file and key if `id` is invalid.
inline Handle own(hid_t id, Handle::Closer closer, const std::string& file, const std::string& key,
                  const std::string& what) {
  if (id < 0) throw DatasetError(message(file, key, what));
  return Handle(id, closer);
}

/// True if `path` ("a/b/c") names an existing link below `loc`; intermediate groups are checked in turn.
inline bool exists(hid_t loc, const std::string& path) {
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t slash = path.find('/', start);
    const std::string prefix = path.substr(0, slash);
    if (H5Lexists(loc, prefix.c_str(), H5P_DEFAULT) <= 0) {
      (void)H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
  return true;
}

/// Kind of object at `path` below `loc`.
enum class ObjectKind { kMissing, kGroup, kDataset, kOther };

inline ObjectKind kind_of(hid_t loc, const std::string& path) {
  if (!exists(loc, path)) return ObjectKind::kMissing;
  const hid_t obj = H5Oopen(loc, path.c_str(), H5P_DEFAULT);
  if (obj < 0) {
    (void)H5Eclear2(H5E_DEFAULT);
    return ObjectKind::kOther;
  }
  Handle owned(obj, H5Oclose);
  switch (H5Iget_type(obj)) {
    case H5I_GROUP:
      return ObjectKind::kGroup;
    case H5I_DATASET:
      return ObjectKind::kDataset;
    default:
      return ObjectKind::kOther;
  }
}

/// Names of the direct children of group `path` below `loc`, in HDF5's name order.
inline std::vector<std::string> children(hid_t loc, const std::string& path, const std::string& file) {
  Handle group = own(H5Gopen2(loc, path.c_str(), H5P_DEFAULT), H5Gclose, file, path, "cannot open group");
  H5G_info_t info{};
  check(H5Gget_info(group.get(), &info), file, path, "cannot list group");
  std::vector<std::string> names;
  names.reserve(static_cast<std::size_t>(info.nlinks));
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t len =
        H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (len < 0) throw DatasetError(message(file, path, "cannot read a link name"));
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    if (H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                           H5P_DEFAULT) < 0) {
      throw DatasetError(message(file, path, "cannot read a link name"));
    }
    name.resize(static_cast<std::size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

/// Opens a file read-only. Missing file → IoError; not HDF5 / truncated / unreadable → DatasetError.
inline Handle open_file(const std::string& file) {
  if (std::FILE* f = std::fopen(file.c_str(), "rb")) {
    std::fclose(f);
  } else {
    throw IoError(file + ": cannot open for reading: " + std::strerror(errno));
  }
  const htri_t is_hdf5 = H5Fis_hdf5(file.c_str());
  if (is_hdf5 == 0) {
    (void)H5Eclear2(H5E_DEFAULT);
    throw DatasetError(file + ": not an HDF5 file (no HDF5 signature)");
  }
  return own(H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose, file, "",
             "cannot open HDF5 file (truncated or corrupt?)");
}

/// True if the 8-byte HDF5 signature (0x89 "HDF" CR LF 0x1a LF) is at offset 0, 512, 1024, 2048, … of `data`
/// (where the format allows a superblock; H5Fis_hdf5 looks at the same places for a file on disk).
inline bool has_signature(const unsigned char* data, std::size_t size) {
  static constexpr unsigned char kSignature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  for (std::size_t offset = 0; offset + sizeof kSignature <= size; offset = offset == 0 ? 512 : 2 * offset) {
    if (std::memcmp(data + offset, kSignature, sizeof kSignature) == 0) return true;
  }
  return false;
}

/// Opens an in-memory HDF5 file image read-only with the core (memory) driver, no backing store; HDF5
/// copies the bytes. `file` only names the image in messages. No signature → DatasetError, like
/// open_file().
inline Handle open_file_image(const void* data, std::size_t size, const std::string& file) {
  if (data == nullptr || !has_signature(static_cast<const unsigned char*>(data), size)) {
    throw DatasetError(file + ": not an HDF5 file (no HDF5 signature)");
  }
  Handle fapl = own(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, file, "", "cannot create property list");
  check(H5Pset_fapl_core(fapl.get(), 64 * 1024, /*backing_store=*/0), file, "",
        "cannot select the core driver");
  check(H5Pset_file_image(fapl.get(), const_cast<void*>(data), size), file, "", "cannot set the file image");
  return own(H5Fopen(file.c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose, file, "",
             "cannot open HDF5 file image (truncated or corrupt?)");
}

/// The h5py/numpy boolean type: an int8 enum {FALSE = 0, TRUE = 1}.
inline Handle bool_type() {
  Handle t(H5Tenum_create(H5T_NATIVE_INT8), H5Tclose);
  if (!t.valid()) throw IoError("HDF5: cannot create the bool enum type");
  const int8_t no = 0;
  const int8_t yes = 1;
  if (H5Tenum_insert(t.get(), "FALSE", &no) < 0 || H5Tenum_insert(t.get(), "TRUE", &yes) < 0) {
    throw IoError("HDF5: cannot build the bool enum type");
  }
  return t;
}

/// A readable name for an HDF5 type class ("string", "compound", …).
inline std::string class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_TIME:
      return "time";
    case H5T_STRING:
      return "string";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_COMPOUND:
      return "compound";
    case H5T_REFERENCE:
      return "reference";
    case H5T_ENUM:
      return "enum";
    case H5T_VLEN:
      return "variable-length";
    case H5T_ARRAY:
      return "array";
    default:
      return "unknown";
  }
}

/// Shape and element class of one dataset.
struct DatasetInfo {
  std::vector<hsize_t> dims;
  H5T_class_t type_class = H5T_NO_CLASS;
  std::size_t type_size = 0;
  bool is_bool_enum = false;  ///< enum over a 1-byte integer (h5py's bool)
  bool is_vlen_string = false;
  [[nodiscard]] int64_t rank() const { return static_cast<int64_t>(dims.size()); }
  [[nodiscard]] std::string shape_string() const {
    std::string s = "(";
    for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    if (dims.size() == 1) s += ",";
    return s + ")";
  }
};

inline DatasetInfo info(hid_t dset, const std::string& file, const std::string& key) {
  DatasetInfo out;
  Handle space = own(H5Dget_space(dset), H5Sclose, file, key, "cannot read dataspace");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) throw DatasetError(message(file, key, "cannot read rank"));
  out.dims.resize(static_cast<std::size_t>(rank));
  if (rank > 0)
    check(H5Sget_simple_extent_dims(space.get(), out.dims.data(), nullptr), file, key, "cannot read shape");
  Handle type = own(H5Dget_type(dset), H5Tclose, file, key, "cannot read datatype");
  out.type_class = H5Tget_class(type.get());
  out.type_size = H5Tget_size(type.get());
  if (out.type_class == H5T_ENUM) {
    Handle super(H5Tget_super(type.get()), H5Tclose);
    out.is_bool_enum = super.valid() && H5Tget_size(super.get()) == 1;
  }
  if (out.type_class == H5T_STRING) out.is_vlen_string = H5Tis_variable_str(type.get()) > 0;
  return out;
}

/// Opens dataset `key`; DatasetError naming the key if it is missing or is not a dataset.
inline Handle open_dataset(hid_t loc, const std::string& key, const std::string& file) {
  switch (kind_of(loc, key)) {
    case ObjectKind::kMissing:
      throw DatasetError(file + ": missing key '" + key + "'");
    case ObjectKind::kDataset:
      break;
    default:
      throw DatasetError(file + ": key '" + key + "' is not a dataset (a group or other object)");
  }
  return own(H5Dopen2(loc, key.c_str(), H5P_DEFAULT), H5Dclose, file, key, "cannot open dataset");
}

/// Deflate expands at most ~1032:1, so a dataset's bytes cannot exceed this many times the file's size;
/// the margin leaves room for the rest of the file. A dataset claiming more (an unwritten dataset of 2^31
/// rows, a corrupt dataspace) would make the reader allocate it: refused before allocating.
inline constexpr double kMaxExpansion = 1100.0;

/// A chunk has the dataset's rank and, along each dimension of fixed size, is no larger than it: a damaged
/// chunk shape of (8, 17) over actions (8, 6) made HDF5 1.10's H5Dread copy past its chunk buffer
/// (heap-buffer-overflow in H5VM_memcpyvv; d4rl_hdf5 fuzz target, evening campaign of 2026-12-04).
inline void check_chunk_shape(hid_t space, const hsize_t* chunk, int rank, const std::string& file,
                              const std::string& key) {
  std::array<hsize_t, 32> dims{}, max_dims{};
  const int space_rank = H5Sget_simple_extent_dims(space, dims.data(), max_dims.data());
  bool ok = space_rank == rank;
  for (int d = 0; ok && d < rank; ++d) {
    const auto i = static_cast<std::size_t>(d);
    ok = chunk[i] > 0 && (max_dims[i] == H5S_UNLIMITED || chunk[i] <= max_dims[i]);
  }
  if (!ok) {
    DatasetInfo chunk_shape, shape;  // for shape_string()
    chunk_shape.dims.assign(chunk, chunk + std::max(rank, 0));
    shape.dims.assign(dims.begin(), dims.begin() + std::max(space_rank, 0));
    throw DatasetError(file + ": " + key + ": chunks of shape " + chunk_shape.shape_string() +
                       " do not fit a dataset of rank " + std::to_string(space_rank) + " and shape " +
                       shape.shape_string() + " (corrupt layout)");
  }
}

/// A chunk of a filtered dataset whose filter mask marks every size-changing filter as skipped (a filter
/// marked optional that failed when it was written, or a damaged chunk index) is stored raw, up to the
/// byte permutation of a shuffle that did run: it must then hold exactly one chunk's bytes. A gzip chunk
/// marked "filter skipped" with 263 of its 384 bytes made HDF5 1.10's H5Dread copy past its buffer
/// (heap-buffer-overflow in H5VM_memcpyvv; d4rl_hdf5 fuzz target, evening campaign of 2026-12-04).
/// One H5Dget_chunk_info_by_coord per chunk of the grid, a B-tree lookup each (H5Dget_chunk_info by index
/// is linear per call on 1.10): a 1 M × 17 float32 gzip dataset as h5py chunks it (1 088 chunks) took 25 ms
/// of lookups through h5py, an upper bound, beside 870 ms to read it.
inline void check_skipped_filter_chunks(hid_t dset, hid_t dcpl, int nfilters, hid_t space,
                                        const hsize_t* chunk, int rank, std::size_t element,
                                        const std::string& file, const std::string& key) {
  if (rank <= 0) return;
  unsigned size_changing = 0;  // bit i: filter i may change the chunk's size (every filter but shuffle)
  for (int i = 0; i < nfilters && i < 32; ++i) {
    unsigned flags = 0;
    std::size_t n_values = 0;
    const H5Z_filter_t id =
        H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &n_values, nullptr, 0, nullptr, nullptr);
    if (id < 0) throw DatasetError(file + ": " + key + ": cannot read filter " + std::to_string(i));
    if (id != H5Z_FILTER_SHUFFLE) size_changing |= 1u << static_cast<unsigned>(i);
  }
  std::array<hsize_t, 32> dims{};
  if (H5Sget_simple_extent_dims(space, dims.data(), nullptr) != rank) return;  // check_chunk_shape refused it
  double raw = static_cast<double>(element);  // one chunk's bytes, unfiltered
  for (int d = 0; d < rank; ++d) raw *= static_cast<double>(chunk[static_cast<std::size_t>(d)]);
  std::array<hsize_t, 32> offset{};  // the grid's chunks in row-major order, by their first element
  for (int d = 0; d < rank; ++d)
    if (dims[static_cast<std::size_t>(d)] == 0) return;  // no chunks
  for (;;) {
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    check(H5Dget_chunk_info_by_coord(dset, offset.data(), &mask, &addr, &size), file, key,
          "cannot read a chunk's index entry");
    if (addr != HADDR_UNDEF && size_changing != 0 && (mask & size_changing) == size_changing &&
        static_cast<double>(size) != raw) {
      DatasetInfo at;  // for shape_string()
      at.dims.assign(offset.begin(), offset.begin() + rank);
      std::ostringstream os;
      os << file << ": " << key << ": the chunk at " << at.shape_string() << " skips its filters (mask "
         << mask << ") so is stored raw, but holds " << size << " bytes, not a chunk's "
         << std::setprecision(15) << raw << " (corrupt chunk index)";
      throw DatasetError(os.str());
    }
    int d = rank - 1;  // next chunk: odometer over the grid
    for (; d >= 0; --d) {
      const auto i = static_cast<std::size_t>(d);
      offset[i] += chunk[i];
      if (offset[i] < dims[i]) break;
      offset[i] = 0;
    }
    if (d < 0) return;
  }
}

/// Where HDF5 knows both, the bytes a dataset stores must be the bytes its shape and element type need:
/// contiguous and compact data exactly, chunked data without filters whole chunks (edge chunks are stored
/// full size). A damaged chunk size made HDF5 1.10's H5Dread copy past its own 271-byte chunk buffer
/// (heap-buffer-overflow in H5VM_memcpyvv; the d4rl_hdf5 fuzz target, evening campaign of 2026-12-04).
/// Filtered (compressed) chunks have no expected size; their shape is checked (check_chunk_shape), and
/// each chunk whose filters were all skipped is checked here (check_skipped_filter_chunks).
inline void check_stored_size(hid_t dset, hsize_t stored, const std::string& file, const std::string& key) {
  Handle ftype = own(H5Dget_type(dset), H5Tclose, file, key, "cannot read datatype");
  Handle space = own(H5Dget_space(dset), H5Sclose, file, key, "cannot read dataspace");
  Handle dcpl = own(H5Dget_create_plist(dset), H5Pclose, file, key, "cannot read the creation properties");
  const std::size_t element = H5Tget_size(ftype.get());
  const hssize_t points = H5Sget_simple_extent_npoints(space.get());
  if (points < 0) throw DatasetError(file + ": " + key + ": cannot read the number of elements");
  const H5D_layout_t layout = H5Pget_layout(dcpl.get());
  std::ostringstream what;  // "<n> elements of <b> bytes, contiguous" / "<k> unfiltered chunks of ..."
  double expected = -1.0;
  if (layout == H5D_CONTIGUOUS || layout == H5D_COMPACT) {
    expected = static_cast<double>(element) * static_cast<double>(points);
    what << points << " elements of " << element << " bytes, "
         << (layout == H5D_CONTIGUOUS ? "contiguous" : "compact");
  } else if (layout == H5D_CHUNKED) {
    std::array<hsize_t, 32> chunk{};
    const int rank = H5Pget_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data());
    check(rank, file, key, "cannot read the chunk shape");
    check_chunk_shape(space.get(), chunk.data(), rank, file, key);
    const int nfilters = H5Pget_nfilters(dcpl.get());
    check(nfilters, file, key, "cannot read the filter pipeline");
    if (nfilters > 0) {
      check_skipped_filter_chunks(dset, dcpl.get(), nfilters, space.get(), chunk.data(), rank, element, file,
                                  key);
    } else {
      hsize_t chunks = 0;
      check(H5Dget_num_chunks(dset, space.get(), &chunks), file, key, "cannot count the chunks");
      double per_chunk = 1.0;
      for (int d = 0; d < rank; ++d) per_chunk *= static_cast<double>(chunk[static_cast<std::size_t>(d)]);
      expected = static_cast<double>(element) * per_chunk * static_cast<double>(chunks);
      what << chunks << " unfiltered chunk" << (chunks == 1 ? "" : "s") << " of " << std::setprecision(15)
           << per_chunk << " elements of " << element << " bytes";
    }
  }
  if (expected >= 0.0 && static_cast<double>(stored) != expected) {
    std::ostringstream os;
    os << file << ": " << key << ": " << stored << " bytes stored, but " << std::setprecision(15) << expected
       << " needed for " << what.str() << " (corrupt layout)";
    throw DatasetError(os.str());
  }
}

/// Throws DatasetError naming file and key if `in`'s shape × `element_bytes` cannot be stored in the file.
inline void check_fits_in_file(hid_t dset, const DatasetInfo& in, std::size_t element_bytes,
                               const std::string& file, const std::string& key) {
  double bytes = static_cast<double>(element_bytes);
  for (hsize_t d : in.dims) bytes *= static_cast<double>(d);
  Handle fid = own(H5Iget_file_id(dset), H5Fclose, file, key, "cannot find the dataset's file");
  hsize_t file_bytes = 0;
  check(H5Fget_filesize(fid.get(), &file_bytes), file, key, "cannot read the file size");
  if (bytes > kMaxExpansion * static_cast<double>(file_bytes) + 65536.0) {
    std::ostringstream os;
    os << file << ": " << key << ": shape " << in.shape_string() << " needs " << std::setprecision(3) << bytes
       << " bytes, more than a file of " << file_bytes << " bytes can hold (unwritten or corrupt dataset)";
    throw DatasetError(os.str());
  }
  if (bytes == 0.0) return;
  // A dataset with elements but no storage was never written (HDF5 would hand back its fill value), and
  // the data of a contiguous one must lie inside the file: damaged layout messages that break either made
  // HDF5 1.10 read from address 0 inside H5Dread (found by the d4rl_hdf5 fuzz target, campaign 2026-12-04).
  const hsize_t stored = H5Dget_storage_size(dset);
  if (stored == 0) {
    throw DatasetError(file + ": " + key + ": shape " + in.shape_string() +
                       " but no data written (storage size 0; unwritten or corrupt dataset)");
  }
  // Whatever the layout, the stored bytes are in the file: a damaged chunk size of 4 GB in a 34 KB file
  // made HDF5 1.10 allocate it inside H5Dread (OOM; d4rl_hdf5 fuzz target, evening campaign 2026-12-04).
  if (stored > file_bytes) {
    throw DatasetError(file + ": " + key + ": " + std::to_string(stored) +
                       " bytes stored, more than the file's " + std::to_string(file_bytes) +
                       " (corrupt layout)");
  }
  const haddr_t offset = H5Dget_offset(dset);  // HADDR_UNDEF unless contiguous and allocated
  if (offset != HADDR_UNDEF && (offset > file_bytes || stored > file_bytes - offset)) {
    throw DatasetError(file + ": " + key + ": its " + std::to_string(stored) + " bytes at offset " +
                       std::to_string(offset) + " end beyond the file's " + std::to_string(file_bytes) +
                       " bytes (truncated or corrupt file)");
  }
  check_stored_size(dset, stored, file, key);
}

/// An integer or float dataset's element type must be one HDF5 converts without surprises: integers of 1,
/// 2, 4 or 8 bytes using every bit, IEEE binary16/32/64 floats (what numpy and h5py write). Damaged
/// datatype messages with other bit layouts made HDF5 1.10's conversion path ask for gigabytes inside
/// H5Dread (found by the d4rl_hdf5 fuzz target, campaign 2026-12-04).
inline void check_standard_number(hid_t dset, const std::string& file, const std::string& key) {
  Handle ftype = own(H5Dget_type(dset), H5Tclose, file, key, "cannot read datatype");
  const H5T_class_t cls = H5Tget_class(ftype.get());
  const std::size_t size = H5Tget_size(ftype.get());
  const std::size_t precision = H5Tget_precision(ftype.get());
  const int bit_offset = H5Tget_offset(ftype.get());
  bool ok = (size == 1 || size == 2 || size == 4 || size == 8) && precision == 8 * size && bit_offset == 0;
  if (ok && cls == H5T_FLOAT) {
    std::size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
    ok = size >= 2 && H5Tget_fields(ftype.get(), &spos, &epos, &esize, &mpos, &msize) >= 0 &&
         spos == 8 * size - 1 && mpos == 0 && epos == msize &&
         esize == (size == 2   ? 5
                   : size == 4 ? 8
                               : 11) &&
         H5Tget_norm(ftype.get()) == H5T_NORM_IMPLIED;
  }
  if (!ok) {
    throw DatasetError(file + ": " + key + ": unsupported " + (cls == H5T_FLOAT ? "float" : "integer") +
                       " type (" + std::to_string(size) + " bytes, " + std::to_string(precision) +
                       " bits of precision at bit " + std::to_string(bit_offset) +
                       "); expected IEEE binary16/32/64 or a full-width integer");
  }
}

/// Reads a numeric dataset (integer, float or bool enum) into a tensor of `dtype` (kFloat32, kFloat64,
/// kInt64 or kBool). HDF5 converts the element type; bool enums are read as bytes and compared with 0.
inline torch::Tensor read_tensor(hid_t dset, const DatasetInfo& in, torch::Dtype dtype,
                                 const std::string& file, const std::string& key) {
  // The element type first: a damaged one (say 4 GB elements) is named as such, not as a size mismatch.
  if (in.type_class == H5T_INTEGER || in.type_class == H5T_FLOAT) check_standard_number(dset, file, key);
  check_fits_in_file(dset, in, 8, file, key);  // 8: the widest element read (double, int64)
  std::vector<int64_t> sizes(in.dims.begin(), in.dims.end());
  if (in.type_class == H5T_ENUM) {
    if (!in.is_bool_enum)
      throw DatasetError(file + ": " + key + ": enum type other than bool is not supported");
    Handle ftype = own(H5Dget_type(dset), H5Tclose, file, key, "cannot read datatype");
    Handle mtype =
        own(H5Tget_native_type(ftype.get(), H5T_DIR_ASCEND), H5Tclose, file, key, "cannot map enum datatype");
    // The buffer holds one byte per element: an enum whose own size is not 1 although its base type's is
    // (a damaged datatype message) would make H5Dread write past it (found by the d4rl_hdf5 fuzz target).
    if (H5Tget_size(mtype.get()) != 1) {
      throw DatasetError(file + ": " + key + ": bool enum of " + std::to_string(H5Tget_size(mtype.get())) +
                         "-byte elements (expected 1 byte)");
    }
    auto raw = torch::empty(sizes, torch::kInt8);
    if (raw.numel() > 0) {
      check(H5Dread(dset, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data_ptr()), file, key,
            "read failed (truncated or corrupt file?)");
    }
    return raw.ne(0).to(dtype);
  }
  if (in.type_class != H5T_INTEGER && in.type_class != H5T_FLOAT) {
    throw DatasetError(file + ": " + key + ": expected a numeric dataset, got HDF5 type class " +
                       class_name(in.type_class));
  }
  hid_t mem = H5T_NATIVE_FLOAT;
  torch::Dtype read_as = torch::kFloat32;
  if (dtype == torch::kFloat64) {
    mem = H5T_NATIVE_DOUBLE;
    read_as = torch::kFloat64;
  } else if (dtype == torch::kInt64) {
    mem = H5T_NATIVE_INT64;
    read_as = torch::kInt64;
  } else if (dtype == torch::kBool) {
    mem = H5T_NATIVE_DOUBLE;  // D4RL: bool(terminals[i]) — any non-zero value is true
    read_as = torch::kFloat64;
  }
  auto out = torch::empty(sizes, read_as);
  if (out.numel() > 0) {
    check(H5Dread(dset, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()), file, key,
          "read failed (truncated or corrupt file?)");
  }
  if (dtype == torch::kBool) {
    if (!torch::isfinite(out).all().item<bool>()) {
      throw DatasetError(file + ": " + key + ": contains NaN or Inf where a boolean flag is expected");
    }
    return out.ne(0);
  }
  return out;
}

/// Reads a scalar string dataset (fixed-length or variable-length).
inline std::string read_string(hid_t dset, const DatasetInfo& in, const std::string& file,
                               const std::string& key) {
  Handle mtype = own(H5Tcopy(H5T_C_S1), H5Tclose, file, key, "cannot create string type");
  // The file's character set (h5py writes str as variable-length UTF-8): HDF5 converts no strings
  // between ASCII and UTF-8, so a memory type of the other set fails to read.
  {
    Handle ftype = own(H5Dget_type(dset), H5Tclose, file, key, "cannot read datatype");
    const H5T_cset_t cset = H5Tget_cset(ftype.get());
    if (cset >= 0) check(H5Tset_cset(mtype.get(), cset), file, key, "cannot set the character set");
  }
  if (in.is_vlen_string) {
    check(H5Tset_size(mtype.get(), H5T_VARIABLE), file, key, "cannot set string size");
    char* ptr = nullptr;
    check(H5Dread(dset, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &ptr), file, key, "string read failed");
    std::string s = ptr != nullptr ? std::string(ptr) : std::string();
    if (ptr != nullptr) (void)H5free_memory(ptr);
    return s;
  }
  check_fits_in_file(dset, DatasetInfo{}, in.type_size + 1, file, key);  // one string of type_size bytes
  check(H5Tset_size(mtype.get(), in.type_size + 1), file, key, "cannot set string size");
  check(H5Tset_strpad(mtype.get(), H5T_STR_NULLTERM), file, key, "cannot set string padding");
  std::string buf(in.type_size + 1, '\0');
  check(H5Dread(dset, mtype.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), file, key,
        "string read failed");
  buf.resize(std::strlen(buf.c_str()));
  return buf;
}

/// A creation property list of class `cls` (H5P_DATASET_CREATE, H5P_GROUP_CREATE, H5P_FILE_CREATE) that
/// records no modification times. HDF5 stores them in every object header by default, so two writes of the
/// same data differ in bytes; without them a file is a function of its content (a regenerated dataset has
/// the same sha256).
inline Handle untimed_create_plist(hid_t cls, const std::string& file, const std::string& key) {
  Handle plist = own(H5Pcreate(cls), H5Pclose, file, key, "cannot create property list");
  check(H5Pset_obj_track_times(plist.get(), 0), file, key, "cannot switch off time tracking");
  return plist;
}

/// Creates the groups on the path to `key` ("infos/qpos" → "infos") that do not exist yet, untimed
/// (groups made implicitly through a link creation list would get HDF5's default, timed, group list).
inline void ensure_parent_groups(hid_t loc, const std::string& key, const std::string& file) {
  for (std::size_t slash = key.find('/', 1); slash != std::string::npos; slash = key.find('/', slash + 1)) {
    const std::string group = key.substr(0, slash);
    const htri_t exists = H5Lexists(loc, group.c_str(), H5P_DEFAULT);
    check(exists, file, group, "cannot look the group up");
    if (exists > 0) continue;
    Handle gcpl = untimed_create_plist(H5P_GROUP_CREATE, file, group);
    own(H5Gcreate2(loc, group.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose, file, group,
        "cannot create group");
  }
}

/// Writes `t` (any rank ≥ 0) as dataset `key`. Floating tensors are stored as `float_dtype` (kFloat32 or
/// kFloat64); bool tensors as h5py's bool enum; integer tensors as int64 (int8/uint8 kept as bytes).
/// `gzip_level` > 0 enables chunked deflate compression (h5py's compression='gzip' uses level 4).
inline void write_tensor(hid_t loc, const std::string& key, const torch::Tensor& t, torch::Dtype float_dtype,
                         int gzip_level, const std::string& file) {
  auto data = t.detach().to(torch::kCPU).contiguous();
  hid_t file_type = H5T_IEEE_F32LE;
  hid_t mem_type = H5T_NATIVE_FLOAT;
  Handle enum_type;
  if (data.scalar_type() == torch::kBool) {
    enum_type = bool_type();
    file_type = enum_type.get();
    mem_type = enum_type.get();
    data = data.to(torch::kInt8);
  } else if (data.is_floating_point()) {
    if (float_dtype == torch::kFloat64) {
      data = data.to(torch::kFloat64);
      file_type = H5T_IEEE_F64LE;
      mem_type = H5T_NATIVE_DOUBLE;
    } else {
      data = data.to(torch::kFloat32);
    }
  } else if (data.scalar_type() == torch::kInt32) {
    file_type = H5T_STD_I32LE;
    mem_type = H5T_NATIVE_INT32;
  } else {
    data = data.to(torch::kInt64);
    file_type = H5T_STD_I64LE;
    mem_type = H5T_NATIVE_INT64;
  }
  std::vector<hsize_t> dims(data.sizes().begin(), data.sizes().end());
  Handle space = own(dims.empty() ? H5Screate(H5S_SCALAR)
                                  : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                     H5Sclose, file, key, "cannot create dataspace");
  Handle dcpl = untimed_create_plist(H5P_DATASET_CREATE, file, key);
  bool has_zero = false;
  for (hsize_t d : dims) has_zero = has_zero || d == 0;
  if (gzip_level > 0 && !dims.empty() && !has_zero) {
    // Chunks of whole rows, about 256 KiB each, so a row slice touches few chunks.
    std::vector<hsize_t> chunk = dims;
    hsize_t row_bytes = static_cast<hsize_t>(data.element_size());
    for (std::size_t i = 1; i < dims.size(); ++i) row_bytes *= dims[i];
    const hsize_t rows = std::max<hsize_t>(1, (256 * 1024) / std::max<hsize_t>(1, row_bytes));
    chunk[0] = std::min(dims[0], rows);
    check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), file, key,
          "cannot set chunking");
    check(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(gzip_level)), file, key, "cannot enable gzip");
  }
  ensure_parent_groups(loc, key, file);
  Handle dset =
      own(H5Dcreate2(loc, key.c_str(), file_type, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
          H5Dclose, file, key, "cannot create dataset");
  if (data.numel() > 0) {
    check(H5Dwrite(dset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data_ptr()), file, key,
          "write failed");
  }
}

/// Writes a scalar fixed-length, null-padded ASCII string (what h5py stores for numpy.bytes_).
inline void write_string(hid_t loc, const std::string& key, const std::string& value,
                         const std::string& file) {
  Handle type = own(H5Tcopy(H5T_C_S1), H5Tclose, file, key, "cannot create string type");
  check(H5Tset_size(type.get(), std::max<std::size_t>(1, value.size())), file, key, "cannot set string size");
  check(H5Tset_strpad(type.get(), H5T_STR_NULLPAD), file, key, "cannot set string padding");
  Handle space = own(H5Screate(H5S_SCALAR), H5Sclose, file, key, "cannot create dataspace");
  ensure_parent_groups(loc, key, file);
  Handle dcpl = untimed_create_plist(H5P_DATASET_CREATE, file, key);
  Handle dset =
      own(H5Dcreate2(loc, key.c_str(), type.get(), space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
          H5Dclose, file, key, "cannot create dataset");
  std::string buf = value;
  buf.resize(std::max<std::size_t>(1, value.size()), '\0');
  check(H5Dwrite(dset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), file, key,
        "write failed");
}

}  // namespace mopo::data::detail::h5
