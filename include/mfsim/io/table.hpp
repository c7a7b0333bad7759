#pragma once
// A numeric table read from a user's file, every cell checked: CSV (comma-separated, an optional
// header row of names; blank lines skipped) or NumPy .npy (a C-order array of little-endian
// float64, float32, int64 or int32, 1-D or 2-D). Bad input is an InputError whose one line names
// the file, the row (1-based line of the file for CSV) and the column.
#include <string>
#include <vector>

namespace mfsim {

struct Table {
  std::vector<std::string> columns;  // names: the CSV header, else "0", "1", ...
  std::size_t rows = 0;
  std::vector<double> values;  // row-major, rows × columns.size(), all finite

  double at(std::size_t row, std::size_t col) const { return values[row * columns.size() + col]; }
};

// By the file name: ".npy" is NumPy, anything else CSV.
Table read_table(const std::string& path);
Table read_csv(const std::string& path);
Table read_npy(const std::string& path);

}  // namespace mfsim
