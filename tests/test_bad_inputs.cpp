// Bad input, end to end with the binary: every bad input file, size, path or
// command line is refused with exit code 2 and one stderr line naming the culprit, creating or
// touching no file; the writer's promises (one writer per file, stop signals, a full disk) hold.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>
#include <thread>

#include "helpers.hpp"
#include "io/hdf5.hpp"  // private (src/io): edits a file in place, through mfsim::internal
#include "mfsim/core/stop_signal.hpp"
#include "mfsim/io/h5md_layout.hpp"
#include "mfsim/io/h5md_reader.hpp"

namespace mfsim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

using test::Result;
using test::slurp;

// `err` without the lines that AddressSanitizer's runtime adds to a failed allocation
// ("==PID==WARNING: AddressSanitizer failed to allocate ..."; the sanitizer build lets malloc
// return NULL, as glibc's does): they are not mfsim's output. Its error reports stay.
std::string without_sanitizer_warnings(const std::string& err) {
  std::istringstream in(err);
  std::string out;
  for (std::string line; std::getline(in, line);)
    if (line.find("==WARNING: AddressSanitizer failed to allocate") == std::string::npos)
      out += line + "\n";
  return out;
}

// Runs the binary in `dir` (its working directory) through the shell; stdout and stderr go to
// files outside `dir`, so that `dir` holds only what mfsim wrote.
Result mfsim(const std::string& dir, const std::string& args, const std::string& prefix = "") {
  const std::string log = dir + ".log";
  const std::string cmd = "cd " + dir + " && " + prefix + std::string(MFSIM_EXECUTABLE) + " " +
                          args + " >" + log + ".out 2>" + log + ".err";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(log + ".out"),
          without_sanitizer_warnings(slurp(log + ".err"))};
}

std::size_t lines(const std::string& text) {
  return std::size_t(std::count(text.begin(), text.end(), '\n'));
}

// Every file under `dir` with its content: "no file created or touched" is equality of two.
std::map<std::string, std::string> contents(const std::string& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    out[e.path().string()] = e.is_regular_file() ? slurp(e.path().string()) : "<dir>";
  return out;
}

const char* tiny_config = R"([model]
width = 32
activation = "tanh"
[data]
dim = 3
n_train = 20
n_test = 10
[flow]
dt = 0.05
steps = 20
[output]
observe_every = 5
snapshot_every = 10
[diagnostics]
kl = ["transport"]
)";

// A scratch directory with run.toml and a valid run's output good.h5 (log-densities included).
std::string prepared(const std::string& name) {
  const std::string dir = test::scratch_dir("bad_" + name);
  std::ofstream(dir + "/run.toml") << tiny_config;
  const Result r = mfsim(dir, "run run.toml -q -o good.h5");
  EXPECT_EQ(r.code, 0) << r.err;
  return dir;
}

// Edits of an HDF5 file with the C API: replace a dataset, spoil one value.
void replace_dataset(const std::string& file, const std::string& name,
                     const std::vector<hsize_t>& dims, const std::vector<double>& values) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  H5Ldelete(f, name.c_str(), H5P_DEFAULT);
  const hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
  const hid_t ds =
      H5Dcreate2(f, name.c_str(), H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  if (!values.empty())
    H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Dclose(ds);
  H5Sclose(space);
  H5Fclose(f);
}

void replace_with_strings(const std::string& file, const std::string& name, hsize_t count) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, name.c_str(), H5P_DEFAULT);
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, 4);
  const hid_t space = H5Screate_simple(1, &count, nullptr);
  const hid_t ds = H5Dcreate2(f, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const std::string text(4 * count, 'x');
  H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, text.data());
  H5Dclose(ds);
  H5Sclose(space);
  H5Tclose(type);
  H5Fclose(f);
}

// A chunked dataset declaring `dims` with nothing written: an absurd size costs no disk.
void replace_with_declared(const std::string& file, const std::string& name,
                           const std::vector<hsize_t>& dims) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  H5Ldelete(f, name.c_str(), H5P_DEFAULT);
  const hid_t space = H5Screate_simple(int(dims.size()), dims.data(), nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  std::vector<hsize_t> chunk(dims.size(), 1);
  H5Pset_chunk(dcpl, int(chunk.size()), chunk.data());
  const hid_t ds =
      H5Dcreate2(f, name.c_str(), H5T_NATIVE_DOUBLE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Fclose(f);
}

void spoil(const std::string& file, const std::string& name, double bad) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t ds = H5Dopen2(f, name.c_str(), H5P_DEFAULT);
  const hid_t space = H5Dget_space(ds);
  std::vector<double> values(std::size_t(H5Sget_simple_extent_npoints(space)));
  H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  values.back() = bad;  // in the last frame, the one a restart reads
  H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
  H5Sclose(space);
  H5Dclose(ds);
  H5Fclose(f);
}

const std::string restart = "--set init.kind=file --set init.path=bad.h5";
const std::string data_file = "--set data.kind=file --set data.path=bad.h5";

