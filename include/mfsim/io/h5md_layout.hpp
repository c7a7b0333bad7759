#pragma once
// Names of mfsim's H5MD layout that the writer and the readers (C++ and mfsim.analysis) share.

namespace mfsim {

// Root attribute (int64): every time-series row whose step is at or before it is complete on disk.
// −1 until the first commit. Rows after it may be incomplete (a run killed mid-write): readers
// ignore them. Files without it (older mfsim) count every row whose step, time and value exist.
inline constexpr const char* committed_step_attribute = "committed_step";

}  // namespace mfsim
