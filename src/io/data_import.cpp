#include "mfsim/io/data_import.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "mfsim/core/error.hpp"
#include "mfsim/core/random.hpp"
#include "mfsim/io/h5md_writer.hpp"
#include "mfsim/io/table.hpp"

namespace mfsim {
namespace {

// The label column of a CSV table: by name, else by 0-based index; the last one by default.
std::size_t label_index(const Table& t, const ImportOptions& o) {
  if (o.label_column.empty()) return t.columns.size() - 1;
  for (std::size_t c = 0; c < t.columns.size(); ++c)
    if (t.columns[c] == o.label_column) return c;
  char* end = nullptr;
  const long index = std::strtol(o.label_column.c_str(), &end, 10);
  if (*end == '\0' && index >= 0 && std::size_t(index) < t.columns.size()) return index;
  std::string names;
  for (const auto& c : t.columns) names += (names.empty() ? "" : ", ") + c;
  if (names.size() > 200) names = names.substr(0, 200) + "...";
  throw InputError(fmt::format("--label-column {}: no such column in {} (columns: {})",
                               o.label_column, o.input, names));
}

Matrix device_matrix(const std::string& label, const std::vector<double>& values, std::size_t rows,
                     std::size_t cols) {
  Matrix m(label, rows, cols);
  auto h = Kokkos::create_mirror_view(m);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) h(i, j) = real(values[i * cols + j]);
  Kokkos::deep_copy(m, h);
  return m;
}

Vector device_vector(const std::string& label, const std::vector<double>& values) {
  Vector v(label, values.size());
  auto h = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < values.size(); ++i) h(i) = real(values[i]);
  Kokkos::deep_copy(v, h);
  return v;
}

std::string yes_no(bool b) {
  return b ? "true" : "false";
}

}  // namespace

std::string file_checksum(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::uint64_t hash = 0xcbf29ce484222325ull;
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    for (std::streamsize i = 0; i < in.gcount(); ++i) {
      hash ^= std::uint8_t(buffer[i]);
      hash *= 0x100000001b3ull;
    }
  }
  return fmt::format("{:016x}", hash);
}

