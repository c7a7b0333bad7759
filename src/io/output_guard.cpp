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
#include <filesystem>
#include <stdexcept>

#include "mfsim/core/error.hpp"

namespace mfsim {
namespace {

bool disk_full(int error) {
  return error == ENOSPC || error == EDQUOT;
}

std::string no_space(const std::string& path) {
  return path + ": no space left on device";
}

}  // namespace

OutputGuard::OutputGuard(const std::string& path, bool overwrite) : path_(path) {
  // O_EXCL first: whether this run created the file decides whether a failure removes it.
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  created_ = fd_ >= 0;
  if (fd_ < 0 && errno == EEXIST) {
    if (!overwrite) throw InputError(path + ": output file exists (use --force to overwrite it)");
    fd_ = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  }
  if (fd_ < 0) {
    const int error = errno;
    if (disk_full(error)) throw std::runtime_error(no_space(path));
    throw InputError(path + ": cannot create the output file (" + std::strerror(error) + ")");
  }
  // Not blocking: a second writer is refused at once. The lock goes with the descriptor, so a
  // killed run never leaves it behind. Readers (h5py, mfsim info) do not take it.
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK)
      throw InputError(path + ": another process is writing this file (it is locked)");
    throw InputError(path + ": cannot lock the output file (" + std::strerror(error) + ")");
  }
}

OutputGuard::~OutputGuard() {
  if (fd_ >= 0) ::close(fd_);
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
  if (!created_) return;
  std::error_code ec;
  std::filesystem::remove(path_, ec);
  created_ = false;
}

std::string OutputGuard::describe_failure(const std::string& path, const std::string& what) {
  if (disk_full(errno)) return no_space(path);
  if (errno == EFBIG) return path + ": file size limit exceeded";
  const std::string dir = std::filesystem::path(path).parent_path().string();
  struct statvfs fs {};
  if (::statvfs(dir.empty() ? "." : dir.c_str(), &fs) == 0 && fs.f_bavail == 0)
    return no_space(path);
  return path + ": " + what;
}

}  // namespace mfsim
