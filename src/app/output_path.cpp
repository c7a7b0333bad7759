#include "mfsim/app/output_path.hpp"

#include <limits.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "mfsim/core/error.hpp"

namespace mfsim {
namespace fs = std::filesystem;
namespace {

// A path for a message: long ones are cut (the whole path is in the config anyway).
std::string shown(const std::string& path) {
  constexpr std::size_t keep = 120;
  if (path.size() <= keep) return "\"" + path + "\"";
  return "\"" + path.substr(0, keep / 2) + "..." + path.substr(path.size() - keep / 2) + "\"";
}

[[noreturn]] void refuse(const std::string& out, const std::string& problem) {
  throw InputError("output.path: " + shown(out) + " " + problem);
}

// The canonical form of `p` with its missing tail normalised lexically ("sub/../x" is "x"):
// where the kernel will find it once the missing directories exist. Creates nothing.
fs::path resolved(const fs::path& p) {
  std::error_code ec;
  fs::path absolute = fs::absolute(p, ec);
  if (ec) return p.lexically_normal();
  // Walk up to the deepest existing ancestor, canonicalise it, and append the rest normalised.
  fs::path existing = absolute, rest;
  while (!existing.empty() && !fs::exists(existing, ec)) {
    rest = existing.filename() / rest;
    if (existing == existing.parent_path()) break;
    existing = existing.parent_path();
  }
  fs::path base = fs::canonical(existing, ec);
  if (ec) base = existing;
  return (base / rest).lexically_normal();
}

bool same_file(const fs::path& out, const std::string& other) {
  std::error_code ec;
  if (other.empty() || !fs::exists(other, ec)) return false;
  if (fs::exists(out, ec) && fs::equivalent(out, other, ec)) return true;  // hard links too
  return resolved(out) == resolved(other);
}

}  // namespace

void check_output_path(const Config& c, bool overwrite) {
  const std::string& out = c.output.path;
  if (out.empty()) throw InputError("output.path: must not be empty");
  // Too long for the kernel: refused here rather than as a failure to create it.
  if (out.size() >= PATH_MAX) refuse(out, fmt::format("is too long ({} characters)", out.size()));
  // The file's own name leaves room for the writer's temporary beside it, ".NAME.mfsim-XXXXXX".
  const fs::path path(out);
  for (const auto& part : path) {
    const std::size_t most = part == path.filename() ? NAME_MAX - 14 : NAME_MAX;
    if (part.string().size() > most)
      refuse(out,
             fmt::format("has a name of {} characters (at most {})", part.string().size(), most));
  }
  if (c.init.kind == InitKind::file && same_file(path, c.init.path))
    refuse(out, "is the init file; write the restart elsewhere");
  if (c.data.kind == DataKind::file && same_file(path, c.data.path))
    refuse(out, "is the data file; write the run elsewhere");
  if (same_file(path, c.source)) refuse(out, "is the config file");
  std::error_code ec;
  if (fs::is_directory(path, ec)) refuse(out, "is a directory");
  // A FIFO would block the writer's open() until a reader comes; a device is no output file.
  if (fs::exists(path, ec) && !fs::is_regular_file(path, ec))
    refuse(out, "is not a regular file (a FIFO, a device or a socket)");
  if (!overwrite && fs::exists(path, ec)) refuse(out, "exists (use --force to overwrite it)");
  // The deepest existing ancestor must be a directory that this process may write in.
  fs::path ancestor = fs::absolute(path, ec).parent_path();
  while (!fs::exists(ancestor, ec) && ancestor != ancestor.parent_path())
    ancestor = ancestor.parent_path();
  if (!fs::is_directory(ancestor, ec))
    refuse(out, "cannot be created: " + shown(ancestor.string()) + " is not a directory");
  if (::access(ancestor.c_str(), W_OK | X_OK) != 0)
    refuse(out, "cannot be written: " + shown(ancestor.string()) + ": " + std::strerror(errno));
  if (fs::exists(path, ec) && ::access(out.c_str(), W_OK) != 0)
    refuse(out, std::string("cannot be overwritten: ") + std::strerror(errno));
}

void check_import_output_path(const std::string& out, const std::vector<std::string>& inputs,
                              bool overwrite) {
  const auto refuse_import = [&](const std::string& problem) {
    throw InputError("-o " + shown(out) + ": " + problem);
  };
  for (const std::string& input : inputs)
    if (same_file(fs::path(out), input))
      refuse_import("is the input file " + shown(input) + "; write the data file elsewhere");
  std::error_code ec;
  if (fs::is_directory(out, ec)) refuse_import("is a directory");
  if (fs::exists(out, ec) && !fs::is_regular_file(out, ec))
    refuse_import("is not a regular file (a FIFO, a device or a socket)");
  if (!overwrite && fs::exists(out, ec)) refuse_import("exists (use --force to overwrite it)");
}

void OutputDirectories::create(const std::string& output_path) {
  std::error_code ec;
  const fs::path parent = fs::path(output_path).parent_path();
  if (parent.empty()) return;
  std::vector<fs::path> missing;
  for (fs::path p = parent; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    missing.push_back(p);
    if (p == p.parent_path()) break;
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (!fs::create_directory(*it, ec) && ec)
      throw InputError("output.path: cannot create the directory " + shown(it->string()) + ": " +
                       ec.message());
    created_.push_back(*it);
  }
}

OutputDirectories::~OutputDirectories() {
  std::error_code ec;
  for (auto it = created_.rbegin(); it != created_.rend(); ++it) fs::remove(*it, ec);
}

}  // namespace mfsim