// Runs `args` in `dir` and expects a clean refusal: code 2, one line containing `what`, and no
// file created or touched.
void expect_refused(const std::string& dir, const std::string& args, const std::string& what) {
  const auto before = contents(dir);
  const Result r = mfsim(dir, args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.err;
  EXPECT_EQ(lines(r.err), 1u) << args << "\n" << r.err;
  EXPECT_THAT(r.err, HasSubstr(what)) << args;
  EXPECT_EQ(contents(dir), before) << args << ": a file was created or changed";
}

TEST(BadInputs, WrongShapedLogDensityIsRefusedNotReadPastItsEnd) {
  const std::string dir = prepared("logp_shape");
  fs::copy_file(dir + "/good.h5", dir + "/bad.h5");
  // [T][10] for 32 particles: read past its end before (a heap overflow, kl_transport = 4e178).
  replace_dataset(dir + "/bad.h5", "particles/two_layer/log_density/value", {3, 10},
                  std::vector<double>(30, 0.0));
  expect_refused(dir, "run run.toml -q -o out.h5 " + restart,
                 "bad.h5: /particles/two_layer/log_density/value: has shape [3][10], expected "
                 "[T][32]");
}

TEST(BadInputs, WrongShapedPositionsStepsAndTimesAreRefused) {
  const std::string dir = prepared("shapes");
  const std::string file = dir + "/bad.h5";
  const std::string base = "particles/two_layer/position/";
  const std::vector<std::pair<std::string, std::vector<hsize_t>>> cases = {
      {"value", {3, 32}}, {"step", {3, 2}}, {"time", {3, 1}}, {"value", {3, 0, 5}}};
  for (const auto& [name, dims] : cases) {
    fs::copy_file(dir + "/good.h5", file, fs::copy_options::overwrite_existing);
    std::size_t n = 1;
    for (hsize_t d : dims) n *= d;
    replace_dataset(file, base + name, dims, std::vector<double>(n, 1.0));
    expect_refused(dir, "run run.toml -q -o out.h5 " + restart, "/" + base + name);
  }
}

TEST(BadInputs, NonFiniteValuesInInputFilesAreBadInput) {
  const std::string dir = prepared("non_finite");
  const std::string file = dir + "/bad.h5";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"particles/two_layer/position/value", restart},
      {"particles/two_layer/log_density/value", restart},
      {"particles/two_layer/position/time", restart},
      {"data/train/x", data_file},
      {"data/train/y", data_file},
      {"data/test/y", data_file}};
  for (double bad : {NAN, INFINITY, -INFINITY})
    for (const auto& [name, args] : cases) {
      fs::copy_file(dir + "/good.h5", file, fs::copy_options::overwrite_existing);
      spoil(file, name, bad);
      expect_refused(dir, "run run.toml -q -o out.h5 " + args, "/" + name);
    }
}

TEST(BadInputs, DataFileWithoutTrainingRowsIsRefused) {
  const std::string dir = prepared("zero_rows");
  fs::copy_file(dir + "/good.h5", dir + "/bad.h5");
  replace_dataset(dir + "/bad.h5", "data/train/x", {0, 3}, {});
  replace_dataset(dir + "/bad.h5", "data/train/y", {0}, {});
  expect_refused(dir, "run run.toml -q -o out.h5 " + data_file,
                 "/data/train/x: has 0 rows (no training samples)");
}

TEST(BadInputs, WrongTypedDatasetsAndAbsurdSizesNameTheObject) {
  const std::string dir = prepared("types");
  const std::string file = dir + "/bad.h5";
  const auto fresh = [&] {
    fs::copy_file(dir + "/good.h5", file, fs::copy_options::overwrite_existing);
  };
  fresh();
  replace_with_strings(file, "particles/two_layer/position/time", 3);
  expect_refused(dir, "run run.toml -q -o out.h5 " + restart,
                 "/particles/two_layer/position/time: holds strings, expected numbers");
  fresh();
  replace_with_strings(file, "data/train/y", 20);
  expect_refused(dir, "run run.toml -q -o out.h5 " + data_file,
                 "/data/train/y: holds strings, expected numbers");
  // A numeric attribute holding text: std::invalid_argument from stod (exit 1) before.
  fresh();
  {
    h5::Handle f = h5::open_file(file, true);
    h5::write_attribute(h5::open_group(f.get(), "parameters").get(), "ntk_lambda0",
                        std::string("abc"));
  }
  expect_refused(dir, "info bad.h5", "/parameters attribute ntk_lambda0 is not a number");
  // Declared sizes no machine holds: std::bad_alloc (exit 1) before.
  fresh();
  replace_with_declared(file, "data/train/x", {hsize_t(1) << 40, 3});
  replace_with_declared(file, "data/train/y", {hsize_t(1) << 40});
  expect_refused(dir, "run run.toml -q -o out.h5 " + data_file,
                 "/data/train/x: declares 3298534883328 values");
}

TEST(BadInputs, ResolvedConfigStatesTheDataFileSizes) {
  const std::string dir = prepared("data_dims");
  // data.dim and the counts disagree with good.h5 (d = 3, 20 and 10 samples): the file decides,
  // and the stored config says so.
  const Result r = mfsim(dir,
                         "run run.toml -q -o out.h5 --set data.kind=file --set data.path=good.h5 "
                         "--set data.dim=7 --set data.n_train=5 --set data.n_test=1");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string resolved = H5mdReader(dir + "/out.h5").parameter("config_resolved");
  EXPECT_THAT(resolved, HasSubstr("dim = 3"));
  EXPECT_THAT(resolved, HasSubstr("n_train = 20"));
  EXPECT_THAT(resolved, HasSubstr("n_test = 10"));
}

