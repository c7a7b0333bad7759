// The mfsim binary end to end: exit codes and one-line errors, nothing written on bad input,
// no silent overwrite, bitwise restart, readability after SIGKILL, non-finite stop, `info`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "helpers.hpp"
#include "mfsim/io/h5md_reader.hpp"

namespace mfsim {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

struct Result {
  int code;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Result mfsim(const std::string& dir, const std::string& args) {
  const std::string cmd =
      std::string(MFSIM_EXECUTABLE) + " " + args + " >" + dir + "/stdout 2>" + dir + "/stderr";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(dir + "/stdout"),
          slurp(dir + "/stderr")};
}

const char* tiny_config = R"([model]
width = 32
activation = "tanh"
[data]
dim = 3
n_train = 20
n_test = 10
[init]
antithetic = true
[flow]
dt = 0.05
steps = 20
[output]
observe_every = 5
snapshot_every = 10
)";

std::string write_config(const std::string& dir, const std::string& text = tiny_config) {
  std::ofstream(dir + "/run.toml") << text;
  return dir + "/run.toml";
}

std::vector<double> frame_values(const std::string& path, index_t frame) {
  const ParticleFrame f = H5mdReader(path).read_frame("two_layer", frame);
  return std::vector<double>(f.value.data(), f.value.data() + f.value.size());
}

TEST(Cli, RunsAndDescribesTheOutput) {
  const std::string dir = test::scratch_dir("cli_run");
  const std::string config = write_config(dir);
  const Result r = mfsim(dir, "run " + config + " -q -o " + dir + "/a.h5 --set model.beta=2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("wrote " + dir + "/a.h5"));
  const H5mdReader reader(dir + "/a.h5");
  EXPECT_EQ(reader.frames("two_layer"), 3);
  EXPECT_THAT(reader.parameter("config_resolved"), HasSubstr("beta = 2"));
  EXPECT_EQ(reader.read_observable("loss").step, (std::vector<long long>{0, 5, 10, 15, 20}));

  const Result info = mfsim(dir, "info " + dir + "/a.h5");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("model: two_layer"));
  EXPECT_THAT(info.out, HasSubstr("32 particles x 5 coordinates"));
  EXPECT_THAT(info.out, HasSubstr("test_loss"));
}

TEST(Cli, BadInputExitsWithCodeTwoAndWritesNothing) {
  const std::string dir = test::scratch_dir("cli_bad");
  const std::string config = write_config(dir);
  const std::string out = dir + "/never.h5";
  for (const std::string& args :
       {"run " + config + " --set model.width=0", "run " + config + " --set flow.dt=nan",
        "run " + config + " --set model.nope=1", "run " + dir + "/missing.toml",
        "run " + config + " --set init.kind=file --set init.path=/nonexistent.h5",
        "run " + config + " --bogus-flag", std::string("frobnicate")}) {
    const Result r = mfsim(dir, args + " -o " + out);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_THAT(r.err, HasSubstr("mfsim: error: ")) << args;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(out)) << args;
  }
  const Result key = mfsim(dir, "run " + config + " --set model.width=0 -o " + out);
  EXPECT_THAT(key.err, HasSubstr("model.width"));
  const Result info = mfsim(dir, "info " + config);
  EXPECT_EQ(info.code, 2);
  EXPECT_THAT(info.err, HasSubstr("not an HDF5 file"));
}

TEST(Cli, ExistingOutputIsKeptWithoutForce) {
  const std::string dir = test::scratch_dir("cli_force");
  const std::string config = write_config(dir);
  ASSERT_EQ(mfsim(dir, "run " + config + " -q -o " + dir + "/a.h5").code, 0);
  const std::string before = slurp(dir + "/a.h5");
  const Result again = mfsim(dir, "run " + config + " -q -o " + dir + "/a.h5 --set flow.steps=3");
  EXPECT_EQ(again.code, 2);
  EXPECT_THAT(again.err, HasSubstr("exists (use --force"));
  EXPECT_EQ(slurp(dir + "/a.h5"), before);
  EXPECT_EQ(mfsim(dir, "run " + config + " -q -f -o " + dir + "/a.h5 --set flow.steps=3").code, 0);
  EXPECT_EQ(H5mdReader(dir + "/a.h5").read_frame("two_layer", -1).step, 3);
  // A restart may not overwrite its own input, even with --force.
  const Result self = mfsim(dir, "run " + config + " -q -f -o " + dir +
                                     "/a.h5 --set init.kind=file --set init.path=" + dir + "/a.h5");
  EXPECT_EQ(self.code, 2);
  EXPECT_THAT(self.err, HasSubstr("output.path"));
}