ImportedData import_data(const ImportOptions& o) {
  if (!(o.test_fraction >= 0 && o.test_fraction < 1))
    throw InputError(fmt::format("--test-fraction: must be in [0, 1) (got {})", o.test_fraction));
  // Features x (rows × d) and labels y, from one CSV or an .npy pair.
  std::vector<double> x, y;
  std::size_t rows = 0, dim = 0;
  std::string label_name;
  const Table table = read_table(o.input);
  if (!o.labels.empty()) {
    if (!o.label_column.empty())
      throw InputError("--label-column: not with --labels (the labels are their own file)");
    const Table labels = read_table(o.labels);
    if (labels.columns.size() != 1 || labels.rows != table.rows)
      throw InputError(
          fmt::format("--labels {}: {} × {} values, expected {} labels (one per row "
                      "of {})",
                      o.labels, labels.rows, labels.columns.size(), table.rows, o.input));
    rows = table.rows, dim = table.columns.size();
    x = table.values, y = labels.values;
    label_name = o.labels;
  } else {
    if (table.columns.size() < 2)
      throw InputError(o.input + ": one column only: features and a label column are needed");
    const std::size_t label = label_index(table, o);
    rows = table.rows, dim = table.columns.size() - 1;
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t c = 0; c < table.columns.size(); ++c)
        (c == label ? y : x).push_back(table.at(i, c));
    label_name = table.columns[label];
  }

  ImportedData out;
  std::string label_map = "none";
  if (o.binary_labels) {
    const std::set<double> values(y.begin(), y.end());
    if (values.size() != 2)
      throw InputError(fmt::format("--binary-labels: {} holds {} distinct labels, expected 2",
                                   label_name, values.size()));
    const double low = *values.begin(), high = *values.rbegin();
    for (double& v : y) v = v == low ? -1.0 : 1.0;
    label_map = fmt::format("{} -> -1, {} -> +1", low, high);
  }

  // The split: a seeded shuffle (a sort by counter-based uniforms), the first n_test rows test.
  const std::size_t n_test = std::size_t(std::llround(o.test_fraction * double(rows)));
  if (rows - n_test < 1)
    throw InputError(
        fmt::format("--test-fraction {}: leaves no training row of {}", o.test_fraction, rows));
  std::vector<std::size_t> order(rows);
  std::iota(order.begin(), order.end(), 0);
  if (n_test > 0) {
    const CounterRng rng(o.seed, rng_import_split);
    std::vector<double> key(rows);
    for (std::size_t i = 0; i < rows; ++i) {
      double u1;
      rng.uniform2(i, 0, key[i], u1);
    }
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return key[a] < key[b]; });
  }
  std::vector<double> x_train, y_train, x_test, y_test;
  for (std::size_t k = 0; k < rows; ++k) {
    const std::size_t i = order[k];
    auto& xs = k < n_test ? x_test : x_train;
    (k < n_test ? y_test : y_train).push_back(y[i]);
    xs.insert(xs.end(), x.begin() + i * dim, x.begin() + (i + 1) * dim);
  }
  const std::size_t n_train = rows - n_test;

  if (o.standardize) {  // training statistics, applied to both sets
    for (std::size_t c = 0; c < dim; ++c) {
      double mean = 0, var = 0;
      for (std::size_t i = 0; i < n_train; ++i) mean += x_train[i * dim + c];
      mean /= double(n_train);
      for (std::size_t i = 0; i < n_train; ++i) var += std::pow(x_train[i * dim + c] - mean, 2);
      const double sd = var > 0 ? std::sqrt(var / double(n_train)) : 1.0;
      for (auto* xs : {&x_train, &x_test})
        for (std::size_t i = 0; i < xs->size() / dim; ++i)
          (*xs)[i * dim + c] = ((*xs)[i * dim + c] - mean) / sd;
    }
  }
  if (o.normalize_to_sphere) {
    for (auto* xs : {&x_train, &x_test})
      for (std::size_t i = 0; i < xs->size() / dim; ++i) {
        double norm = 0;
        for (std::size_t c = 0; c < dim; ++c) norm += std::pow((*xs)[i * dim + c], 2);
        norm = std::sqrt(norm);
        if (!(norm > 0))
          throw InputError(
              fmt::format("--normalize-to-sphere: a row of {} is 0 after the "
                          "preprocessing, it has no direction",
                          o.input));
        for (std::size_t c = 0; c < dim; ++c) (*xs)[i * dim + c] /= norm;
      }
  }

  Dataset& d = out.data;
  d.x_train = device_matrix("mfsim::Dataset::x_train", x_train, n_train, dim);
  d.y_train = device_vector("mfsim::Dataset::y_train", y_train);
  d.x_test = device_matrix("mfsim::Dataset::x_test", x_test, n_test, dim);
  d.y_test = device_vector("mfsim::Dataset::y_test", y_test);
  out.parameters = {
      {"import_source", std::filesystem::absolute(o.input).string()},
      {"import_source_fnv1a64", file_checksum(o.input)},
      {"import_labels", label_name},
      {"import_rows", std::to_string(rows)},
      {"import_features", std::to_string(dim)},
      {"import_n_train", std::to_string(n_train)},
      {"import_n_test", std::to_string(n_test)},
      {"import_test_fraction", fmt::format("{}", o.test_fraction)},
      {"import_seed", std::to_string(o.seed)},
      {"import_standardize", yes_no(o.standardize)},
      {"import_normalize_to_sphere", yes_no(o.normalize_to_sphere)},
      {"import_binary_labels", label_map},
  };
  if (!o.labels.empty()) out.parameters["import_labels_fnv1a64"] = file_checksum(o.labels);
  return out;
}

void write_data_file(const std::string& path, bool overwrite, const ImportedData& d) {
  if (!overwrite && std::filesystem::exists(path))
    throw InputError("-o " + path + ": exists (use --force to overwrite it)");
  H5mdWriter writer(path, overwrite, {}, false);
  writer.write_parameters(d.parameters);
  writer.write_data(d.data);
}

}  // namespace mfsim
