#pragma once
// The output file's own descriptor, held for the whole run beside HDF5's:
//  - an exclusive lock (flock), so that a second mfsim writing the same path is refused instead
//    of interleaving its frames with the first's;
//  - disk space reserved ahead of HDF5's writes (fallocate beyond the end of the file), so that a
//    full disk is found before a row is written, never halfway through one: every frame on disk
//    stays complete and readable, and HDF5 never fails while flushing or closing.
#include <cstdint>
#include <string>

namespace mfsim {

class OutputGuard {
 public:
  OutputGuard() = default;
  // Creates (or, with `overwrite`, opens) `path` and locks it. InputError if it exists without
  // `overwrite`, if another process holds the lock, or if it cannot be created; a full disk is a
  // std::runtime_error saying "no space left on device". Creates nothing on failure.
  OutputGuard(const std::string& path, bool overwrite);
  ~OutputGuard();
  OutputGuard(const OutputGuard&) = delete;
  OutputGuard& operator=(const OutputGuard&) = delete;

  // Makes sure that the file's bytes [0, end) are allocated on disk. Throws std::runtime_error
  // ("PATH: no space left on device; CONTEXT") when they cannot be. Does nothing where the file
  // system cannot reserve space.
  void reserve(std::uint64_t end, const std::string& context);
  // Gives back the space reserved beyond the end of the file (after HDF5 closed it).
  void release_reserve();
  // Removes the file (a run that failed before writing its first frame leaves nothing).
  void remove();

  // The one-line text of a write failure of `path`: "no space left on device" when the disk is
  // full (errno ENOSPC or EDQUOT, or nothing left on the file system), else `what`.
  static std::string describe_failure(const std::string& path, const std::string& what);

 private:
  std::string path_;
  int fd_ = -1;
  bool created_ = false;
  bool can_reserve_ = true;
  std::uint64_t reserved_ = 0;  // bytes [0, reserved_) are known to be allocated
};

}  // namespace mfsim
