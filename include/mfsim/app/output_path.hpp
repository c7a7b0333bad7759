#pragma once
// The output path, checked before anything exists on disk, and its missing parent directories,
// created only once the run is about to write and removed again if it fails before its first
// frame.
#include <filesystem>
#include <string>
#include <vector>

#include "mfsim/io/config.hpp"

namespace mfsim {

// Throws InputError (one line naming output.path) when the output cannot or must not be written:
// it is (or, once its missing directories exist, would be) the init file, the data file or the
// config file; it exists without `overwrite`, or is a directory; a component of its parent is a
// regular file; its directory is not writable; a name or the whole path is too long. Creates
// nothing: paths are compared by their canonical form with the missing part resolved lexically,
// which is where the kernel will resolve it once the directories exist.
void check_output_path(const Config& config, bool overwrite);

// The same for the data file of `mfsim data import` (-o): refused when it is one of `inputs`
// (through a link or a relative path too), a directory or another non-regular file, or exists
// without `overwrite`.
void check_import_output_path(const std::string& output, const std::vector<std::string>& inputs,
                              bool overwrite);

// The missing parent directories of an output file: created by create(), removed again (deepest
// first, if still empty) on destruction unless keep() was called, so that a run that fails before
// its first frame (a locked or full output, a failed allocation) leaves no directory behind.
class OutputDirectories {
 public:
  OutputDirectories() = default;
  ~OutputDirectories();
  OutputDirectories(const OutputDirectories&) = delete;
  OutputDirectories& operator=(const OutputDirectories&) = delete;

  void create(const std::string& output_path);
  void keep() { created_.clear(); }

 private:
  std::vector<std::filesystem::path> created_;  // outermost first
};

}  // namespace mfsim