TEST(BadInputs, SizesNoMachineHoldsAreRefusedUpFront) {
  const std::string dir = prepared("sizes");
  expect_refused(dir, "run run.toml -q -o out.h5 --set model.width=9223372036854775807",
                 "model.width: the run would need at least");
  expect_refused(dir, "run run.toml -q -o out.h5 --set data.n_train=9223372036854775807",
                 "data.n_train: the run would need at least");
  expect_refused(dir,
                 "run run.toml -q -o out.h5 --set model.kind=resnet --set model.depth=1000 "
                 "--set model.width=4611686018427387904",
                 "model.width: the run would need at least");
}

// Every size the config accepts is counted, and a refusal with --force leaves the existing output
// byte for byte (expect_refused compares every file of the directory).
TEST(BadInputs, EverySizeIsCheckedBeforeAnExistingOutputIsTouched) {
  const std::string dir = prepared("sizes_force");
  const std::string force = "run run.toml -q -o good.h5 --force ";
  expect_refused(dir, force + "--set flow.batch_size=1000000000000000 --set flow.online=true",
                 "flow.batch_size: the run would need at least");
  // Model B's layer states, (L + 1)·n·d per evaluation, with few particles.
  expect_refused(dir,
                 force +
                     "--set model.kind=resnet --set model.depth=1048576 --set model.width=1 "
                     "--set model.head_width=1 --set data.n_train=100000",
                 "model.depth: the run would need at least");
  // The Gram matrix of n_train = 10^7 samples, allowed by gram_max_samples.
  expect_refused(dir,
                 force + "--set diagnostics.gram_max_samples=100000000 --set data.n_train=10000000",
                 "diagnostics.gram_max_samples: the run would need at least");
  expect_refused(dir,
                 force +
                     "--set diagnostics.gibbs_samples=1000000000000000 --set "
                     "flow.temperature=0.1 --set flow.weight_decay=0.1 --set data.dim=1 "
                     "--set diagnostics.kl=[]",
                 "diagnostics.gibbs_samples: the run would need at least");
  // Model A's activation cache: n × m reals when flow.activation_cache_bytes has room for them
  // and the inputs are wide enough for the cache to be used.
  expect_refused(dir,
                 force +
                     "--set flow.activation_cache_bytes=9000000000000000000 "
                     "--set model.width=100000000 --set data.n_train=10000000 --set data.dim=192",
                 "flow.activation_cache_bytes: the run would need at least");
  // Model B's: 2L × n × M reals (π and q·u of every block pair), from d = 64 inputs.
  expect_refused(dir,
                 force +
                     "--set flow.activation_cache_bytes=9000000000000000000 "
                     "--set model.kind=resnet --set model.depth=16 --set model.width=100000000 "
                     "--set model.head_width=1 --set data.n_train=1000000 --set data.dim=64",
                 "flow.activation_cache_bytes: the run would need at least");
  // Narrower inputs recompute: at d = 16 the particles are the largest array, not the cache's
  // n × m (which would be 10⁷ times larger).
  expect_refused(dir,
                 force +
                     "--set flow.activation_cache_bytes=9000000000000000000 "
                     "--set model.width=10000000000 --set data.n_train=10000000 --set data.dim=16",
                 "model.width: the run would need at least");
  expect_refused(dir, force + "--set data.teacher_width=16777216 --set data.dim=1048576",
                 "data.teacher_width: the run would need at least");
  expect_refused(dir, force + "--set flow.integrator=rk4 --set model.width=4611686018427387904",
                 "model.width: the run would need at least");
}

// The sizes of a data file are known once it is read, and counted then, before the arrays they
// size are allocated and before the output is touched: model B's layer states over the file's
// samples, and the Gram matrix of n·c rows, (n·c)² with its copies and its eigensolver's (here
// 4000 samples of 1000 classes: 4·10⁶ rows, some 640 TB, where n² alone would fit).
TEST(BadInputs, SizesOfADataFileAreCountedOnceItIsRead) {
  const std::string dir = prepared("allocation");
  const Result data = mfsim(dir,
                            "run run.toml -q -o big.h5 --set data.n_train=1000000 --set "
                            "data.n_test=0 --set data.dim=1 --set flow.steps=0 --set "
                            "model.width=2 --set diagnostics.kl=[]");
  ASSERT_EQ(data.code, 0) << data.err;
  expect_refused(dir,
                 "run run.toml -q -o good.h5 --force --set data.kind=file --set data.path=big.h5 "
                 "--set model.kind=resnet --set model.depth=1048576 --set model.width=1 --set "
                 "model.head_width=1 --set diagnostics.kl=[] --set diagnostics.gram=false",
                 "model.depth: the run would need at least");
  {
    std::ofstream csv(dir + "/classes.csv");
    csv << "x,y\n";
    for (int i = 0; i < 4000; ++i) csv << i % 7 << "," << i % 1000 << "\n";
  }
  const Result imported = mfsim(dir, "data import classes.csv -o classes.h5");
  ASSERT_EQ(imported.code, 0) << imported.err;
  expect_refused(dir,
                 "run run.toml -q -o good.h5 --force --set data.kind=file --set "
                 "data.path=classes.h5 --set model.loss=cross_entropy --set model.outputs=1000 "
                 "--set model.width=2 --set diagnostics.kl=[] --set "
                 "diagnostics.gram_max_samples=100000000",
                 "diagnostics.gram_max_samples: the run would need at least");
}

