#include "mfsim/io/table.hpp"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include <fmt/format.h>

#include "input_file.hpp"
#include "mfsim/core/error.hpp"
#include "printable.hpp"

namespace mfsim {
namespace {

// Text from the file as a message shows it, cut to a sane length (a 10 MB cell is not echoed
// whole).
std::string shown(const std::string& text) {
  constexpr std::size_t limit = 40;
  return text.size() > limit ? printable(text.substr(0, limit)) + "..." : printable(text);
}

// A cell quoted in an error.
std::string quoted(const std::string& cell) {
  return "\"" + shown(cell) + "\"";
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
  require_regular_file(path);
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot read the file");
  Table t;
  std::string line;
  std::size_t line_number = 0;
  bool first = true;
  while (std::getline(in, line)) {
    ++line_number;
    // A UTF-8 byte-order mark (spreadsheets write one) is not part of the first column's name.
    if (line_number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    if (line.find('\0') != std::string::npos)
      throw InputError(
          fmt::format("{}: line {} holds a NUL byte (a CSV file is text)", path, line_number));
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
                                     line_number, shown(t.columns[c]), quoted(cells[c])));
      if (!std::isfinite(v))
        throw InputError(fmt::format("{}: line {}, column {}: {} is not finite", path, line_number,
                                     shown(t.columns[c]), quoted(cells[c])));
      t.values.push_back(v);
    }
    ++t.rows;
  }
  if (t.rows == 0) throw InputError(path + ": no data rows");
  return t;
}

namespace {

// The text after "'key':" in an .npy header (a Python dict literal), or an InputError.
std::string npy_field(const std::string& header, const std::string& key, const std::string& path) {
  const auto k = header.find("'" + key + "'");
  const auto colon = k == std::string::npos ? k : header.find_first_not_of(" ", k + key.size() + 2);
  if (colon == std::string::npos || header[colon] != ':')
    throw InputError(path + ": .npy header lacks '" + key + "'");
  return trim(header.substr(colon + 1));
}

// The shape tuple "(r, c)" of an .npy header: each entry a decimal count below 2^63.
std::vector<std::uint64_t> npy_shape(const std::string& field, const std::string& path) {
  const auto close = field.find(')');
  if (field.empty() || field[0] != '(' || close == std::string::npos)
    throw InputError(path + ": bad .npy header: shape " + quoted(field) + " is not a tuple");
  std::vector<std::uint64_t> shape;
  for (const std::string& entry : split(field.substr(1, close - 1))) {
    if (entry.empty()) continue;  // the trailing comma of "(4,)"
    const bool digits = entry.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || entry.size() > 18)
      throw InputError(path + ": bad .npy header: shape entry " + quoted(entry) +
                       " is not a count");
    shape.push_back(std::stoull(entry));
  }
  return shape;
}

// a · b, or false when it does not fit 64 bits.
bool multiply(std::uint64_t a, std::uint64_t b, std::uint64_t& product) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  product = a * b;
  return true;
}

}  // namespace

Table read_npy(const std::string& path) {
  const std::uint64_t file_size = require_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot read the file");
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw InputError(path + ": not a NumPy .npy file (bad magic)");
  const int version = static_cast<unsigned char>(magic[6]);
  if (version < 1 || version > 3)
    throw InputError(
        fmt::format("{}: .npy format version {} is not supported (1 to 3)", path, version));
  std::size_t header_length = 0;
  if (version == 1) {
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
  const std::uint64_t data_offset = (version == 1 ? 10 : 12) + header_length;

  const std::string descr_field = npy_field(header, "descr", path);
  const auto q2 = descr_field.find('\'', 1);
  if (descr_field.empty() || descr_field[0] != '\'' || q2 == std::string::npos)
    throw InputError(path + ": bad .npy header: descr " + quoted(descr_field) +
                     " is not a dtype string");
  const std::string descr = descr_field.substr(1, q2 - 1);
  if (npy_field(header, "fortran_order", path).rfind("False", 0) != 0)
    throw InputError(path + ": a Fortran-order .npy array; save it in C order");
  const std::vector<std::uint64_t> shape = npy_shape(npy_field(header, "shape", path), path);
  if (shape.empty() || shape.size() > 2)
    throw InputError(fmt::format("{}: a {}-D array; expected 1-D or 2-D", path, shape.size()));
  const std::uint64_t rows = shape[0], cols = shape.size() == 2 ? shape[1] : 1;
  std::size_t width;
  if (descr == "<f8" || descr == "<i8")
    width = 8;
  else if (descr == "<f4" || descr == "<i4")
    width = 4;
  else
    throw InputError(path + ": dtype " + quoted(descr) +
                     " is not supported (little-endian float64, float32, int64 or int32)");
  if (rows == 0) throw InputError(path + ": no data rows");
  if (cols == 0) throw InputError(fmt::format("{}: shape ({}, 0): no columns", path, rows));
  // The declared size against the file's, before anything is allocated: a header may claim any
  // shape.
  std::uint64_t values = 0, declared = 0;
  const std::uint64_t held = file_size > data_offset ? file_size - data_offset : 0;
  if (!multiply(rows, cols, values) || !multiply(values, width, declared) || declared > held)
    throw InputError(
        fmt::format("{}: holds fewer values than its shape ({} × {}): {} bytes of data in the file",
                    path, rows, cols, held));
  std::vector<char> bytes(declared);
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
  return t;
}

Table read_table(const std::string& path) {
  const bool npy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
  return npy ? read_npy(path) : read_csv(path);
}

}  // namespace mfsim
