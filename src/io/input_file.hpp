#pragma once
// An input file (a config, a table, an HDF5 file) checked before it is opened: a FIFO blocks
// open() until a writer comes, a device (/dev/zero) never ends, a directory reads as nothing.
// Private to the library (src/io).
#include <cstdint>
#include <string>

namespace mfsim {

// The size in bytes of the regular file `path` (symbolic links followed). Throws InputError, one
// line naming the path, when it does not exist or is something else: "PATH: is a FIFO, not a
// regular file". Opens nothing.
std::uint64_t require_regular_file(const std::string& path);

}  // namespace mfsim
