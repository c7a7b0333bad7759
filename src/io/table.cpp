#include "mfsim/io/table.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "mfsim/core/error.hpp"

namespace mfsim {
namespace {

// A cell quoted in an error, cut to a sane length (a 10 MB cell is not echoed whole).
std::string quoted(const std::string& cell) {
  constexpr std::size_t limit = 40;
  return "\"" + (cell.size() > limit ? cell.substr(0, limit) + "..." : cell) + "\"";
}

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r") - begin + 1);
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) cells.push_back(trim(cell));
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

// The whole cell as a number, or false.
bool parse_number(const std::string& cell, double& value) {
  if (cell.empty()) return false;
  char* end = nullptr;
  value = std::strtod(cell.c_str(), &end);
  return end == cell.c_str() + cell.size();
}

}  // namespace

Table read_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot read the file");
  Table t;
  std::string line;
  std::size_t line_number = 0;
  bool first = true;
  while (std::getline(in, line)) {
    ++line_number;
    if (trim(line).empty()) continue;
    const std::vector<std::string> cells = split(line);
    if (first) {
      first = false;
      double ignored;
      bool numeric = true;
      for (const auto& c : cells) numeric = numeric && parse_number(c, ignored);
      if (!numeric) {  // a header of names
        t.columns = cells;
        continue;
      }
      for (std::size_t c = 0; c < cells.size(); ++c) t.columns.push_back(std::to_string(c));
    }
    if (cells.size() != t.columns.size())
      throw InputError(fmt::format("{}: line {} has {} cells, expected {} (ragged rows)", path,
                                   line_number, cells.size(), t.columns.size()));
    for (std::size_t c = 0; c < cells.size(); ++c) {
      double v;
      if (!parse_number(cells[c], v))
        throw InputError(fmt::format("{}: line {}, column {}: {} is not a number", path,
                                     line_number, t.columns[c], quoted(cells[c])));
      if (!std::isfinite(v))
        throw InputError(fmt::format("{}: line {}, column {}: {} is not finite", path, line_number,
                                     t.columns[c], quoted(cells[c])));
      t.values.push_back(v);
    }
    ++t.rows;
  }
  if (t.rows == 0) throw InputError(path + ": no data rows");
  return t;
}

Table read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read the file");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw InputError(path + ": not a NumPy .npy file (bad magic)");
  std::size_t header_length = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    header_length = b[0] | (std::size_t(b[1]) << 8);
  } else {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    header_length =
        b[0] | (std::size_t(b[1]) << 8) | (std::size_t(b[2]) << 16) | (std::size_t(b[3]) << 24);
  }
  if (!in || header_length > (1u << 20)) throw InputError(path + ": bad .npy header");
  std::string header(header_length, ' ');
  if (!in.read(header.data(), std::streamsize(header_length)))
    throw InputError(path + ": truncated .npy header");
  const auto field = [&](const std::string& key) {
    const auto k = header.find("'" + key + "'");
    if (k == std::string::npos) throw InputError(path + ": .npy header lacks '" + key + "'");
    return header.substr(header.find(':', k) + 1);
  };
  const std::string descr_field = field("descr");
  const auto q1 = descr_field.find('\''), q2 = descr_field.find('\'', q1 + 1);
  const std::string descr = descr_field.substr(q1 + 1, q2 - q1 - 1);
  if (trim(field("fortran_order")).rfind("False", 0) != 0)
    throw InputError(path + ": a Fortran-order .npy array; save it in C order");
  std::string shape_text = field("shape");
  shape_text = shape_text.substr(shape_text.find('(') + 1);
  shape_text = shape_text.substr(0, shape_text.find(')'));
  std::vector<std::size_t> shape;
  for (const std::string& s : split(shape_text))
    if (!s.empty()) shape.push_back(std::stoull(s));
  if (shape.empty() || shape.size() > 2)
    throw InputError(fmt::format("{}: a {}-D array; expected 1-D or 2-D", path, shape.size()));
  const std::size_t rows = shape[0], cols = shape.size() == 2 ? shape[1] : 1;
  std::size_t width;
  if (descr == "<f8" || descr == "<i8")
    width = 8;
  else if (descr == "<f4" || descr == "<i4")
    width = 4;
  else
    throw InputError(path + ": dtype '" + descr +
                     "' is not supported (little-endian float64, float32, int64 or int32)");
  std::vector<char> bytes(rows * cols * width);
  if (!in.read(bytes.data(), std::streamsize(bytes.size())))
    throw InputError(
        fmt::format("{}: holds fewer values than its shape ({} × {})", path, rows, cols));
  Table t;
  t.rows = rows;
  for (std::size_t c = 0; c < cols; ++c) t.columns.push_back(std::to_string(c));
  t.values.resize(rows * cols);
  for (std::size_t i = 0; i < rows * cols; ++i) {
    const char* p = bytes.data() + i * width;
    double v;
    if (descr == "<f8") {
      std::memcpy(&v, p, 8);
    } else if (descr == "<f4") {
      float f;
      std::memcpy(&f, p, 4);
      v = f;
    } else if (descr == "<i8") {
      std::int64_t k;
      std::memcpy(&k, p, 8);
      v = double(k);
    } else {
      std::int32_t k;
      std::memcpy(&k, p, 4);
      v = double(k);
    }
    if (!std::isfinite(v))
      throw InputError(
          fmt::format("{}: row {}, column {}: {} is not finite", path, i / cols, i % cols, v));
    t.values[i] = v;
  }
  if (rows == 0) throw InputError(path + ": no data rows");
  return t;
}

Table read_table(const std::string& path) {
  const bool npy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
  return npy ? read_npy(path) : read_csv(path);
}

}  // namespace mfsim