// Values in range whose consequences overflow: refused before the output is touched, blaming the
// key that overflows rather than flow.dt.
TEST(BadInputs, ValuesThatOverflowAreRefusedNamingTheirKey) {
  const std::string dir = prepared("overflow");
  const std::string force = "run run.toml -q -o good.h5 --force ";
  expect_refused(dir, force + "--set data.noise=1e308",
                 "data.noise = 1e+308: the synthetic labels are not finite");
  expect_refused(dir, force + "--set flow.dt=1e308 --set model.beta=0",
                 "flow.dt: 1e+308 times 20 steps takes the flow time past the largest double");
  expect_refused(dir, force + "--set model.activation=softplus --set model.softplus_kappa=1e308",
                 "model.softplus_kappa = 1e+308: the initial training loss is not finite");
  expect_refused(dir, force + "--set init.std_a=1e200", "init.std_a = 1e+200: the initial");
  // Without flow.steps, t_end decides the steps: more than 64-bit step numbers hold.
  std::string without_steps = tiny_config;
  without_steps.replace(without_steps.find("steps = 20"), 10, "t_end = 1e300");
  std::ofstream(dir + "/t_end.toml") << without_steps;
  expect_refused(dir, "run t_end.toml -q -o good.h5 --force --set flow.dt=1e-300",
                 "flow.t_end: 1e+300 takes 1e+600 steps");
}

// Replaces the last step of every particle series with `step` (of the given HDF5 type), the
// earlier steps with themselves plus `shift`, and the commit marker with `marker`.
void store_step(const std::string& file, hid_t type, const void* step, long long marker,
                long long shift = 0) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  for (const char* name :
       {"particles/two_layer/position/step", "particles/two_layer/log_density/step"}) {
    const hid_t old = H5Dopen2(f, name, H5P_DEFAULT);
    const hid_t space = H5Dget_space(old);
    hsize_t rows = 0;
    H5Sget_simple_extent_dims(space, &rows, nullptr);
    std::vector<long long> steps(rows);
    H5Dread(old, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps.data());
    for (long long& s : steps) s += shift;
    H5Dclose(old);
    H5Ldelete(f, name, H5P_DEFAULT);
    const hid_t plain = H5Screate_simple(1, &rows, nullptr);
    const hid_t ds = H5Dcreate2(f, name, type, plain, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(plain);
    // Every type given is 8 bytes: converted in place, then the last row replaced.
    H5Tconvert(H5T_NATIVE_LLONG, type, rows, steps.data(), nullptr, H5P_DEFAULT);
    std::memcpy(&steps[rows - 1], step, 8);
    H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, steps.data());
    H5Dclose(ds);
    H5Sclose(space);
  }
  const hid_t attribute = H5Aopen(f, committed_step_attribute, H5P_DEFAULT);
  H5Awrite(attribute, H5T_NATIVE_LLONG, &marker);
  H5Aclose(attribute);
  H5Fclose(f);
}

// A restart's step must leave room for the run's steps (int64): INT64_MAX, a float 1e30 and a
// uint64 2^64 - 1 (both clipped to INT64_MAX when read) are refused.
TEST(BadInputs, RestartStepsThatLeaveNoRoomAreRefused) {
  const std::string dir = prepared("restart_steps");
  const long long max = std::numeric_limits<long long>::max();
  const double huge = 1e30;
  const unsigned long long all_ones = ~0ull;
  fs::copy_file(dir + "/good.h5", dir + "/bad.h5");
  store_step(dir + "/bad.h5", H5T_NATIVE_LLONG, &max, max);
  expect_refused(dir, "run run.toml -q -o out.h5 " + restart,
                 "bad.h5: the frame's step 9223372036854775807 leaves no room");
  // The type ids first: nvcc's front end garbles HDF5's comma-expression macros in a braced list.
  const hid_t as_double = H5T_NATIVE_DOUBLE, as_ulong = H5T_NATIVE_ULLONG;
  for (const auto& [type, step] :
       std::vector<std::pair<hid_t, const void*>>{{as_double, &huge}, {as_ulong, &all_ones}}) {
    fs::remove(dir + "/bad.h5");
    fs::copy_file(dir + "/good.h5", dir + "/bad.h5");
    store_step(dir + "/bad.h5", type, step, max);
    expect_refused(dir, "run run.toml -q -o out.h5 " + restart, "leaves no room");
  }
}

// A negative stored step (steps still increasing, so that every frame counts as committed) is
// refused: the run's steps would start below 0.
TEST(BadInputs, NegativeRestartStepIsRefused) {
  const std::string dir = prepared("restart_negative_step");
  const long long max = std::numeric_limits<long long>::max();
  for (const long long step : {-5ll, std::numeric_limits<long long>::min() + 1000}) {
    fs::remove(dir + "/bad.h5");
    fs::copy_file(dir + "/good.h5", dir + "/bad.h5");
    // Every earlier step lies below the last: from 0, 10, 20 to -2^63 + 0, + 10, then `step`.
    store_step(dir + "/bad.h5", H5T_NATIVE_LLONG, &step, max,
               std::numeric_limits<long long>::min());
    expect_refused(dir, "run run.toml -q -o out.h5 " + restart,
                   "bad.h5: the frame's step is " + std::to_string(step) + " (negative)");
  }
}

