#pragma once
// `mfsim data import`: a user's table (CSV, or NumPy .npy features with .npy labels) to the H5MD
// data file that `data.kind = "file"` reads (/data/train/{x,y}, /data/test/{x,y}), with the
// preprocessing recorded in /parameters. Every check runs before anything is written.
#include <cstdint>
#include <map>
#include <string>

#include "mfsim/data/dataset.hpp"

namespace mfsim {

struct ImportOptions {
  std::string input;         // CSV, or the features X.npy (2-D)
  std::string labels;        // with an .npy input: the labels y.npy (1-D, one per row of X)
  std::string label_column;  // CSV: the label column's name or 0-based index (default: the last)
  double test_fraction = 0;  // rows held out as the test set, in [0, 1), by a seeded shuffle
  bool standardize = false;  // each feature to mean 0, std 1 (training statistics; std 0 left 1)
  bool normalize_to_sphere = false;  // each row to unit norm (after standardize)
  bool binary_labels = false;        // exactly two label values, mapped to −1 and +1 (ascending)
  // Class labels (MATH.md §1.5): labels that are whole numbers ≥ 0 are class indices, the file
  // records classes = the largest + 1. `classes` ("A,B,…") keeps the rows of those label values
  // only, renumbered 0, 1, … in the order given; `one_hot` writes each label as a row of
  // `classes` targets (1 at the class, 0 elsewhere) for the square loss; `real_labels` keeps whole
  // numbers as real-valued targets (no classes recorded).
  std::string classes;
  bool one_hot = false;
  bool real_labels = false;
  std::uint64_t seed = 1;  // the shuffle's seed
};

struct ImportedData {
  Dataset data;
  std::map<std::string, std::string> parameters;  // import_* attributes of /parameters
};

// Reads, checks and preprocesses; throws InputError (one line naming the file, row, column or
// option) on bad input.
ImportedData import_data(const ImportOptions& options);

// Writes `d` as an mfsim data file; an existing `path` is an InputError unless `overwrite`. The
// file is written beside `path` under a temporary name and renamed over it once complete, so that
// a failure or a stop signal meanwhile leaves an existing file as it was (and no temporary).
void write_data_file(const std::string& path, bool overwrite, const ImportedData& d);

// FNV-1a 64 of a file's bytes, as 16 hex digits: what the import records of its source.
std::string file_checksum(const std::string& path);

}  // namespace mfsim
