/// @file version.hpp
/// @brief mopo's version (kept equal to project(VERSION) in CMakeLists.txt; a test checks it).
#pragma once

#define MOPO_VERSION_MAJOR 0
#define MOPO_VERSION_MINOR 1
#define MOPO_VERSION_PATCH 0

namespace mopo {
/// The library version as "MAJOR.MINOR.PATCH".
inline constexpr const char* kVersion = "0.1.0";
}  // namespace mopo
