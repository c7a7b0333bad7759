// libFuzzer target: reading frames and data from an arbitrary file (io/h5md_reader.cpp and
// app/simulation.cpp's load_state, where a wrong-shaped dataset was once read past its end).
// Input byte 0 picks the mode:
//  - even: a structured file: the bytes describe, for each dataset a restart or a data file
//    reads, whether it exists, its type (float, integer, string), rank, dims and values (NaN and
//    Inf included); written with the HDF5 API, so that the fuzzer explores mfsim's checks and not
//    HDF5's own parser;
//  - odd: the remaining bytes are the file itself.
// Then the file is opened, every group's frames read (whole, and as a model's shard), and the
// data read. InputError is the expected refusal; anything that the binary would not report as
// one line (another exception escaping here is fine: it reaches main's catch) must not crash or
// trip a sanitizer.
#include <hdf5.h>
#include <unistd.h>

#include <Kokkos_Core.hpp>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "mfsim/app/simulation.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/data/synthetic.hpp"
#include "mfsim/io/h5md_reader.hpp"
#include "mfsim/models/two_layer.hpp"

#include "fuzz_dataset.hpp"
#include "fuzz_input.hpp"

namespace {

using fuzz::Bytes;

double value_of(std::uint8_t b) {
  switch (b % 16) {
    case 0:
      return std::numeric_limits<double>::quiet_NaN();
    case 1:
      return std::numeric_limits<double>::infinity();
    case 2:
      return -1e308;
    default:
      return double(int(b) - 128) / 16;
  }
}

// A dataset a restart or a data file reads: sizes mostly the file's row count, values with NaN
// and Inf, not chunked.
const fuzz::DatasetRecipe input_dataset = [] {
  fuzz::DatasetRecipe r;
  r.rows_below = 128;
  r.other_sizes = 10;
  r.most_values = 100000;
  r.real = value_of;
  r.integer = [](std::uint8_t b) {
    return (long long)(b % 4);
  };
  return r;
}();

void write_structured(const std::string& path, Bytes& in) {
  const hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return;
  H5Gclose(H5Gcreate2(f, "h5md", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  const char* names[] = {"particles/two_layer/position/value",
                         "particles/two_layer/position/step",
                         "particles/two_layer/position/time",
                         "particles/two_layer/log_density/value",
                         "particles/two_layer/log_density/step",
                         "particles/two_layer/log_density/time",
                         "data/train/x",
                         "data/train/y",
                         "data/test/x",
                         "data/test/y",
                         "observables/loss/value",
                         "observables/loss/step",
                         "observables/loss/time"};
  for (const char* name : names) {
    fuzz::DatasetRecipe recipe = input_dataset;
    recipe.rows = 1 + in.next() % 8;
    fuzz::make_dataset(f, name, in, recipe);
  }
  H5Fclose(f);
}

// A model of 8 particles in dimension 3: the shapes a restart from the file must match.
struct Target {
  mfsim::Dataset data;
  std::unique_ptr<mfsim::TwoLayerModel> model;
  Target() {
    mfsim::SyntheticDataSpec spec;
    spec.dim = 3;
    spec.n_train = 4;
    spec.n_test = 2;
    data = mfsim::make_synthetic_dataset(spec);
    mfsim::TwoLayerSpec m;
    m.width = 8;
    model = std::make_unique<mfsim::TwoLayerModel>(m, data);
  }
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  Kokkos::initialize(*argc, *argv);
  // Finalised at exit, after the static Target of LLVMFuzzerTestOneInput (constructed later, so
  // destroyed first) has released its Views: Kokkos' Threads backend crashes in its own exit-time
  // destructor when a program exits without finalising.
  std::atexit([] { Kokkos::finalize(); });
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Target target;
  static const std::string path = "/tmp/mfsim_fuzz_reader_" + std::to_string(::getpid()) + ".h5";
  Bytes in{data, size};
  const std::uint8_t mode = in.next();
  if (mode % 2 == 0) {
    write_structured(path, in);
  } else {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return 0;
    if (size > 1) std::fwrite(data + 1, 1, size - 1, f);
    std::fclose(f);
  }
  try {
    const mfsim::H5mdReader reader(path);
    for (const auto& group : reader.particle_groups()) {
      try {
        reader.read_frame(group, -1);
        reader.read_frame(group, 0, 1, 2, 2, 3);  // a shard of two blocks
      } catch (const mfsim::InputError&) {
      }
    }
    try {
      mfsim::ParticleState state = mfsim::allocate_state(target.model->groups(), true, "fuzz");
      mfsim::load_state(reader, "init.path", target.model->groups(), -1, state);
    } catch (const mfsim::InputError&) {
    }
    try {
      reader.read_data();
    } catch (const mfsim::InputError&) {
    }
    for (const auto& name : reader.observables()) {
      try {
        reader.read_observable(name);
      } catch (const mfsim::InputError&) {
      }
    }
  } catch (const mfsim::InputError&) {
  } catch (const std::exception&) {
    // Reported by the binary as one line with exit code 1 (not 2); with MFSIM_FUZZ_STRICT set,
    // a finding too.
    if (std::getenv("MFSIM_FUZZ_STRICT")) std::abort();
  }
  return 0;
}