TEST(Cli, RestartReproducesTheUninterruptedRunBitwise) {
  const std::string dir = test::scratch_dir("cli_restart");
  const std::string config = write_config(dir);
  for (const std::string integrator : {"euler", "rk4"}) {
    const std::string whole = dir + "/whole_" + integrator + ".h5";
    const std::string part = dir + "/part_" + integrator + ".h5";
    ASSERT_EQ(
        mfsim(dir, "run " + config + " -q -o " + whole + " --set flow.integrator=" + integrator)
            .code,
        0);
    const Result r =
        mfsim(dir, "run " + config + " -q -o " + part + " --set flow.integrator=" + integrator +
                       " --set flow.steps=10 --set init.kind=file" + " --set init.path=" + whole +
                       " --set init.frame=1" + " --set data.kind=file --set data.path=" + whole);
    ASSERT_EQ(r.code, 0) << r.err;
    const ParticleFrame restart_last = H5mdReader(part).read_frame("two_layer", -1);
    EXPECT_EQ(restart_last.step, 20);
    EXPECT_EQ(H5mdReader(part).read_frame("two_layer", 0).step, 10);
    EXPECT_EQ(frame_values(part, -1), frame_values(whole, -1)) << integrator;
  }
}

std::vector<double> observable(const std::string& path, const std::string& name) {
  return H5mdReader(path).read_observable(name).value;
}

TEST(Cli, DiagnosticsAreWrittenAndSurviveARestart) {
  const std::string dir = test::scratch_dir("cli_diagnostics");
  const std::string config = write_config(
      dir, std::string(tiny_config) +
               "[diagnostics]\nkl = [\"transport\", \"knn\"]\nknn_k = 3\ngram_spectrum = true\n"
               "gram_matrix = true\n");
  const std::string whole = dir + "/whole.h5", part = dir + "/part.h5";
  const Result r = mfsim(dir, "run " + config + " -q -o " + whole);
  ASSERT_EQ(r.code, 0) << r.err;
  const H5mdReader reader(whole);
  for (const char* name :
       {"gram_lambda_min", "gram_lambda_max", "gram_spectrum", "gram_matrix",
        "energy_identity_error", "loss_bound", "kl_transport", "kl_knn", "kl_knn_two_sample",
        "path_norm_l1", "path_norm_l2", "rademacher_bound", "w2_path_length"}) {
    const ObservableSeries s = reader.read_observable(name);
    EXPECT_EQ(s.step, (std::vector<long long>{0, 5, 10, 15, 20})) << name;
  }
  EXPECT_EQ(reader.read_observable("gram_spectrum").shape, (std::vector<hsize_t>{20}));
  EXPECT_EQ(reader.read_observable("gram_matrix").shape, (std::vector<hsize_t>{20, 20}));
  for (double e : observable(whole, "energy_identity_error")) EXPECT_LT(e, 1e-10);
  EXPECT_EQ(observable(whole, "kl_knn_two_sample")[0], 0.0);
  EXPECT_GT(observable(whole, "kl_transport").back(), 0.0);
  EXPECT_GT(std::stod(reader.parameter("ntk_lambda0")), 0.0);
  EXPECT_GT(reader.read_frame("two_layer", -1).log_density.extent(0), 0u);
  const Result info = mfsim(dir, "info " + whole);
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("NTK reference: lambda0 = lambda_min(K) = "));
  EXPECT_THAT(info.out, HasSubstr("lambda_min(G)/beta^2 = "));

  // Restart from step 10: transport KL continues from the file's log-densities, and the
  // two-sample reference is frame 0 of the init file, so both match the uninterrupted run.
  const Result restart = mfsim(dir, "run " + config + " -q -o " + part +
                                        " --set flow.steps=10 --set init.kind=file --set "
                                        "init.path=" +
                                        whole +
                                        " --set init.frame=1"
                                        " --set data.kind=file --set data.path=" +
                                        whole);
  ASSERT_EQ(restart.code, 0) << restart.err;
  for (const char* name :
       {"kl_transport", "kl_knn", "kl_knn_two_sample", "path_norm_l1", "gram_lambda_min"}) {
    const auto a = observable(whole, name), b = observable(part, name);
    ASSERT_EQ(b.size(), 3u) << name;
    EXPECT_EQ(b, std::vector<double>(a.begin() + 2, a.end())) << name;
  }
}

