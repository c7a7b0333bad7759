#include "mfsim/io/data_import.hpp"

#include <pthread.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "mfsim/core/error.hpp"
#include "mfsim/core/random.hpp"
#include "mfsim/io/h5md_writer.hpp"
#include "mfsim/io/table.hpp"
#include "printable.hpp"

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
  for (const auto& c : t.columns) names += (names.empty() ? "" : ", ") + printable(c);
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

void check_test_fraction(const ImportOptions& o) {
  if (!(o.test_fraction >= 0 && o.test_fraction < 1))
    throw InputError(fmt::format("--test-fraction: must be in [0, 1) (got {})", o.test_fraction));
}

// Features x (rows × dim, row-major) and labels y, and what the labels are called.
struct Examples {
  std::vector<double> x, y;
  std::size_t rows = 0, dim = 0;
  std::string label_name;  // the labels file, or the CSV's label column
};

// Features from `features` (an .npy, read as a table), labels from the .npy of --labels.
Examples read_npy_pair(const ImportOptions& o, const Table& features) {
  if (!o.label_column.empty())
    throw InputError("--label-column: not with --labels (the labels are their own file)");
  const Table labels = read_table(o.labels);
  if (labels.columns.size() != 1 || labels.rows != features.rows)
    throw InputError(
        fmt::format("--labels {}: {} × {} values, expected {} labels (one per row "
                    "of {})",
                    o.labels, labels.rows, labels.columns.size(), features.rows, o.input));
  Examples e;
  e.rows = features.rows, e.dim = features.columns.size();
  e.x = features.values, e.y = labels.values;
  e.label_name = o.labels;
  return e;
}

// Features and labels from one CSV table: the label column and every other.
Examples read_csv_columns(const ImportOptions& o, const Table& table) {
  if (table.columns.size() < 2)
    throw InputError(o.input + ": one column only: features and a label column are needed");
  const std::size_t label = label_index(table, o);
  Examples e;
  e.rows = table.rows, e.dim = table.columns.size() - 1;
  for (std::size_t i = 0; i < e.rows; ++i)
    for (std::size_t c = 0; c < table.columns.size(); ++c)
      (c == label ? e.y : e.x).push_back(table.at(i, c));
  e.label_name = table.columns[label];
  return e;
}

bool is_npy(const std::string& path) {
  return path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
}

Examples read_examples(const ImportOptions& o) {
  // An .npy has no named label column: taking its last column silently made a feature a label.
  if (is_npy(o.input) && o.labels.empty() && o.label_column.empty())
    throw InputError(o.input +
                     ": give the labels with --labels LABELS.npy (or name the column of " +
                     o.input + " that holds them with --label-column)");
  const Table table = read_table(o.input);
  return o.labels.empty() ? read_csv_columns(o, table) : read_npy_pair(o, table);
}

// With --binary-labels, the two label values to −1 and +1 (ascending); returns the mapping as
// /parameters records it ("none" without the option).
std::string map_binary_labels(const ImportOptions& o, Examples& e) {
  if (!o.binary_labels) return "none";
  const std::set<double> values(e.y.begin(), e.y.end());
  if (values.size() != 2)
    throw InputError(fmt::format("--binary-labels: {} holds {} distinct labels, expected 2",
                                 printable(e.label_name), values.size()));
  const double low = *values.begin(), high = *values.rbegin();
  for (double& v : e.y) v = v == low ? -1.0 : 1.0;
  return fmt::format("{} -> -1, {} -> +1", low, high);
}

// A class index: a whole number below model.outputs' bound.
bool whole_number(double v) {
  return v >= 0 && v == std::floor(v) && v < 65536;
}

