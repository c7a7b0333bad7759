#pragma once
// The output file's own descriptors, held for the whole run beside HDF5's:
//  - atomic replacement: every file mfsim writes (a run's output, an imported data file) is
//    written as a hidden temporary beside the target ("DIR/.NAME.mfsim-XXXXXX"), renamed over
//    the target once complete (publish(): a run's first committed frame, an import's last row),
//    so that the target is, at every moment, the old file (or nothing) or a complete file: a
//    failure or a kill before leaves it exactly as it was (a kill leaves the temporary too: the
//    next writer of the target, run or import, removes it once it is unlocked and a minute old);
//  - an exclusive lock (flock) on the temporary and on the file it replaces, so that a second
//    mfsim writing the same path is refused instead of interleaving its frames with the first's
//    or renaming its own file over it;
//  - disk space reserved ahead of HDF5's writes (fallocate beyond the end of the file), so that a
//    full disk is found before a row is written, never halfway through one: every frame on disk
//    stays complete and readable, and HDF5 never fails while flushing or closing.
#include <cstdint>
#include <string>

namespace mfsim {

class OutputGuard {
 public:
  OutputGuard() = default;
  // Locks the file at `path` if there is one (left as it is) and creates the temporary beside it.
  // A symbolic link at `path` is followed: the file it names is the one replaced. InputError if
  // `path` exists without `overwrite`, if another process is writing it, or if the temporary
  // cannot be created; a full disk is a std::runtime_error saying "no space left on device".
  // Leaves nothing on failure.
  OutputGuard(const std::string& path, bool overwrite);
  // Removes the temporary unless it was published.
  ~OutputGuard();
  OutputGuard(const OutputGuard&) = delete;
  OutputGuard& operator=(const OutputGuard&) = delete;

  // Where HDF5 writes: the temporary (the target's name once published; the descriptor is the
  // same file either way).
  const std::string& writing_path() const { return temporary_; }
  // Renames the temporary over the target (once; later calls do nothing); without `overwrite`,
  // links it there instead, which fails if the target appeared meanwhile. InputError if another
  // process has meanwhile created the target (without `overwrite`) or is writing it.
  void publish();
  bool published() const { return published_; }

  // Makes sure that the file's bytes [0, end) are allocated on disk. Throws std::runtime_error
  // ("PATH: no space left on device; CONTEXT") when they cannot be. Does nothing where the file
  // system cannot reserve space.
  void reserve(std::uint64_t end, const std::string& context);
  // Gives back the space reserved beyond the end of the file (after HDF5 closed it).
  void release_reserve();
  // Removes the temporary if it was not published (a run that failed before its first frame
  // leaves the target as it found it).
  void remove();

  // The one-line text of a write failure of `path`: "no space left on device" when the disk is
  // full (errno ENOSPC or EDQUOT, or nothing left on the file system), else `what`.
  static std::string describe_failure(const std::string& path, const std::string& what);

 private:
  std::string path_;       // as given (for messages)
  std::string target_;     // the file replaced: `path`, or the file its symbolic link names
  std::string temporary_;  // the hidden file beside it that HDF5 writes
  bool overwrite_ = false;
  int fd_ = -1;           // the temporary's descriptor (locked)
  int replaced_fd_ = -1;  // the file being replaced, locked until the rename
  bool published_ = false;
  bool can_reserve_ = true;
  std::uint64_t reserved_ = 0;  // bytes [0, reserved_) are known to be allocated
};

}  // namespace mfsim
