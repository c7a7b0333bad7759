// libFuzzer target: the /parameters and /observables readers (io/h5md_reader.cpp's parameter and
// read_observable, io/hdf5.cpp's attribute reads) and `mfsim info` (io/info.cpp) on a file that
// the input describes. Input byte 0 picks the mode:
//  - 0 mod 3, a recipe: /parameters attributes (each a scalar or an array of integers, doubles,
//    variable-length or fixed-length strings) and /observables elements (step, time and value
//    datasets of chosen types and shapes), written with the HDF5 API;
//  - 1 mod 3, the remaining bytes are the file itself;
//  - 2 mod 3, damage: a valid file written like mfsim's (variable-length string attributes,
//    chunked series) with bytes overwritten, three input bytes each (offset high, offset low,
//    value): one damaged byte of a string attribute once crashed `mfsim info` inside HDF5.
// Every parameter and observable is then read, and the file described as `mfsim info` does.
// InputError is the expected refusal; any other exception is a finding with MFSIM_FUZZ_STRICT.
#include <hdf5.h>
#include <unistd.h>

#include <Kokkos_Core.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "mfsim/core/console.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/io/h5md_reader.hpp"
#include "mfsim/io/info.hpp"

#include "fuzz_dataset.hpp"
#include "fuzz_input.hpp"

namespace {

using fuzz::Bytes;

const char* const parameter_names[] = {"mfsim_version",  "backend", "threads",    "precision",
                                       "ranks",          "model",   "kernel_isa", "ntk_lambda0",
                                       "ntk_gram_scale", "config"};
const char* const observable_names[] = {"loss", "gram_lambda_min", "kl_transport"};

hid_t string_type(bool variable, std::size_t size) {
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, variable ? H5T_VARIABLE : size);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

// One attribute of /parameters: a kind (int, double, variable or fixed string), a count (0 is a
// scalar) and values from the bytes.
void make_attribute(hid_t group, const char* name, Bytes& in) {
  const std::uint8_t what = in.next();
  if (what % 6 == 0) return;  // missing
  const int kind = (what / 6) % 4;
  const hsize_t count = (what / 24) % 4;
  const hid_t space = count == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &count, nullptr);
  const hsize_t n = count == 0 ? 1 : count;
  const std::size_t fixed = 1 + in.next() % 12;
  const hid_t type = kind == 0   ? H5Tcopy(H5T_NATIVE_INT64)
                     : kind == 1 ? H5Tcopy(H5T_NATIVE_DOUBLE)
                                 : string_type(kind == 2, fixed);
  const hid_t attr = H5Acreate2(group, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (attr >= 0) {
    if (kind == 0) {
      std::vector<long long> v(n);
      for (auto& x : v) x = (long long)(in.next()) - 128;
      H5Awrite(attr, type, v.data());
    } else if (kind == 1) {
      std::vector<double> v(n);
      for (auto& x : v) x = in.next() == 0 ? 1e308 * 10 : double(in.next()) / 7;
      H5Awrite(attr, type, v.data());
    } else if (kind == 2) {
      std::vector<std::string> text(n);
      std::vector<const char*> ptrs;
      for (auto& t : text) {
        t = std::string(in.next() % 8, 'a' + in.next() % 26);
        ptrs.push_back(t.c_str());
      }
      H5Awrite(attr, type, ptrs.data());
    } else {
      std::string v(fixed * n, '\0');
      for (auto& c : v) c = char(in.next());
      H5Awrite(attr, type, v.data());
    }
    H5Aclose(attr);
  }
  H5Tclose(type);
  H5Sclose(space);
}

// A dataset of an observable: sizes mostly the element's row count in the first dimension,
// chunked and extendible along the rows (as mfsim writes its series).
const fuzz::DatasetRecipe series = [] {
  fuzz::DatasetRecipe r;
  r.rows_below = 160;
  r.rows_first_only = true;
  r.other_sizes = 6;
  r.extendible = true;
  r.most_values = 10000;
  r.real = [](std::uint8_t b) {
    return double(b) - 100;
  };
  r.integer = [](std::uint8_t b) {
    return (long long)(b % 6);
  };
  r.utf8 = true;
  return r;
}();

void write_recipe(const std::string& path, Bytes& in) {
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return;
  H5Gclose(H5Gcreate2(f, "h5md", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (in.next() % 8 != 0) {
    const hid_t g = H5Gcreate2(f, "parameters", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (const char* name : parameter_names) make_attribute(g, name, in);
    H5Gclose(g);
  }
  for (const char* name : observable_names) {
    const hsize_t rows = in.next() % 5;
    for (const char* part : {"step", "time", "value"}) {
      fuzz::DatasetRecipe recipe = series;
      recipe.rows = rows;
      fuzz::make_dataset(f, std::string("observables/") + name + "/" + part, in, recipe);
    }
  }
  H5Fclose(f);
}

// The damage mode's valid file: every parameter a variable-length string (as mfsim writes its
// text parameters) and two observables of three rows.
std::vector<std::uint8_t> valid_file(const std::string& path) {
  std::vector<std::uint8_t> recipe = {0, 1};
  for (std::size_t i = 0; i < sizeof parameter_names / sizeof *parameter_names; ++i)
    recipe.insert(recipe.end(), {13, 0, 5, 'a'});  // a variable-length string "aaaaa"
  for (int k = 0; k < 2; ++k) {
    recipe.push_back(3);                            // rows
    recipe.insert(recipe.end(), {41, 0, 1, 2, 3});  // step: int64 [rows]
    recipe.insert(recipe.end(), {9, 0, 7, 8, 9});   // time: double [rows]
    recipe.insert(recipe.end(), {9, 0, 9, 9, 9});   // value: double [rows]
  }
  Bytes in{recipe.data(), recipe.size()};
  in.next();
  write_recipe(path, in);
  std::vector<std::uint8_t> bytes;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    for (int c; (c = std::fgetc(f)) != EOF;) bytes.push_back(std::uint8_t(c));
    std::fclose(f);
  }
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  Kokkos::initialize(*argc, *argv);
  std::atexit([] { Kokkos::finalize(); });
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = "/tmp/mfsim_fuzz_parameters_" + std::to_string(::getpid());
  static const std::vector<std::uint8_t> valid = valid_file(path + "_valid.h5");
  const std::string file = path + ".h5";
  Bytes in{data, size};
  const std::uint8_t mode = in.next() % 3;
  if (mode == 0) {
    write_recipe(file, in);
  } else if (mode == 1) {
    fuzz::write_file(file, data + 1, size - std::min<std::size_t>(size, 1));
  } else {
    std::vector<std::uint8_t> damaged = valid;
    while (!damaged.empty() && in.at + 3 <= in.size) {
      const std::size_t offset = (std::size_t(in.next()) << 8 | in.next()) % damaged.size();
      damaged[offset] = in.next();
    }
    fuzz::write_file(file, damaged.data(), damaged.size());
  }
  std::ostringstream results, notes;
  const mfsim::Console console(results, notes);
  try {
    const mfsim::H5mdReader reader(file);
    for (const char* name : parameter_names) {
      try {
        if (reader.has_parameter(name)) reader.parameter(name);
      } catch (const mfsim::InputError&) {
      }
    }
    for (const auto& name : reader.observables()) {
      try {
        reader.read_observable(name);
      } catch (const mfsim::InputError&) {
      }
    }
    mfsim::print_info(file, console);
  } catch (const mfsim::InputError&) {
  } catch (const std::exception&) {
    if (std::getenv("MFSIM_FUZZ_STRICT")) std::abort();
  }
  return 0;
}
