/// @file handles.hpp
/// @brief RAII handles over MuJoCo's mjModel / mjData, and loading an MJCF string through the VFS.
///
/// MuJoCo 2.2.2 has no `mj_addBufferVFS`; an in-memory file is made with `mj_makeEmptyFileVFS` and the
/// bytes copied into its buffer. `mjVFS` holds 2000 file names of 1000 bytes (~2 MB), so it is heap
/// allocated. Requires the `mopo::mujoco` target.
#pragma once

#include <mujoco/mujoco.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>

#include "mopo/core/error.hpp"

namespace mopo::env::mujoco {

/// Deleter calling mj_deleteModel.
struct ModelDeleter {
  void operator()(mjModel* m) const noexcept {
    if (m != nullptr) mj_deleteModel(m);
  }
};
/// Deleter calling mj_deleteData.
struct DataDeleter {
  void operator()(mjData* d) const noexcept {
    if (d != nullptr) mj_deleteData(d);
  }
};
/// Deleter for a heap-allocated VFS: frees the file buffers, then the struct.
struct VfsDeleter {
  void operator()(mjVFS* v) const noexcept {
    if (v != nullptr) {
      mj_deleteVFS(v);
      delete v;
    }
  }
};

using UniqueMjModel = std::unique_ptr<mjModel, ModelDeleter>;
using UniqueMjData = std::unique_ptr<mjData, DataDeleter>;
using UniqueMjVfs = std::unique_ptr<mjVFS, VfsDeleter>;

/// Compiles an MJCF document held in memory. `name` is the virtual file name used in error messages.
/// Throws mopo::ValueError with MuJoCo's compiler message when the model does not compile.
inline UniqueMjModel load_model_from_string(const std::string& xml, const std::string& name) {
  const std::string file = name + ".xml";
  if (file.size() >= mjMAXVFSNAME) throw ValueError("mujoco model name too long: '" + name + "'");
  UniqueMjVfs vfs(new mjVFS);
  mj_defaultVFS(vfs.get());
  const int size = static_cast<int>(xml.size());
  if (mj_makeEmptyFileVFS(vfs.get(), file.c_str(), size) != 0) {
    throw ValueError("mujoco VFS: could not create in-memory file '" + file + "'");
  }
  const int index = mj_findFileVFS(vfs.get(), file.c_str());
  if (index < 0) throw ValueError("mujoco VFS: in-memory file '" + file + "' not found after creation");
  std::memcpy(vfs->filedata[index], xml.data(), xml.size());
  std::array<char, 1024> error{};
  UniqueMjModel model(mj_loadXML(file.c_str(), vfs.get(), error.data(), static_cast<int>(error.size())));
  if (!model) {
    throw ValueError("mujoco: model '" + name + "' failed to compile: " + std::string(error.data()));
  }
  return model;
}

/// A fresh mjData for `model` (reset to qpos0, qvel 0).
inline UniqueMjData make_data(const mjModel* model) {
  UniqueMjData data(mj_makeData(model));
  if (!data) throw Error("mujoco: mj_makeData failed (out of memory?)");
  return data;
}

}  // namespace mopo::env::mujoco