// The observables a restart carries on (the path length, the loss bound) are inputs: finite
// values only.
TEST(BadInputs, NonFiniteObservablesOfARestartAreRefused) {
  const std::string dir = prepared("restart_observables");
  for (const char* name : {"w2_path_length", "loss_bound"}) {
    for (double bad : {std::nan(""), HUGE_VAL}) {
      fs::remove(dir + "/bad.h5");
      fs::copy_file(dir + "/good.h5", dir + "/bad.h5");
      spoil(dir + "/bad.h5", std::string("observables/") + name + "/value", bad);
      expect_refused(dir, "run run.toml -q -o out.h5 " + restart,
                     std::string("bad.h5: /observables/") + name + "/value at the restart step");
    }
  }
}

// A transport-KL restart from a file without log-densities starts the estimate again from 0,
// and says so.
TEST(BadInputs, TransportKlRestartWithoutLogDensitiesSaysItStartsAgain) {
  const std::string dir = prepared("restart_no_log_density");
  const Result plain = mfsim(dir, "run run.toml -q -o plain.h5 --set diagnostics.kl=[]");
  ASSERT_EQ(plain.code, 0) << plain.err;
  const Result r =
      mfsim(dir, "run run.toml -q -o re.h5 --set init.kind=file --set init.path=plain.h5");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("kl_transport starts again from 0 (the file has no log-densities)"));
  // 0 up to rounding: log ρ_t and log ρ₀ of the same points, computed apart (ISA clones differ).
  EXPECT_NEAR(H5mdReader(dir + "/re.h5").read_observable("kl_transport").value.front(), 0.0, 1e-12);
  // With them, no such note.
  const Result with =
      mfsim(dir, "run run.toml -q -o re2.h5 --set init.kind=file --set init.path=good.h5");
  EXPECT_EQ(with.code, 0) << with.err;
  EXPECT_THAT(with.err, Not(HasSubstr("starts again")));
  EXPECT_THAT(with.err, Not(HasSubstr("log-densities")));
  EXPECT_GT(H5mdReader(dir + "/re2.h5").read_observable("kl_transport").value.front(), 0.0);
}

// HDF5_USE_FILE_LOCKING=TRUE made HDF5 lock against the writer's own lock; and -o with control
// characters is stored as the name given (escaped in the TOML config), not with quotes.
TEST(BadInputs, OutputNamesAndTheEnvironmentDoNotBreakTheWriter) {
  const std::string dir = prepared("output_names");
  const Result locking = mfsim(dir, "run run.toml -q -o locked.h5", "HDF5_USE_FILE_LOCKING=TRUE ");
  EXPECT_EQ(locking.code, 0) << locking.err;
  EXPECT_EQ(H5mdReader(dir + "/locked.h5").frames("two_layer"), 3);
  const Result control = mfsim(dir, "run run.toml -q -o \"$(printf 'a\001b\tc.h5')\"");
  EXPECT_EQ(control.code, 0) << control.err;
  EXPECT_TRUE(fs::exists(dir + "/a\001b\tc.h5"));
  expect_refused(dir, "run run.toml -q -o \"$(printf 'a\377b.h5')\"", "not valid UTF-8");
}

TEST(BadInputs, MessagesNameTheProblemOnOneShortLine) {
  const std::string dir = prepared("messages");
  expect_refused(dir, "frobnicate run.toml", "unknown command \"frobnicate\"");
  // A 100 kB value is cut, not echoed.
  const Result r =
      mfsim(dir, "run run.toml -q -o out.h5 --set model.activation=" + std::string(100000, 'x'));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(lines(r.err), 1u);
  EXPECT_LT(r.err.size(), 400u);
  EXPECT_THAT(r.err, HasSubstr("(100000 characters)"));
}

TEST(BadInputs, NonFiniteStopReadsWellAndEndsOnAnObservedFiniteState) {
  const std::string dir = prepared("blow_up");
  const Result r = mfsim(dir,
                         "run run.toml -q -o blow.h5 --set flow.dt=1000 --set model.beta=50 "
                         "--set flow.steps=1000 --set output.observe_every=1000 "
                         "--set output.snapshot_every=1000 --set diagnostics.kl=[]");
  ASSERT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(lines(r.err), 1u);
  EXPECT_THAT(r.err, testing::MatchesRegex(
                         "mfsim: error: the training loss became non-finite at step [0-9]+ "
                         "\\(t = [0-9.e+]+\\); the last finite state \\(step [0-9]+\\) is saved; "
                         "try a smaller flow.dt\n"));
  // Times print with 6 significant digits, not hundreds.
  EXPECT_LT(r.err.size(), 200u);
  const H5mdReader reader(dir + "/blow.h5");
  const index_t last = reader.read_frame("two_layer", -1).step;
  const ObservableSeries loss = reader.read_observable("loss");
  ASSERT_FALSE(loss.step.empty());
  EXPECT_EQ(loss.step.back(), last);  // the last finite step has its observables row
  EXPECT_TRUE(std::isfinite(loss.value.back()));
}