// The class labels (ImportOptions::classes): renumbers the rows' labels and drops the rows of
// other labels with --classes, else keeps whole numbers ≥ 0 as they are; sets e.classes (0 when
// the labels are not classes) and returns what /parameters records.
std::string map_class_labels(const ImportOptions& o, Examples& e, int& classes) {
  classes = 0;
  const bool chosen = !o.classes.empty();
  if (o.binary_labels && (chosen || o.one_hot))
    throw InputError(std::string(chosen ? "--classes" : "--one-hot") +
                     ": not with --binary-labels (labels -1/+1 are the logistic loss's)");
  if (o.real_labels && (chosen || o.one_hot))
    throw InputError(std::string(chosen ? "--classes" : "--one-hot") +
                     ": not with --real-labels (real-valued labels have no classes)");
  if (o.binary_labels || o.real_labels) return "none";
  if (!chosen) {
    double top = -1;
    for (double v : e.y) {
      if (!whole_number(v)) {
        if (o.one_hot)
          throw InputError(fmt::format(
              "--one-hot: {} holds the label {}, not a class index (a whole number >= 0); "
              "--classes A,B,... selects classes by their labels",
              printable(e.label_name), v));
        return "none";
      }
      top = std::max(top, v);
    }
    if (top < 1) {
      if (o.one_hot)
        throw InputError("--one-hot: " + printable(e.label_name) + " holds one class only");
      return "none";
    }
    classes = int(top) + 1;
    return std::to_string(classes);
  }
  // --classes A,B,...: the label values, in the order that numbers them.
  std::vector<double> wanted;
  std::stringstream list(o.classes);
  for (std::string item; std::getline(list, item, ',');) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !std::isfinite(v))
      throw InputError("--classes " + printable(o.classes) + ": " + printable(item) +
                       " is not a label value (expected numbers separated by commas)");
    if (std::find(wanted.begin(), wanted.end(), v) != wanted.end())
      throw InputError(fmt::format("--classes {}: lists {} twice", printable(o.classes), v));
    wanted.push_back(v);
  }
  if (wanted.size() < 2)
    throw InputError("--classes " + printable(o.classes) + ": lists fewer than 2 classes");
  Examples kept;
  kept.dim = e.dim, kept.label_name = e.label_name;
  std::vector<bool> seen(wanted.size(), false);
  for (std::size_t i = 0; i < e.rows; ++i) {
    const auto at = std::find(wanted.begin(), wanted.end(), e.y[i]);
    if (at == wanted.end()) continue;
    seen[std::size_t(at - wanted.begin())] = true;
    kept.y.push_back(double(at - wanted.begin()));
    kept.x.insert(kept.x.end(), e.x.begin() + i * e.dim, e.x.begin() + (i + 1) * e.dim);
    ++kept.rows;
  }
  for (std::size_t k = 0; k < wanted.size(); ++k)
    if (!seen[k])
      throw InputError(fmt::format("--classes {}: no row of {} has the label {}",
                                   printable(o.classes), printable(e.label_name), wanted[k]));
  e = kept;
  classes = int(wanted.size());
  std::string mapping;
  for (std::size_t k = 0; k < wanted.size(); ++k)
    mapping += fmt::format("{}{} -> {}", k ? ", " : "", wanted[k], k);
  return mapping;
}

// With --one-hot, each label k of both sets to the row e_k of `classes` targets.
void to_one_hot(std::vector<double>& y, int classes) {
  std::vector<double> rows(y.size() * std::size_t(classes), 0.0);
  for (std::size_t i = 0; i < y.size(); ++i) rows[i * std::size_t(classes) + std::size_t(y[i])] = 1;
  y = std::move(rows);
}

// The training and test rows, row-major as in Examples.
struct Split {
  std::vector<double> x_train, y_train, x_test, y_test;
  std::size_t n_train = 0, n_test = 0;
};

// The rows in a seeded shuffled order (a sort by counter-based uniforms); in file order when no
// row is held out.
std::vector<std::size_t> row_order(std::size_t rows, std::size_t n_test, std::uint64_t seed) {
  std::vector<std::size_t> order(rows);
  std::iota(order.begin(), order.end(), 0);
  if (n_test == 0) return order;
  const CounterRng rng(seed, rng_import_split);
  std::vector<double> key(rows);
  for (std::size_t i = 0; i < rows; ++i) {
    double u1;
    rng.uniform2(i, 0, key[i], u1);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return key[a] < key[b]; });
  return order;
}

// The split: the first n_test rows of the shuffled order are the test set.
Split split_rows(const ImportOptions& o, const Examples& e) {
  Split s;
  s.n_test = std::size_t(std::llround(o.test_fraction * double(e.rows)));
  if (e.rows - s.n_test < 1)
    throw InputError(
        fmt::format("--test-fraction {}: leaves no training row of {}", o.test_fraction, e.rows));
  s.n_train = e.rows - s.n_test;
  const std::vector<std::size_t> order = row_order(e.rows, s.n_test, o.seed);
  for (std::size_t k = 0; k < e.rows; ++k) {
    const std::size_t i = order[k];
    auto& xs = k < s.n_test ? s.x_test : s.x_train;
    (k < s.n_test ? s.y_test : s.y_train).push_back(e.y[i]);
    xs.insert(xs.end(), e.x.begin() + i * e.dim, e.x.begin() + (i + 1) * e.dim);
  }
  return s;
}

// Each feature to mean 0, std 1 by the training statistics, applied to both sets (a constant
// feature is only centred).
void standardize(Split& s, std::size_t dim) {
  for (std::size_t c = 0; c < dim; ++c) {
    double mean = 0, var = 0;
    for (std::size_t i = 0; i < s.n_train; ++i) mean += s.x_train[i * dim + c];
    mean /= double(s.n_train);
    for (std::size_t i = 0; i < s.n_train; ++i) var += std::pow(s.x_train[i * dim + c] - mean, 2);
    const double sd = var > 0 ? std::sqrt(var / double(s.n_train)) : 1.0;
    for (auto* xs : {&s.x_train, &s.x_test})
      for (std::size_t i = 0; i < xs->size() / dim; ++i)
        (*xs)[i * dim + c] = ((*xs)[i * dim + c] - mean) / sd;
  }
}

