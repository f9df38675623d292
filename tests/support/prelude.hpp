// Force-included first in every test translation unit (see tests/CMakeLists.txt).
//
// LibTorch's c10/util/logging_is_not_google_glog.h defines a glog-style CHECK(cond) macro that aborts
// on failure. If <torch/torch.h> is included after <catch2/catch.hpp>, it silently replaces Catch's
// CHECK: passing checks are not counted and failing ones abort instead of being reported. Including
// torch first, dropping its CHECK and then including Catch makes CHECK mean Catch's everywhere,
// whatever order a test file includes things in.
#pragma once
#include <torch/torch.h>
#undef CHECK
#include <catch2/catch.hpp>