TEST(Cli, TransportKlRefusesRelu) {
  const std::string dir = test::scratch_dir("cli_relu_transport");
  const std::string config =
      write_config(dir, std::string(tiny_config) + "[diagnostics]\nkl = [\"transport\"]\n");
  const Result r =
      mfsim(dir, "run " + config + " -q -o " + dir + "/never.h5 --set model.activation=relu");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("diagnostics.kl"));
  EXPECT_THAT(r.err, HasSubstr("softplus"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/never.h5"));
}

TEST(Cli, KilledRunLeavesAReadableFile) {
  const std::string dir = test::scratch_dir("cli_kill");
  const std::string config = write_config(dir);
  const std::string out = dir + "/killed.h5";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string c = config;
    execl(MFSIM_EXECUTABLE, MFSIM_EXECUTABLE, "run", c.c_str(), "-q", "-o", out.c_str(), "--set",
          "flow.steps=100000000", "--set", "output.snapshot_every=1", "--set",
          "output.observe_every=1", (char*)nullptr);
    _exit(127);
  }
  // Wait until a few frames are on disk, then kill without warning.
  index_t frames = 0;
  for (int i = 0; i < 600 && frames < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    try {
      frames = H5mdReader(out).frames("two_layer");
    } catch (const std::exception&) {
    }
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_GE(frames, 5);

  const H5mdReader r(out);
  const index_t complete = r.frames("two_layer");
  EXPECT_GE(complete, frames);
  for (index_t j = 0; j < complete; ++j)
    for (double v : frame_values(out, j)) ASSERT_TRUE(std::isfinite(v));
  EXPECT_GE(r.read_observable("loss").step.size(), std::size_t(frames));

  // h5py (what users analyse with) opens it too.
  if (fs::exists("/usr/bin/python3")) {
    const std::string cmd =
        "/usr/bin/python3 -c \"import sys,h5py; f=h5py.File(sys.argv[1],'r');"
        " print(f['particles/two_layer/position/value'].shape[0])\" " +
        out + " >" + dir + "/py.out 2>&1";
    if (std::system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") == 0) {
      EXPECT_EQ(std::system(cmd.c_str()), 0) << slurp(dir + "/py.out");
    }
  }
}

TEST(Cli, NonFiniteFlowExitsWithCodeThreeKeepingTheLastGoodFrame) {
  const std::string dir = test::scratch_dir("cli_nonfinite");
  const std::string config = write_config(dir);
  const Result r = mfsim(dir, "run " + config + " -q -o " + dir +
                                  "/blow.h5 --set flow.dt=1000 --set model.beta=50 "
                                  "--set flow.steps=1000 --set init.antithetic=false");
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("non-finite"));
  const H5mdReader reader(dir + "/blow.h5");
  const index_t frames = reader.frames("two_layer");
  ASSERT_GE(frames, 2);
  EXPECT_GT(reader.read_frame("two_layer", -1).step, 0);
  for (double v : frame_values(dir + "/blow.h5", -1)) EXPECT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace mfsim
