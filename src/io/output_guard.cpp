#include "mfsim/io/output_guard.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "mfsim/core/error.hpp"

namespace mfsim {
namespace fs = std::filesystem;
namespace {

bool disk_full(int error) {
  return error == ENOSPC || error == EDQUOT;
}

std::string no_space(const std::string& path) {
  return path + ": no space left on device";
}

std::string directory_of(const std::string& path) {
  const std::string dir = fs::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

[[noreturn]] void refuse_locked(const std::string& path, int error) {
  if (error == EWOULDBLOCK)
    throw InputError(path + ": another process is writing this file (it is locked)");
  throw InputError(path + ": cannot lock the output file (" + std::strerror(error) + ")");
}

// Opens `path` for its lock only (O_NONBLOCK: a FIFO must not wait for a writer). -1 if it
// cannot be opened; then nothing can be said of its lock either.
int open_for_lock(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  return fd;
}

// Refuses `path` if another process holds its lock.
void refuse_if_locked(const std::string& path) {
  const int fd = open_for_lock(path);
  if (fd < 0) return;
  const int locked = ::flock(fd, LOCK_EX | LOCK_NB);
  const int error = errno;
  ::close(fd);
  if (locked != 0) refuse_locked(path, error);
}

// A name no other run picks: "DIR/.NAME.mfsim-" and six hexadecimal digits.
std::string temporary_name(const std::string& target) {
  static std::mt19937 random{std::random_device{}()};
  const fs::path p(target);
  return (fs::path(directory_of(target)) /
          fmt::format(".{}.mfsim-{:06x}", p.filename().string(), random() & 0xffffffu))
      .string();
}

// Removes the temporaries that killed runs left beside `target`: unlocked, and untouched for a
// minute. A live writer holds its temporary's lock from the moment after it created it, and in
// that moment the file is new.
void remove_abandoned_temporaries(const std::string& target) {
  const std::string prefix = "." + fs::path(target).filename().string() + ".mfsim-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory_of(target), ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() != prefix.size() + 6 || name.compare(0, prefix.size(), prefix) != 0) continue;
    struct stat st {};
    if (::lstat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        ::time(nullptr) - st.st_mtime < 60)
      continue;
    const int fd = ::open(entry.path().c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) ::unlink(entry.path().c_str());
    ::close(fd);
  }
}

}  // namespace

OutputGuard::OutputGuard(const std::string& path, bool overwrite)
    : path_(path), target_(path), overwrite_(overwrite) {
  std::error_code ec;
  // Through a symbolic link, the file it names is replaced (the link stays).
  if (fs::is_symlink(path, ec) && fs::exists(path, ec)) {
    const fs::path named = fs::canonical(path, ec);
    if (!ec) target_ = named.string();
  }
  try {
    struct stat replaced {};
    if (::stat(target_.c_str(), &replaced) == 0) {
      if (!overwrite) throw InputError(path + ": output file exists (use --force to overwrite it)");
      // Locked until the rename: a second writer of this path is refused now, not at its first
      // frame.
      replaced_fd_ = open_for_lock(target_);
      if (replaced_fd_ >= 0 && ::flock(replaced_fd_, LOCK_EX | LOCK_NB) != 0)
        refuse_locked(path, errno);
    }
    for (int attempt = 0; fd_ < 0; ++attempt) {
      temporary_ = temporary_name(target_);
      fd_ = ::open(temporary_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
      if (fd_ >= 0) break;
      const int error = errno;
      if (error == EEXIST && attempt < 100) continue;
      temporary_.clear();
      if (disk_full(error)) throw std::runtime_error(no_space(path));
      throw InputError(path + ": cannot create the output file (" + std::strerror(error) + ")");
    }
    remove_abandoned_temporaries(target_);
    // The replacement keeps the permissions of the file it replaces.
    if (replaced_fd_ >= 0) ::fchmod(fd_, replaced.st_mode & 07777);
    // Not blocking: a second writer is refused at once. The lock goes with the descriptor, so a
    // killed run never leaves it behind. Readers (h5py, mfsim info) do not take it.
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) refuse_locked(path, errno);
  } catch (...) {
    remove();
    if (fd_ >= 0) ::close(fd_);
    if (replaced_fd_ >= 0) ::close(replaced_fd_);
    throw;
  }
}

OutputGuard::~OutputGuard() {
  remove();
  if (fd_ >= 0) ::close(fd_);
  if (replaced_fd_ >= 0) ::close(replaced_fd_);
}

void OutputGuard::publish() {
  if (published_ || temporary_.empty()) return;
  // Every mfsim publishing into this directory holds its lock from the check of the target to
  // the rename, so that no run renames its file over one that another has just published.
  const int dir = ::open(directory_of(target_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) ::flock(dir, LOCK_EX);
  try {
    struct stat now {
    }, replaced{};
    const bool exists = ::stat(target_.c_str(), &now) == 0;
    const bool known = replaced_fd_ >= 0 && ::fstat(replaced_fd_, &replaced) == 0 &&
                       replaced.st_dev == now.st_dev && replaced.st_ino == now.st_ino;
    const std::string created_meanwhile =
        path_ +
        ": output file exists: another process created it while this run started (use --force "
        "to overwrite it)";
    if (exists && !known) {  // created while this run was starting
      if (!overwrite_) throw InputError(created_meanwhile);
      refuse_if_locked(target_);
    }
    // Where no file may be replaced, a hard link creates the target only if no process at all
    // (not only an mfsim holding the directory's lock) created it since the check; the
    // temporary's name is then removed. A file system without hard links falls back to the
    // rename.
    bool linked = false;
    if (!exists && !overwrite_) {
      if (::link(temporary_.c_str(), target_.c_str()) == 0) {
        linked = true;
        ::unlink(temporary_.c_str());
      } else if (errno == EEXIST) {
        throw InputError(created_meanwhile);
      }
    }
    if (!linked && ::rename(temporary_.c_str(), target_.c_str()) != 0)
      throw std::runtime_error(path_ + ": cannot replace the output file (" + std::strerror(errno) +
                               ")");
    published_ = true;
    if (dir >= 0) ::fsync(dir);  // the rename itself survives a power loss
  } catch (...) {
    if (dir >= 0) ::close(dir);
    throw;
  }
  if (dir >= 0) ::close(dir);
  if (replaced_fd_ >= 0) ::close(replaced_fd_);
  replaced_fd_ = -1;
}

void OutputGuard::reserve(std::uint64_t end, const std::string& context) {
  if (fd_ < 0 || !can_reserve_) return;
  // A file-size limit (ulimit -f) is a full disk of its own; fallocate does not check it.
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      end > std::uint64_t(limit.rlim_cur))
    throw std::runtime_error(path_ + ": file size limit exceeded; " + context);
#ifdef __linux__
  // From the current end of the file: HDF5 truncates the file to its own end when it flushes,
  // which gives back whatever was reserved beyond it.
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return;
  const std::uint64_t start = std::uint64_t(st.st_size);
  if (end <= start) return;
  // FALLOC_FL_KEEP_SIZE: the blocks are allocated but the file's size (what HDF5 sees) is not
  // changed; HDF5's later writes there cannot fail for want of space.
  if (::fallocate(fd_, FALLOC_FL_KEEP_SIZE, off_t(start), off_t(end - start)) == 0) {
    reserved_ = std::max(reserved_, end);
    return;
  }
  const int error = errno;
  if (disk_full(error)) throw std::runtime_error(no_space(path_) + "; " + context);
  if (error == EFBIG) throw std::runtime_error(path_ + ": file size limit exceeded; " + context);
#else
  (void)end;
  (void)context;
#endif
  can_reserve_ = false;  // a file system without fallocate: write without reserving
}

void OutputGuard::release_reserve() {
#ifdef __linux__
  if (fd_ < 0 || reserved_ == 0) return;
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && std::uint64_t(st.st_size) < reserved_)
    ::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, st.st_size,
                off_t(reserved_ - std::uint64_t(st.st_size)));
  reserved_ = 0;
#endif
}

void OutputGuard::remove() {
  if (published_ || temporary_.empty()) return;
  ::unlink(temporary_.c_str());
  temporary_.clear();
}

std::string OutputGuard::describe_failure(const std::string& path, const std::string& what) {
  if (disk_full(errno)) return no_space(path);
  if (errno == EFBIG) return path + ": file size limit exceeded";
  const std::string dir = fs::path(path).parent_path().string();
  struct statvfs fs {};
  if (::statvfs(dir.empty() ? "." : dir.c_str(), &fs) == 0 && fs.f_bavail == 0)
    return no_space(path);
  return path + ": " + what;
}

}  // namespace mfsim
