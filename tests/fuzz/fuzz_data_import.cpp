// libFuzzer target: `mfsim data import` on an arbitrary table (io/table.cpp's CSV and .npy
// readers, io/data_import.cpp's checks, split and preprocessing).
// Input byte 0 picks the input and the options:
//  - bit 0 clear: the remaining bytes are a CSV file;
//  - bit 0 set: they are a features .npy file, up to the first occurrence of the separator
//    "\n--labels--\n", and a labels .npy file after it (the features again without one);
//  - bits 1..4: --standardize, --normalize-to-sphere, --binary-labels, a test fraction of 0.25;
//  - bit 5: --label-column 0 (a CSV's first column).
// InputError is the expected refusal; any other exception (the binary would report it with exit
// code 1, not 2) is a finding with MFSIM_FUZZ_STRICT set; a crash or a sanitizer report always is.
#include <sys/stat.h>
#include <unistd.h>

#include <Kokkos_Core.hpp>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "mfsim/core/error.hpp"
#include "mfsim/io/data_import.hpp"

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  Kokkos::initialize(*argc, *argv);
  std::atexit([] { Kokkos::finalize(); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const std::string dir = "/tmp/mfsim_fuzz_import_" + std::to_string(::getpid());
  static const bool made = [] {
    return ::mkdir(dir.c_str(), 0700) == 0 || errno == EEXIST;
  }();
  if (!made) return 0;
  const std::uint8_t mode = data[0];
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  mfsim::ImportOptions o;
  if (mode & 1) {
    static const std::string separator = "\n--labels--\n";
    const auto split = text.find(separator);
    const std::string features = text.substr(0, split);
    const std::string labels =
        split == std::string::npos ? features : text.substr(split + separator.size());
    o.input = dir + "/x.npy";
    o.labels = dir + "/y.npy";
    fuzz::write_file(o.input, reinterpret_cast<const std::uint8_t*>(features.data()),
                     features.size());
    fuzz::write_file(o.labels, reinterpret_cast<const std::uint8_t*>(labels.data()), labels.size());
  } else {
    o.input = dir + "/t.csv";
    fuzz::write_file(o.input, data + 1, size - 1);
    if (mode & 32) o.label_column = "0";
  }
  o.standardize = mode & 2;
  o.normalize_to_sphere = mode & 4;
  o.binary_labels = mode & 8;
  o.test_fraction = mode & 16 ? 0.25 : 0;
  try {
    const mfsim::ImportedData d = mfsim::import_data(o);
    (void)d;
  } catch (const mfsim::InputError&) {
  } catch (const std::exception&) {
    if (std::getenv("MFSIM_FUZZ_STRICT")) std::abort();
  }
  return 0;
}