TEST(BadInputs, OutputPathsThatMustNotBeWrittenAreRefusedCreatingNothing) {
  const std::string dir = prepared("paths");
  fs::copy_file(dir + "/good.h5", dir + "/own.h5");
  std::ofstream(dir + "/plain") << "a file\n";
  // Through a directory that does not exist yet: refused before it is made.
  expect_refused(dir,
                 "run run.toml -q -o sub/../own.h5 --force --set init.kind=file "
                 "--set init.path=own.h5",
                 "is the init file");
  expect_refused(dir,
                 "run run.toml -q -o new/deeper/../../own.h5 --force --set data.kind=file "
                 "--set data.path=own.h5",
                 "is the data file");
  expect_refused(dir, "run run.toml -q -o run.toml --force", "is the config file");
  expect_refused(dir, "run run.toml -q -o ''", "--output: must not be empty");
  expect_refused(dir, "run . -q -o out.h5", "is a directory, not a config file");
  expect_refused(dir, "run run.toml -q -o plain/out.h5", "is not a directory");
  // A run refused for another reason leaves no directory behind either.
  expect_refused(dir, "run run.toml -q -o newdir/out.h5 --set model.width=0", "model.width");
  expect_refused(dir, "run run.toml -q -o " + std::string(300, 'n') + ".h5",
                 "has a name of 303 characters");
  expect_refused(dir, "run run.toml -q -o good.h5", "exists (use --force");
  expect_refused(dir, "run run.toml -q -o . --force", "is a directory");
}

TEST(BadInputs, ReadOnlyOutputIsRefused) {
  const std::string dir = prepared("read_only");
  fs::create_directory(dir + "/ro");
  // As root, permissions do not stop a write: a read-only mount does.
  if (::geteuid() == 0) {
    if (::mount("tmpfs", (dir + "/ro").c_str(), "tmpfs", MS_RDONLY, "size=1m") != 0)
      GTEST_SKIP() << "running as root and cannot mount a read-only tmpfs";
  } else {
    fs::permissions(dir + "/ro", fs::perms::owner_read | fs::perms::owner_exec);
  }
  expect_refused(dir, "run run.toml -q -o ro/out.h5", "cannot be written");
  expect_refused(dir, "run run.toml -q -o ro/sub/out.h5", "cannot be written");
  if (::geteuid() == 0) ::umount((dir + "/ro").c_str());
}

// A long run in the background of `dir`, writing `output`.
// Without the KL diagnostics: their first unreliable value would add a warning to the one line of
// the stop, at a time that depends on the machine's speed.
pid_t start_long_run(const std::string& dir, const std::string& output) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(99);
    const std::string err = dir + ".bg.err";
    FILE* f = std::freopen(err.c_str(), "w", stderr);
    (void)f;
    ::execl(MFSIM_EXECUTABLE, MFSIM_EXECUTABLE, "run", "run.toml", "-q", "-o", output.c_str(),
            "--set", "flow.steps=100000000", "--set", "output.snapshot_every=1", "--set",
            "diagnostics.gram=false", "--set", "diagnostics.kl=[]", nullptr);
    ::_exit(98);
  }
  // Until the run has written a few frames.
  for (int i = 0; i < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    try {
      if (fs::exists(dir + "/" + output) && H5mdReader(dir + "/" + output).frames("two_layer") > 3)
        break;
    } catch (const std::exception&) {
    }
  }
  return pid;
}

int wait_code(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
}

TEST(BadInputs, SecondWriterOfTheSameOutputIsRefused) {
  const std::string dir = prepared("two_writers");
  const pid_t first = start_long_run(dir, "shared.h5");
  const Result second = mfsim(dir, "run run.toml -q -o shared.h5 --force");
  EXPECT_EQ(second.code, 2) << second.err;
  EXPECT_EQ(lines(second.err), 1u);
  EXPECT_THAT(second.err, HasSubstr("another process is writing this file"));
  ::kill(first, SIGTERM);
  EXPECT_EQ(wait_code(first), 128 + SIGTERM);
  // Only the first run's frames: consecutive steps from 0.
  const H5mdReader reader(dir + "/shared.h5");
  const index_t frames = reader.frames("two_layer");
  ASSERT_GT(frames, 3);
  for (index_t j = 0; j < frames; ++j) EXPECT_EQ(reader.read_frame("two_layer", j).step, j);
}

TEST(BadInputs, StopSignalsCloseACompleteFileAndExitWith128PlusTheSignal) {
  const std::string dir = prepared("signals");
  for (int signal : {SIGTERM, SIGINT, SIGHUP}) {
    const std::string out = "stopped" + std::to_string(signal) + ".h5";
    const pid_t pid = start_long_run(dir, out);
    ::kill(pid, signal);
    EXPECT_EQ(wait_code(pid), 128 + signal);
    const std::string err = slurp(dir + ".bg.err");
    EXPECT_EQ(lines(err), 1u) << err;
    EXPECT_THAT(err, HasSubstr("stopped by SIG"));
    EXPECT_THAT(err, HasSubstr("holds every frame up to step"));
    // Complete: every frame readable, and a restart from the last one runs.
    const H5mdReader reader(dir + "/" + out);
    EXPECT_GT(reader.frames("two_layer"), 3);
    const Result r =
        mfsim(dir, "run run.toml -q -o re" + out +
                       " --set flow.steps=1 --set init.kind=file --set init.path=" + out);
    EXPECT_EQ(r.code, 0) << r.err;
  }
}

