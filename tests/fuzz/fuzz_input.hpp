#pragma once
// What the fuzz targets share: the fuzzer's input read as a stream of choices, and files written
// from it.

#include <cstdint>
#include <cstdio>
#include <string>

namespace fuzz {

// The fuzzer's bytes, one choice at a time; past their end every choice is 0, so that a short
// input still makes a whole recipe.
struct Bytes {
  const std::uint8_t* data;
  std::size_t size, at = 0;
  std::uint8_t next() { return at < size ? data[at++] : 0; }
};

// `size` bytes as the whole content of the file at `path` (nothing written if it cannot be opened:
// the target then reads a missing file, which is a case too).
inline void write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return;
  if (size > 0) std::fwrite(data, 1, size, f);
  std::fclose(f);
}

}  // namespace fuzz
