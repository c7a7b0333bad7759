// H5MD round trip: what the writer writes, the reader reads back exactly; H5MD structure;
// partly written frames and uncommitted rows are ignored; non-H5MD files are refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "helpers.hpp"
#include "io/hdf5.hpp"  // private (src/io): the files' raw layout, through mfsim::internal
#include "mfsim/core/error.hpp"
#include "mfsim/io/h5md_layout.hpp"
#include "mfsim/io/h5md_reader.hpp"
#include "mfsim/io/h5md_writer.hpp"
#include "mfsim/models/two_layer.hpp"

namespace mfsim {
namespace {

struct Fixture {
  Dataset data = make_synthetic_dataset(test::small_data(3, 7, 4));
  TwoLayerSpec spec;
  std::unique_ptr<TwoLayerModel> model;
  ParticleState state;
  Fixture() {
    spec.width = 10;
    model = std::make_unique<TwoLayerModel>(spec, data);
    state = allocate_state(model->groups(), true, "s");
    model->initialize(state, 9, false);
    set_initial_log_density(state, model->groups());
  }
};

TEST(H5md, RoundTrip) {
  const std::string dir = test::scratch_dir("h5md_round_trip");
  const std::string path = dir + "/run.h5";
  Fixture f;
  std::vector<std::vector<double>> frames;
  {
    H5mdWriter w(path, false, f.model->groups(), true);
    w.write_parameters({{"config", "[model]\nwidth = 10\n"}, {"precision", precision_name}});
    w.write_data(f.data);
    for (int step = 0; step < 3; ++step) {
      w.append_particles(step * 5, step * 0.5, f.state);
      frames.push_back(test::host(f.state.theta[0]));
      axpy(f.state, f.state, real(0.25), f.state);  // change the state between frames
      w.append_observable("loss", step * 5, step * 0.5, {1.0 / (step + 1)});
      w.append_observable("spectrum", step * 5, step * 0.5, {1.0, 2.0, 3.0 + step}, {3});
    }
  }
  H5mdReader r(path);
  EXPECT_EQ(r.particle_groups(), std::vector<std::string>{"two_layer"});
  ASSERT_EQ(r.frames("two_layer"), 3);
  const ParticleFrame last = r.read_frame("two_layer", -1);
  EXPECT_EQ(last.index, 2);
  EXPECT_EQ(last.step, 10);
  EXPECT_DOUBLE_EQ(last.time, 1.0);
  EXPECT_EQ(last.columns, (std::vector<std::string>{"a", "w_1", "w_2", "w_3", "b"}));
  const ParticleFrame first = r.read_frame("two_layer", 0);
  EXPECT_EQ(std::vector<double>(first.value.data(), first.value.data() + first.value.size()),
            frames[0]);
  EXPECT_EQ(first.log_density.extent(0), 10u);
  // A rank's shard: rows [3, 7) of the frame, as in the full read.
  const ParticleFrame shard = r.read_frame("two_layer", 0, 3, 4);
  EXPECT_EQ(shard.particles, 10);
  EXPECT_EQ(shard.first, 3);
  ASSERT_EQ(shard.value.extent(0), 4u);
  ASSERT_EQ(shard.log_density.extent(0), 4u);
  EXPECT_TRUE(shard.has_log_density);
  for (std::size_t i = 0; i < 4; ++i) {
    for (std::size_t j = 0; j < first.value.extent(1); ++j)
      EXPECT_EQ(shard.value(i, j), first.value(3 + i, j));
    EXPECT_EQ(shard.log_density(i), first.log_density(3 + i));
  }
  EXPECT_EQ(r.read_frame("two_layer", 0, 8, 5).value.extent(0), 2u);  // clipped at the end
  // A rank's part of every slice (the 10 rows as 2 slices of 5): rows 1..3 and 6..8, in order.
  const ParticleFrame strided = r.read_frame("two_layer", 0, 1, 3, 2, 5);
  EXPECT_EQ(strided.particles, 10);
  ASSERT_EQ(strided.value.extent(0), 6u);
  ASSERT_EQ(strided.log_density.extent(0), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    const std::size_t row = (i / 3) * 5 + 1 + i % 3;
    for (std::size_t j = 0; j < first.value.extent(1); ++j)
      EXPECT_EQ(strided.value(i, j), first.value(row, j)) << i << "," << j;
    EXPECT_EQ(strided.log_density(i), first.log_density(row));
  }
  // Slices that do not fit the frame read nothing (the caller names the size mismatch).
  EXPECT_EQ(r.read_frame("two_layer", 0, 1, 3, 3, 5).value.extent(0), 0u);
  EXPECT_THROW(r.read_frame("two_layer", 3), InputError);
  EXPECT_THROW(r.read_frame("two_layer", -4), InputError);
  EXPECT_THROW(r.read_frame("resnet_head", 0), InputError);

  const Dataset d = r.read_data();
  EXPECT_EQ(test::host(d.x_train), test::host(f.data.x_train));
  EXPECT_EQ(test::host(d.y_test), test::host(f.data.y_test));

  const ObservableSeries loss = r.read_observable("loss");
  EXPECT_EQ(loss.step, (std::vector<long long>{0, 5, 10}));
  EXPECT_EQ(loss.value, (std::vector<double>{1.0, 0.5, 1.0 / 3}));
  const ObservableSeries spectrum = r.read_observable("spectrum");
  EXPECT_EQ(spectrum.shape, (std::vector<std::size_t>{3}));
  EXPECT_EQ(spectrum.value.size(), 9u);
  EXPECT_EQ(spectrum.value[8], 5.0);
  EXPECT_EQ(r.parameter("config"), "[model]\nwidth = 10\n");
  EXPECT_THROW(r.parameter("nope"), InputError);
}

TEST(H5md, NumericParametersAreNumericAttributes) {
  const std::string path = test::scratch_dir("h5md_numeric_parameters") + "/run.h5";
  Fixture f;
  const std::map<std::string, std::string> given = {
      {"ntk_lambda0", "0.0011134"}, {"ranks", "1"},        {"raw_learning_rate", "1e-05"},
      {"mfsim_version", "0.1.0"},   {"backend", "Serial"}, {"odd", "inf"},
      {"config", "width = 10\n"}};
  {
    H5mdWriter w(path, false, f.model->groups(), false);
    w.write_parameters(given);
  }
  // Raw HDF5 readers see numbers as numbers, the rest as text ...
  h5::Handle file = h5::open_file(path);
  h5::Handle group = h5::open_group(file.get(), "parameters");
  const auto type_class = [&](const char* name) {
    h5::Handle attr(H5Aopen(group.get(), name, H5P_DEFAULT));
    h5::Handle type(H5Aget_type(attr.get()));
    return H5Tget_class(type.get());
  };
  EXPECT_EQ(type_class("ntk_lambda0"), H5T_FLOAT);
  EXPECT_EQ(type_class("raw_learning_rate"), H5T_FLOAT);
  EXPECT_EQ(type_class("ranks"), H5T_INTEGER);
  for (const char* text : {"mfsim_version", "backend", "odd", "config"})
    EXPECT_EQ(type_class(text), H5T_STRING) << text;
  EXPECT_EQ(h5::read_double_array_attribute(group.get(), "ntk_lambda0"),
            std::vector<double>{0.0011134});
  // ... and the reader gives back the text every value was written from.
  H5mdReader r(path);
  for (const auto& [name, value] : given) EXPECT_EQ(r.parameter(name), value) << name;
}

TEST(H5md, FileFollowsH5mdLayout) {
  const std::string path = test::scratch_dir("h5md_layout") + "/run.h5";
  Fixture f;
  { H5mdWriter w(path, false, f.model->groups(), false); }
  h5::Handle file = h5::open_file(path);
  EXPECT_EQ(h5::read_int_array_attribute(h5::open_group(file.get(), "h5md").get(), "version"),
            (std::vector<int>{1, 1}));
  EXPECT_EQ(h5::read_string_attribute(h5::open_group(file.get(), "h5md/creator").get(), "name"),
            "mfsim");
  EXPECT_TRUE(h5::has_attribute(h5::open_group(file.get(), "h5md/author").get(), "name"));
  const h5::Handle box = h5::open_group(file.get(), "particles/two_layer/box");
  EXPECT_EQ(h5::read_int_array_attribute(box.get(), "dimension"), std::vector<int>{5});
  EXPECT_EQ(h5::read_string_array_attribute(box.get(), "boundary").size(), 5u);
  for (const char* ds : {"step", "time", "value"})
    EXPECT_TRUE(h5::exists(file.get(), std::string("particles/two_layer/position/") + ds));
  EXPECT_FALSE(h5::exists(file.get(), "particles/two_layer/log_density"));
}

TEST(H5md, ExistingFileIsNotOverwrittenWithoutPermission) {
  const std::string path = test::scratch_dir("h5md_exists") + "/run.h5";
  Fixture f;
  { H5mdWriter w(path, false, f.model->groups(), false); }
  const auto size = std::filesystem::file_size(path);
  EXPECT_THROW(H5mdWriter(path, false, f.model->groups(), false), InputError);
  EXPECT_EQ(std::filesystem::file_size(path), size);
  EXPECT_NO_THROW(H5mdWriter(path, true, f.model->groups(), false));
}

std::string bytes_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Every name in `dir` (hidden ones included).
std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// An existing output is replaced at the first flush that commits a frame, by a rename of the
// temporary written beside it: until then it is the old file byte for byte, and a writer that
// fails before leaves it so, with no temporary behind.
TEST(H5md, ExistingFileIsReplacedAtTheFirstCommittedFrame) {
  const std::string dir = test::scratch_dir("h5md_replace");
  const std::string path = dir + "/run.h5";
  Fixture f;
  {
    H5mdWriter w(path, false, f.model->groups(), false);
    w.append_particles(7, 0.7, f.state);
    w.flush();
  }
  const std::string old = bytes_of(path);
  try {
    H5mdWriter w(path, true, f.model->groups(), false);
    w.write_parameters({{"config", "[model]\nwidth = 10\n"}});
    w.flush();  // no frame yet: nothing replaced
    EXPECT_EQ(bytes_of(path), old);
    EXPECT_EQ(names_in(dir).size(), 2u);  // the old file and the temporary
    w.append_particles(0, 0.0, f.state);
    EXPECT_EQ(bytes_of(path), old);
    throw std::runtime_error("the run failed before its first commit");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(bytes_of(path), old);
  EXPECT_EQ(names_in(dir), std::vector<std::string>{"run.h5"});
  {
    H5mdWriter w(path, true, f.model->groups(), false);
    w.append_particles(0, 0.0, f.state);
    w.flush();
    EXPECT_EQ(names_in(dir), std::vector<std::string>{"run.h5"});
    EXPECT_EQ(H5mdReader(path).read_frame("two_layer", -1).step, 0);  // the new file, readable
    w.append_particles(1, 0.1, f.state);
  }
  EXPECT_EQ(H5mdReader(path).frames("two_layer"), 2);
}

// Through a symbolic link the file it names is replaced, and the link stays; the permissions of
// the replaced file are kept.
TEST(H5md, ReplacingThroughASymbolicLinkReplacesTheFileItNames) {
  namespace fs = std::filesystem;
  const std::string dir = test::scratch_dir("h5md_symlink");
  Fixture f;
  { H5mdWriter w(dir + "/real.h5", false, f.model->groups(), false); }
  fs::permissions(dir + "/real.h5", fs::perms::owner_read | fs::perms::owner_write);
  fs::create_symlink("real.h5", dir + "/link.h5");
  {
    H5mdWriter w(dir + "/link.h5", true, f.model->groups(), false);
    w.append_particles(3, 0.3, f.state);
    w.flush();
  }
  EXPECT_TRUE(fs::is_symlink(dir + "/link.h5"));
  EXPECT_EQ(H5mdReader(dir + "/real.h5").read_frame("two_layer", -1).step, 3);
  EXPECT_EQ(fs::status(dir + "/real.h5").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

// Two writers of one path that started before either had published: the first to commit a frame
// publishes; the second is refused then (its file never replaces the first's), whether it may
// overwrite or not.
TEST(H5md, SecondWriterIsRefusedWhenItWouldReplaceTheFirstsFile) {
  const std::string dir = test::scratch_dir("h5md_race");
  const std::string path = dir + "/run.h5";
  Fixture f;
  for (bool overwrite : {false, true}) {
    std::filesystem::remove(path);
    H5mdWriter first(path, false, f.model->groups(), false);
    H5mdWriter second(path, overwrite, f.model->groups(), false);
    first.append_particles(1, 0.1, f.state);
    first.flush();
    second.append_particles(2, 0.2, f.state);
    try {
      second.flush();
      ADD_FAILURE() << "the second writer replaced the first's file";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(overwrite ? "another process is writing this file"
                                                     : "another process created it"),
                std::string::npos)
          << e.what();
    }
    EXPECT_EQ(H5mdReader(path).read_frame("two_layer", -1).step, 1);
  }
}

// A killed run's temporary (unlocked, a minute old) is removed by the next writer of its target;
// a fresh one (a writer that has just created it) and another target's are left alone.
TEST(H5md, AbandonedTemporariesOfTheTargetAreRemoved) {
  namespace fs = std::filesystem;
  const std::string dir = test::scratch_dir("h5md_abandoned");
  Fixture f;
  for (const char* name :
       {".run.h5.mfsim-0a1b2c", ".run.h5.mfsim-3d4e5f", ".other.h5.mfsim-0a1b2c"})
    std::ofstream(dir + "/" + name) << "killed";
  const auto old = fs::file_time_type::clock::now() - std::chrono::minutes(5);
  fs::last_write_time(dir + "/.run.h5.mfsim-0a1b2c", old);
  fs::last_write_time(dir + "/.other.h5.mfsim-0a1b2c", old);
  {
    H5mdWriter w(dir + "/run.h5", false, f.model->groups(), false);
    w.append_particles(0, 0.0, f.state);
  }
  EXPECT_EQ(names_in(dir),
            (std::vector<std::string>{".other.h5.mfsim-0a1b2c", ".run.h5.mfsim-3d4e5f", "run.h5"}));
}

TEST(H5md, PartlyAppendedFrameIsIgnored) {
  const std::string path = test::scratch_dir("h5md_partial") + "/run.h5";
  Fixture f;
  {
    H5mdWriter w(path, false, f.model->groups(), false);
    w.append_particles(0, 0.0, f.state);
    w.append_particles(1, 0.1, f.state);
  }
  {  // A writer interrupted after the value row of a third frame, before its time and step.
    h5::Handle file = h5::open_file(path, true);
    h5::Handle value = h5::open_dataset(file.get(), "particles/two_layer/position/value");
    const hsize_t dims[3] = {3, 10, 5};
    ASSERT_GE(H5Dset_extent(value.get(), dims), 0);
  }
  H5mdReader r(path);
  EXPECT_EQ(r.frames("two_layer"), 2);
  EXPECT_EQ(r.read_frame("two_layer", -1).step, 1);
}

// A run killed between its rows reaching the disk and the marker that commits them: the reader
// counts only the committed rows, so every frame it reports has its observation rows.
TEST(H5md, RowsAfterTheCommitMarkerAreIgnored) {
  const std::string path = test::scratch_dir("h5md_committed") + "/run.h5";
  Fixture f;
  {
    H5mdWriter w(path, false, f.model->groups(), false);
    for (int step = 0; step < 2; ++step) {
      w.append_observable("loss", step, 0.1 * step, {1.0});
      w.append_particles(step, 0.1 * step, f.state);
      w.flush();
    }
    // Step 2: its frame on disk, its loss row not yet (the order of a kill mid-flush).
    w.append_particles(2, 0.2, f.state);
  }
  {
    h5::Handle file = h5::open_file(path, true);
    EXPECT_EQ(h5::read_int64_attribute(file.get(), committed_step_attribute), 2);
    h5::overwrite_attribute(file.get(), committed_step_attribute, 1);  // the kill
  }
  const H5mdReader r(path);
  EXPECT_EQ(r.frames("two_layer"), 2);
  EXPECT_EQ(r.read_frame("two_layer", -1).step, 1);
  EXPECT_EQ(r.read_observable("loss").step, (std::vector<long long>{0, 1}));
}

// A writer closed by an error (here an exception thrown through its scope) leaves the marker at
// its last flush: the rows appended since may be a partial step.
TEST(H5md, WriterClosedByAnErrorCommitsNothingMore) {
  const std::string path = test::scratch_dir("h5md_error_close") + "/run.h5";
  Fixture f;
  try {
    H5mdWriter w(path, false, f.model->groups(), false);
    w.append_particles(0, 0.0, f.state);
    w.flush();
    w.append_particles(1, 0.1, f.state);
    throw std::runtime_error("an observer failed");
  } catch (const std::runtime_error&) {
  }
  const H5mdReader r(path);
  EXPECT_EQ(r.frames("two_layer"), 1);
}

TEST(H5md, RefusesWhatIsNotAnMfsimFile) {
  const std::string dir = test::scratch_dir("h5md_refuse");
  EXPECT_THROW(H5mdReader(dir + "/missing.h5"), InputError);
  std::ofstream(dir + "/text.h5") << "not hdf5\n";
  EXPECT_THROW(H5mdReader(dir + "/text.h5"), InputError);
  { h5::Handle plain = h5::create_file(dir + "/plain.h5", false); }
  try {
    H5mdReader r(dir + "/plain.h5");
    FAIL() << "a plain HDF5 file was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not an H5MD file"), std::string::npos);
  }
}

}  // namespace
}  // namespace mfsim