// A run killed (SIGKILL) at any moment of its start leaves at the output's name the old file byte
// for byte, or nothing for a new output, or a complete file with at least one committed frame:
// never an empty or half-written file. The kill moments (0 to 320 ms) span the set-up, the
// temporary's skeleton and the first frames; whichever moment each kill falls on, the promise is
// the same.
TEST(BadInputs, KillAtAnyMomentOfTheStartLeavesTheOldFileOrACompleteOne) {
  const std::string dir = prepared("early_kill");
  const std::string old = slurp(dir + "/good.h5");
  for (int delay_us :
       {0, 200, 500, 1000, 2000, 3000, 5000, 8000, 12000, 20000, 40000, 80000, 160000, 320000}) {
    for (const std::string& out :
         std::vector<std::string>{"good.h5", "new" + std::to_string(delay_us) + ".h5"}) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        if (::chdir(dir.c_str()) != 0) ::_exit(99);
        FILE* f = std::freopen("/dev/null", "w", stderr);
        (void)f;
        ::execl(MFSIM_EXECUTABLE, MFSIM_EXECUTABLE, "run", "run.toml", "-q", "--force", "-o",
                out.c_str(), "--set", "model.width=2000", nullptr);
        ::_exit(98);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      const std::string path = dir + "/" + out;
      if (!fs::exists(path)) {
        EXPECT_NE(out, "good.h5") << "the old file is gone (kill after " << delay_us << " us)";
        continue;
      }
      if (out == "good.h5" && slurp(path) == old) continue;
      try {
        const H5mdReader reader(path);
        EXPECT_GE(reader.frames("two_layer"), 1) << out << ", kill after " << delay_us << " us";
        EXPECT_EQ(reader.read_frame("two_layer", 0).step, 0);
      } catch (const std::exception& e) {
        ADD_FAILURE() << out << " cannot be read after a kill at " << delay_us
                      << " us: " << e.what();
      }
      if (out == "good.h5") std::ofstream(path, std::ios::binary | std::ios::trunc) << old;
    }
  }
  // Only the killed runs' hidden temporaries may be left beside the outputs.
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name[0] == '.') EXPECT_THAT(name, HasSubstr(".mfsim-"));
  }
}

TEST(BadInputs, StopSignalsDuringStartUpEndTheProcessAtOnce) {
  const std::string dir = test::scratch_dir("start_up_signals");
  for (int signal : {SIGTERM, SIGINT, SIGHUP}) {
    // Start-up: nothing is on disk yet, so the handler itself ends the process (a blocked open()
    // or a long setup once held the signal back until the run started).
    const std::string err = dir + "/err" + std::to_string(signal);
    const pid_t starting = ::fork();
    if (starting == 0) {
      FILE* f = std::freopen(err.c_str(), "w", stderr);
      (void)f;
      install_stop_signal_handlers();
      ::raise(signal);
      ::_exit(0);  // not reached
    }
    EXPECT_EQ(wait_code(starting), 128 + signal);
    EXPECT_EQ(slurp(err), "mfsim: error: stopped by " + signal_name(signal) +
                              " during start-up (nothing written)\n");
    // Once the run touches files, the signal is recorded and the run stops at its next point.
    const pid_t running = ::fork();
    if (running == 0) {
      install_stop_signal_handlers();
      defer_stop_signals();
      ::raise(signal);
      ::_exit(stop_signal() == signal ? 0 : 1);
    }
    EXPECT_EQ(wait_code(running), 0);
  }
}