// Each row of both sets to unit norm; a zero row, which has no direction, is refused.
void normalize_to_sphere(Split& s, std::size_t dim, const std::string& input) {
  for (auto* xs : {&s.x_train, &s.x_test})
    for (std::size_t i = 0; i < xs->size() / dim; ++i) {
      double norm = 0;
      for (std::size_t c = 0; c < dim; ++c) norm += std::pow((*xs)[i * dim + c], 2);
      norm = std::sqrt(norm);
      if (!(norm > 0))
        throw InputError(
            fmt::format("--normalize-to-sphere: a row of {} is 0 after the "
                        "preprocessing, it has no direction",
                        input));
      for (std::size_t c = 0; c < dim; ++c) (*xs)[i * dim + c] /= norm;
    }
}

Dataset to_dataset(const Split& s, std::size_t dim, int classes, int targets) {
  Dataset d;
  d.classes = classes;
  d.targets = targets;
  d.x_train = device_matrix("mfsim::Dataset::x_train", s.x_train, s.n_train, dim);
  d.y_train = device_vector("mfsim::Dataset::y_train", s.y_train);
  d.x_test = device_matrix("mfsim::Dataset::x_test", s.x_test, s.n_test, dim);
  d.y_test = device_vector("mfsim::Dataset::y_test", s.y_test);
  return d;
}

// The import_* attributes of /parameters: the source and its checksum, the sizes and the
// preprocessing.
std::map<std::string, std::string> import_parameters(const ImportOptions& o, const Examples& e,
                                                     const Split& s, const std::string& label_map,
                                                     const std::string& class_map) {
  std::map<std::string, std::string> out = {
      {"import_source", std::filesystem::absolute(o.input).string()},
      {"import_source_fnv1a64", file_checksum(o.input)},
      {"import_labels", e.label_name},
      {"import_rows", std::to_string(e.rows)},
      {"import_features", std::to_string(e.dim)},
      {"import_n_train", std::to_string(s.n_train)},
      {"import_n_test", std::to_string(s.n_test)},
      {"import_test_fraction", fmt::format("{}", o.test_fraction)},
      {"import_seed", std::to_string(o.seed)},
      {"import_standardize", yes_no(o.standardize)},
      {"import_normalize_to_sphere", yes_no(o.normalize_to_sphere)},
      {"import_binary_labels", label_map},
      {"import_classes", class_map},
      {"import_one_hot", yes_no(o.one_hot)},
  };
  if (!o.labels.empty()) out["import_labels_fnv1a64"] = file_checksum(o.labels);
  return out;
}

// SIGTERM, SIGINT and SIGHUP blocked while alive: one that arrives is delivered (with its
// default action, ending the process) when the object is destroyed.
class SignalsHeld {
 public:
  SignalsHeld() {
    sigemptyset(&signals_);
    for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals_, s);
    pthread_sigmask(SIG_BLOCK, &signals_, &before_);
  }
  ~SignalsHeld() { pthread_sigmask(SIG_SETMASK, &before_, nullptr); }
  SignalsHeld(const SignalsHeld&) = delete;
  SignalsHeld& operator=(const SignalsHeld&) = delete;

  bool pending() const {
    sigset_t waiting;
    sigpending(&waiting);
    for (int s : {SIGTERM, SIGINT, SIGHUP})
      if (sigismember(&signals_, s) && sigismember(&waiting, s)) return true;
    return false;
  }

 private:
  sigset_t signals_, before_;
};

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
  check_test_fraction(o);
  Examples examples = read_examples(o);
  int classes = 0;
  const std::string class_map = map_class_labels(o, examples, classes);
  const std::string label_map = map_binary_labels(o, examples);
  Split split = split_rows(o, examples);
  if (o.standardize) standardize(split, examples.dim);
  if (o.normalize_to_sphere) normalize_to_sphere(split, examples.dim, o.input);
  if (o.one_hot) {
    to_one_hot(split.y_train, classes);
    to_one_hot(split.y_test, classes);
  }
  ImportedData out;
  out.data = to_dataset(split, examples.dim, classes, o.one_hot ? classes : 1);
  out.parameters = import_parameters(o, examples, split, label_map, class_map);
  return out;
}

void write_data_file(const std::string& path, bool overwrite, const ImportedData& d) {
  // A stop signal (or ^C) while the file is written takes effect once the writer's temporary
  // beside `path` is renamed over it or removed, so that it neither leaves a half-written file
  // nor a stray temporary.
  const SignalsHeld held;
  struct Stopped {};
  try {
    H5mdWriter writer(path, overwrite, {}, false);
    writer.write_parameters(d.parameters);
    writer.write_data(d.data);
    // Closed by an exception, the writer publishes nothing and removes its temporary; the held
    // signal then ends the process.
    if (held.pending()) throw Stopped{};
    writer.publish();
  } catch (const Stopped&) {
  }
}

}  // namespace mfsim
