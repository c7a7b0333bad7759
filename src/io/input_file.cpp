#include "input_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "mfsim/core/error.hpp"

namespace mfsim {
namespace {

std::string kind_of(mode_t mode) {
  if (S_ISREG(mode)) return "";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a file";
}

}  // namespace

std::uint64_t require_regular_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int error = errno;
    if (error == ENOENT) throw InputError(path + ": no such file");
    throw InputError(path + ": cannot read the file (" + std::strerror(error) + ")");
  }
  const std::string kind = kind_of(st.st_mode);
  if (!kind.empty()) throw InputError(path + ": is " + kind + ", not a regular file");
  return std::uint64_t(st.st_size);
}

}  // namespace mfsim