// A read that fails while another process holds the writer's lock is retried on the file opened
// afresh, a bounded number of times (a read that raced the writer's flush succeeds on a later
// attempt: tests/python/test_live.py reads a live file 100 times); without the lock it fails at
// once. The lock here is this process's own, on another open file description: flock treats it as
// another holder.
TEST(BadInputs, ReadsOfAFileBeingWrittenAreRetriedABoundedNumberOfTimes) {
  const std::string dir = test::scratch_dir("live_retry");
  const std::string path = dir + "/live.h5";
  std::ofstream(path) << "not yet an HDF5 file\n";
  const auto message = [&] {
    try {
      H5mdReader reader(path);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("opened");
  };
  EXPECT_EQ(message(), path + ": not an HDF5 file");
  const int writer = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(writer, 0);
  ASSERT_EQ(::flock(writer, LOCK_EX), 0);
  EXPECT_EQ(message(),
            path + ": not an HDF5 file (read 20 times while another process writes the file)");
  ::close(writer);
}

// Fills a file system of `size` with a run of large frames; expects exit 1 with one line saying
// `what`, and a file whose every frame is complete and restartable.
void expect_clean_stop_when_full(const std::string& dir, const std::string& out,
                                 const std::string& prefix, const std::string& what) {
  const Result r = mfsim(dir,
                         "run run.toml -q -o " + out +
                             " --set model.width=20000 --set output.snapshot_every=1 "
                             "--set flow.steps=100000 --set diagnostics.gram=false",
                         prefix);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_THAT(r.err, HasSubstr(what));
  EXPECT_THAT(r.err, HasSubstr("the file holds every frame up to step"));
  const H5mdReader reader(dir + "/" + out);
  const index_t frames = reader.frames("two_layer");
  EXPECT_GT(frames, 1);
  for (index_t j = 0; j < frames; ++j) {
    const ParticleFrame f = reader.read_frame("two_layer", j);
    EXPECT_EQ(f.step, j);
    double sum = 0;
    for (std::size_t i = 0; i < f.value.size(); ++i) sum += std::abs(f.value.data()[i]);
    EXPECT_GT(sum, 0) << "frame " << j << " holds zeros";
  }
  const Result again = mfsim(dir,
                             "run run.toml -q -o restarted.h5 --force "
                             "--set model.width=20000 --set flow.steps=1 "
                             "--set diagnostics.gram=false --set init.kind=file "
                             "--set init.path=" +
                                 out);
  EXPECT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(H5mdReader(dir + "/restarted.h5").read_frame("two_layer", 0).step, frames - 1);
}

TEST(BadInputs, FullDiskStopsWithOneLineAndCompleteFrames) {
  const std::string dir = prepared("disk_full");
  const std::string mount_point = dir + "/small";
  fs::create_directory(mount_point);
  if (::mount("tmpfs", mount_point.c_str(), "tmpfs", 0, "size=6m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root); the file-size-limit test covers it";
  expect_clean_stop_when_full(dir, "small/full.h5", "", "no space left on device");
  // Already full at start: no "exists", no 0-byte file.
  {
    std::ofstream fill(mount_point + "/filler", std::ios::binary);
    const std::string block(1 << 16, 'x');
    while (fill.write(block.data(), block.size())) {
    }
  }
  const Result r = mfsim(dir, "run run.toml -q -o small/second.h5");
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_EQ(lines(r.err), 1u) << r.err;
  EXPECT_THAT(r.err, HasSubstr("no space left on device"));
  EXPECT_THAT(r.err, Not(HasSubstr("exists")));
  EXPECT_FALSE(fs::exists(mount_point + "/second.h5"));
  ::umount(mount_point.c_str());
}

// The same promise without root: a file-size limit (ulimit -f, SIGXFSZ ignored) makes the
// writer's reservations fail at a chosen size, as a full disk would.
TEST(BadInputs, WriteFailureAtAFileSizeLimitKeepsCompleteFrames) {
  const std::string dir = prepared("size_limit");
  expect_clean_stop_when_full(dir, "limited.h5", "trap '' XFSZ; ulimit -f 20000; ",
                              "file size limit exceeded");
}

// Frames after the first fall in chunks that the first frame's write allocated: they need no new
// file space, and a file-size limit just above the first frame's file must not stop them (the
// reservation counted a whole new chunk for every row).
TEST(BadInputs, RowsInChunksAlreadyOnDiskNeedNoNewReservation) {
  const std::string dir = prepared("chunk_reservation");
  const Result one = mfsim(dir, "run run.toml -q -o one.h5 --set flow.steps=0");
  ASSERT_EQ(one.code, 0) << one.err;
  // ulimit -f counts 512-byte blocks in the POSIX shell that std::system runs.
  const std::uintmax_t blocks = (fs::file_size(dir + "/one.h5") + (512 << 10)) / 512;
  const Result r = mfsim(dir,
                         "run run.toml -q -o many.h5 --set flow.steps=100 "
                         "--set output.snapshot_every=1",
                         "trap '' XFSZ; ulimit -f " + std::to_string(blocks) + "; ");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(H5mdReader(dir + "/many.h5").frames("two_layer"), 101);
}

// At a file-size limit the message says what the file holds, read back: "holds every frame up to
// step N" where N is the step of its last committed frame, "no frame was written" or "nothing
// written" where there is no file. Limits from below the file's skeleton to many frames; at 600
// KiB (docs/configuration.md: the smallest limit that holds a frame of this config) frames fit.
TEST(BadInputs, FileSizeLimitMessagesNameTheLastCommittedFrame) {
  const std::string dir = prepared("size_limit_messages");
  for (const int kib : {200, 400, 600, 650, 800, 1000, 1500}) {
    fs::remove(dir + "/limited.h5");
    const Result r = mfsim(dir,
                           "run run.toml -q -o limited.h5 --set output.snapshot_every=1 "
                           "--set output.observe_every=1 --set flow.steps=100000",
                           "trap '' XFSZ; ulimit -f " + std::to_string(2 * kib) + "; ");
    EXPECT_EQ(r.code, 1) << kib << " KiB: " << r.err;
    EXPECT_THAT(r.err, HasSubstr("limited.h5: file size limit exceeded; ")) << kib << " KiB";
    const std::string holds = "the file holds every frame up to step ";
    const std::size_t at = r.err.find(holds);
    if (at == std::string::npos) {
      EXPECT_THAT(r.err,
                  ::testing::AnyOf(HasSubstr("no frame was written"), HasSubstr("nothing written")))
          << kib << " KiB";
      EXPECT_FALSE(fs::exists(dir + "/limited.h5")) << kib << " KiB: " << r.err;
      EXPECT_LT(kib, 600) << "no frame at " << kib << " KiB";
      continue;
    }
    const index_t step = std::stoll(r.err.substr(at + holds.size()));
    const H5mdReader reader(dir + "/limited.h5");
    EXPECT_EQ(reader.read_frame("two_layer", -1).step, step) << kib << " KiB: " << r.err;
    if (kib >= 600) EXPECT_GE(reader.frames("two_layer"), 2) << kib << " KiB";
  }
}

}  // namespace
}  // namespace mfsim
