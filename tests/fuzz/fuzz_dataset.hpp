#pragma once
// The HDF5 targets' shared recipe: one dataset made from the fuzzer's bytes. What a target varies
// (which sizes are likely, chunking, the values) is its DatasetRecipe; the bytes are read in one
// order for all: the choice of presence, type and rank, a byte per dimension, then a byte per
// value.

#include <hdf5.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_input.hpp"

namespace fuzz {

struct DatasetRecipe {
  hsize_t rows = 1;              // the size that a dimension's byte usually picks
  std::uint8_t rows_below = 0;   // a dimension byte below this picks `rows` ...
  bool rows_first_only = false;  // ... in the first dimension only (else in every one)
  hsize_t other_sizes = 1;       // any other dimension byte b picks b % other_sizes
  bool extendible = false;       // chunked and unlimited along the first dimension (mfsim's series)
  hsize_t most_values = 0;       // values are written only when 0 < count < most_values
  double (*real)(std::uint8_t) = nullptr;        // a double dataset's value from a byte
  long long (*integer)(std::uint8_t) = nullptr;  // an int64 dataset's value from a byte
  bool utf8 = false;  // the character set of string datasets (3-byte fixed strings)
};

// Creates `name` (with its missing groups) in `file` from the bytes: missing (choice 0 mod 8), or
// of a type (double, int64, string: choice / 32 mod 3), a rank (choice / 8 mod 4) and dims.
inline void make_dataset(hid_t file, const std::string& name, Bytes& in,
                         const DatasetRecipe& recipe) {
  const std::uint8_t what = in.next();
  if (what % 8 == 0) return;
  const int rank = (what / 8) % 4;
  const std::size_t r = std::size_t(rank);
  std::vector<hsize_t> dims(r), max(r), chunk(r);
  hsize_t n = 1;
  for (std::size_t i = 0; i < r; ++i) {
    const std::uint8_t b = in.next();
    const bool rows = b < recipe.rows_below && (i == 0 || !recipe.rows_first_only);
    dims[i] = rows ? recipe.rows : hsize_t(b % recipe.other_sizes);
    max[i] = i == 0 ? H5S_UNLIMITED : dims[i];
    chunk[i] = std::max<hsize_t>(1, dims[i]);
    n *= dims[i];
  }
  const int kind = (what / 32) % 3;
  const bool extendible = recipe.extendible && rank > 0;
  const hid_t space = rank == 0
                          ? H5Screate(H5S_SCALAR)
                          : H5Screate_simple(rank, dims.data(), extendible ? max.data() : nullptr);
  const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (extendible) H5Pset_chunk(dcpl, rank, chunk.data());
  const hid_t type = kind == 0   ? H5Tcopy(H5T_NATIVE_DOUBLE)
                     : kind == 1 ? H5Tcopy(H5T_NATIVE_INT64)
                                 : H5Tcopy(H5T_C_S1);
  if (kind == 2) {
    H5Tset_size(type, 3);
    if (recipe.utf8) H5Tset_cset(type, H5T_CSET_UTF8);
  }
  const hid_t ds = H5Dcreate2(file, name.c_str(), type, space, lcpl, dcpl, H5P_DEFAULT);
  if (ds >= 0 && n > 0 && n < recipe.most_values) {
    if (kind == 0) {
      std::vector<double> v(n);
      for (auto& x : v) x = recipe.real(in.next());
      H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    } else if (kind == 1) {
      std::vector<long long> v(n);
      for (auto& x : v) x = recipe.integer(in.next());
      H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    } else {
      std::string v(3 * n, 'x');
      H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    }
  }
  if (ds >= 0) H5Dclose(ds);
  H5Tclose(type);
  H5Pclose(dcpl);
  H5Pclose(lcpl);
  H5Sclose(space);
}

}  // namespace fuzz
