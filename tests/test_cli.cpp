// The mfsim binary end to end: exit codes and one-line errors, nothing written on bad input,
// no silent overwrite, bitwise restart, readability after SIGKILL, non-finite stop, `info`.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "helpers.hpp"
#include "io/hdf5.hpp"  // private (src/io): edits a file in place, through mfsim::internal
#include "mfsim/core/console.hpp"
#include "mfsim/flow/progress.hpp"
#include "mfsim/io/h5md_reader.hpp"

namespace mfsim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

using test::Result;
using test::slurp;

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

// The ResNet (model B) counterpart of tiny_config.
const char* tiny_resnet_config = R"([model]
kind = "resnet"
depth = 3
width = 8
head_width = 16
activation = "tanh"
head_activation = "erf"
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

const std::vector<std::string> two_layer_groups = {"two_layer"};
const std::vector<std::string> resnet_groups = {"resnet_blocks", "resnet_head"};

std::vector<double> frame_values(const std::string& path, index_t frame,
                                 const std::string& group = "two_layer") {
  const ParticleFrame f = H5mdReader(path).read_frame(group, frame);
  return std::vector<double>(f.value.data(), f.value.data() + f.value.size());
}

TEST(Cli, RunsAndDescribesTheOutput) {
  const std::string dir = test::scratch_dir("cli_run");
  const std::string config = write_config(dir);
  const Result r =
      mfsim(dir, "run " + config + " -q -o " + dir + "/a.h5 --set model.beta=2 --time-phases");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("wrote " + dir + "/a.h5"));
  // The summary: the flow loop's seconds, then the wall time split into consecutive parts (the
  // set-up, itself in three, the steps with their time per step, observing, writing and the
  // rest), which add up to the wall time.
  std::smatch m;
  const std::string n = "([0-9.eE+-]+)";  // a number
  const std::string summary =
      "mfsim: 20 steps to step 20 .* in " + n + " s; loss .*\nmfsim: wall time " + n +
      " s = set-up " + n + " s \\(data, model and initial state " + n +
      " s, diagnostics incl. NTK lambda0 " + n + " s, start and output " + n + " s\\) \\+ steps " +
      n + " s \\(" + n + " s/step\\) \\+ observing " + n + " s \\+ writing " + n + " s \\+ other " +
      n + " s \\(phases fenced\\)\n";
  ASSERT_TRUE(std::regex_search(r.out, m, std::regex(summary))) << r.out;
  std::vector<double> v;
  for (std::size_t i = 1; i < m.size(); ++i) v.push_back(std::stod(m[i]));
  const double loop = v[0], total = v[1], setup = v[2], steps = v[6], per_step = v[7];
  EXPECT_GT(per_step, 0.0);
  // Printed to 3 or 4 significant digits: allow their rounding.
  const auto near = [](double a, double b) {
    return std::fabs(a - b) <= 0.01 * b + 1e-3;
  };
  EXPECT_TRUE(near(v[3] + v[4] + v[5], setup)) << r.out;
  EXPECT_TRUE(near(setup + steps + v[8] + v[9] + v[10], total)) << r.out;
  EXPECT_TRUE(near(20 * per_step, steps)) << r.out;
  EXPECT_LE(loop, total * 1.001) << r.out;
  const H5mdReader reader(dir + "/a.h5");
  EXPECT_EQ(reader.frames("two_layer"), 3);
  EXPECT_THAT(reader.parameter("config_resolved"), HasSubstr("beta = 2"));
  EXPECT_EQ(reader.read_observable("loss").step, (std::vector<long long>{0, 5, 10, 15, 20}));
  // --print-config prints what the run stores as config_resolved, and runs nothing.
  const Result printed =
      mfsim(dir, "run " + config + " -o " + dir + "/a.h5 --set model.beta=2 --print-config");
  ASSERT_EQ(printed.code, 0) << printed.err;
  EXPECT_EQ(printed.out, reader.parameter("config_resolved"));
  const Result dry = mfsim(dir, "run " + config + " -o " + dir + "/never.h5 --print-config");
  ASSERT_EQ(dry.code, 0) << dry.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/never.h5"));

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

// Runs `config` whole (20 steps) and again from its frame at step 10: the last frames agree bitwise
// in every particle group.
// `extra`: more --set options for both runs; `integrators`: the schemes to check.
void expect_bitwise_restart(const std::string& name, const char* config_text,
                            const std::vector<std::string>& groups, const std::string& extra = "",
                            const std::vector<std::string>& integrators = {"euler", "rk4"}) {
  const std::string dir = test::scratch_dir(name);
  const std::string config = write_config(dir, config_text);
  for (const std::string& integrator : integrators) {
    const std::string whole = dir + "/whole_" + integrator + ".h5";
    const std::string part = dir + "/part_" + integrator + ".h5";
    const Result w = mfsim(
        dir, "run " + config + " -q -o " + whole + " --set flow.integrator=" + integrator + extra);
    ASSERT_EQ(w.code, 0) << w.err;
    const Result r = mfsim(
        dir, "run " + config + " -q -o " + part + extra + " --set flow.integrator=" + integrator +
                 " --set flow.steps=10 --set init.kind=file" + " --set init.path=" + whole +
                 " --set init.frame=1" + " --set data.kind=file --set data.path=" + whole);
    ASSERT_EQ(r.code, 0) << r.err;
    for (const std::string& group : groups) {
      const ParticleFrame restart_last = H5mdReader(part).read_frame(group, -1);
      EXPECT_EQ(restart_last.step, 20);
      EXPECT_EQ(H5mdReader(part).read_frame(group, 0).step, 10);
      EXPECT_EQ(frame_values(part, -1, group), frame_values(whole, -1, group))
          << integrator << " " << group;
      EXPECT_NE(frame_values(part, -1, group), frame_values(whole, 0, group)) << group;
    }
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
  EXPECT_EQ(reader.read_observable("gram_spectrum").shape, (std::vector<std::size_t>{20}));
  EXPECT_EQ(reader.read_observable("gram_matrix").shape, (std::vector<std::size_t>{20, 20}));
  for (double e : observable(whole, "energy_identity_error")) EXPECT_LT(e, test::tol(1e-10, 1e-5));
  EXPECT_GT(observable(whole, "kl_transport").back(), 0.0);
  EXPECT_GT(std::stod(reader.parameter("ntk_lambda0")), 0.0);
  EXPECT_GT(reader.read_frame("two_layer", -1).log_density.extent(0), 0u);
  const Result info = mfsim(dir, "info " + whole);
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("NTK reference: lambda0 = lambda_min(K) = "));
  EXPECT_THAT(info.out, HasSubstr("lambda_min(G)/beta^2 = "));

  // Restart from step 10: transport KL continues from the file's log-densities, the two-sample
  // reference draws are keyed by the seed, and bias_t0 comes from frame 0 of the init file, so
  // every estimate, error bar and flag matches the uninterrupted run.
  const Result restart = mfsim(dir, "run " + config + " -q -o " + part +
                                        " --set flow.steps=10 --set init.kind=file --set "
                                        "init.path=" +
                                        whole +
                                        " --set init.frame=1"
                                        " --set data.kind=file --set data.path=" +
                                        whole);
  ASSERT_EQ(restart.code, 0) << restart.err;
  for (const char* name :
       {"kl_transport", "kl_transport_stderr", "kl_transport_reliable", "kl_knn", "kl_knn_stderr",
        "kl_knn_reliable", "kl_knn_corrected", "kl_knn_corrected_stderr", "kl_knn_two_sample",
        "kl_knn_two_sample_stderr", "kl_knn_two_sample_reliable", "path_norm_l1",
        "gram_lambda_min"}) {
    const auto a = observable(whole, name), b = observable(part, name);
    ASSERT_EQ(b.size(), 3u) << name;
    EXPECT_EQ(b, std::vector<double>(a.begin() + 2, a.end())) << name;
  }
}

// A restart carries on w2_path_length and loss_bound from the init file's values at the restart
// step. Both are trapezoid sums, and the restart reproduces the state bitwise, so the sums split
// exactly at the restart time t_r: ℓ is summed over every step, and the loss bound's ∫ λ_min over
// the Gram observation times, of which t_r is one here (step 10, gram_every 5: cadences count
// absolute steps, and a run always observes its first step). The original run's trapezoid thus has
// a node at t_r, and ∫_{t₀}^t = ∫_{t₀}^{t_r} + ∫_{t_r}^t term by term, whence
// B(t) = L(t₀) e^{−(2/n)∫_{t₀}^t λ_min} = B(t_r) e^{−(2/n)∫_{t_r}^t λ_min}. (Were t_r between two
// Gram observations, the original's trapezoid would straddle it and differ by O(Δ²).) What is left
// is rounding: the order of the sums, the clock t_r + k·dt, exp(a + b) against exp(a)·exp(b).
TEST(Cli, RestartContinuesThePathLengthAndTheLossBound) {
  const std::string dir = test::scratch_dir("cli_restart_observables");
  const std::string config =
      write_config(dir, std::string(tiny_config) + "[diagnostics]\ngram_every = 5\n");
  const std::string whole = dir + "/whole.h5", bare = dir + "/bare.h5";
  ASSERT_EQ(mfsim(dir, "run " + config + " -q -o " + whole).code, 0);
  const auto restart = [&](const std::string& from, const std::string& out) {
    return mfsim(dir, "run " + config + " -q -o " + out +
                          " --set flow.steps=10 --set init.kind=file --set init.path=" + from +
                          " --set init.frame=1 --set data.kind=file --set data.path=" + from);
  };
  const Result part = restart(whole, dir + "/part.h5");
  ASSERT_EQ(part.code, 0) << part.err;
  EXPECT_THAT(part.err, Not(HasSubstr("note")));
  for (const char* name : {"w2_path_length", "loss_bound"}) {
    const ObservableSeries a = H5mdReader(whole).read_observable(name);
    const ObservableSeries b = H5mdReader(dir + "/part.h5").read_observable(name);
    ASSERT_EQ(a.step, (std::vector<long long>{0, 5, 10, 15, 20})) << name;
    ASSERT_EQ(b.step, (std::vector<long long>{10, 15, 20})) << name;
    for (std::size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(b.value[k], a.value[k + 2], 1e-12 * std::fabs(a.value[k + 2]))
          << name << " at step " << b.step[k];
  }
  // Not vacuous: starting again would give ℓ(t_r) = 0 and B(t_r) = L(t_r), both far off.
  const double loss_r = observable(whole, "loss")[2];
  EXPECT_GT(observable(whole, "w2_path_length")[2], 1e-3);
  EXPECT_GT(observable(whole, "loss_bound")[2], loss_r * (1 + 1e-6));

  // An init file without them (diagnostics off) starts them again, with a note on stderr.
  ASSERT_EQ(mfsim(dir, "run " + config + " -q -o " + bare +
                           " --set diagnostics.gram=false --set diagnostics.path_length=false")
                .code,
            0);
  const Result fresh = restart(bare, dir + "/fresh.h5");
  ASSERT_EQ(fresh.code, 0) << fresh.err;
  EXPECT_THAT(fresh.err,
              HasSubstr("mfsim: note: " + bare + " holds no value at the restart step 10"));
  EXPECT_THAT(fresh.err, HasSubstr("loss_bound starts again from the loss"));
  EXPECT_THAT(fresh.err, HasSubstr("w2_path_length starts again from 0"));
  EXPECT_EQ(std::count(fresh.err.begin(), fresh.err.end(), '\n'), 1) << fresh.err;
  EXPECT_EQ(observable(dir + "/fresh.h5", "w2_path_length")[0], 0.0);
  EXPECT_EQ(observable(dir + "/fresh.h5", "loss_bound")[0],
            observable(dir + "/fresh.h5", "loss")[0]);
  EXPECT_EQ(observable(dir + "/fresh.h5", "loss")[0], loss_r);
}

TEST(Cli, ResNetDiagnosticsCarryTheGroupLabels) {
  const std::string dir = test::scratch_dir("cli_resnet_diagnostics");
  const std::string config =
      write_config(dir, std::string(tiny_resnet_config) +
                            "[diagnostics]\nkl = [\"transport\", \"knn\"]\nknn_k = 3\n");
  const std::string out = dir + "/resnet.h5";
  const Result r = mfsim(dir, "run " + config + " -q -o " + out + " --set init.antithetic=false");
  ASSERT_EQ(r.code, 0) << r.err;
  const H5mdReader reader(out);
  for (const char* name :
       {"gram_lambda_min", "gram_lambda_max", "gram_blocks_lambda_min", "gram_head_lambda_min",
        "energy_identity_error", "loss_bound", "kl_blocks_transport", "kl_head_transport",
        "kl_blocks_knn", "kl_head_knn", "kl_blocks_knn_two_sample", "kl_head_knn_two_sample",
        "path_norm_head_l1", "path_norm_head_l2", "rademacher_head_bound", "w2_path_length"})
    EXPECT_EQ(reader.read_observable(name).step, (std::vector<long long>{0, 5, 10, 15, 20}))
        << name;
  for (double e : observable(out, "energy_identity_error")) EXPECT_LT(e, test::tol(1e-10, 1e-5));
  EXPECT_GT(std::stod(reader.parameter("ntk_lambda0")), 0.0);
  // The transport refusal names whichever activation is not C².
  const Result relu =
      mfsim(dir, "run " + config + " -q -o " + dir + "/never.h5 --set model.head_activation=relu");
  EXPECT_EQ(relu.code, 2);
  EXPECT_THAT(relu.err, HasSubstr("model.head_activation = \"relu\""));
  EXPECT_FALSE(fs::exists(dir + "/never.h5"));
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

TEST(Cli, RestartReproducesTheUninterruptedRunBitwise) {
  expect_bitwise_restart("cli_restart", tiny_config, two_layer_groups);
}

TEST(Cli, ResNetRestartReproducesTheUninterruptedRunBitwise) {
  expect_bitwise_restart("cli_resnet_restart", tiny_resnet_config, resnet_groups);
}

// Mean-field Langevin dynamics: the noise is keyed by the step, so a noisy restart reproduces the
// uninterrupted run bitwise too (with the drifts of weight decay and the path-norm penalty).
const char* langevin_options =
    " --set flow.temperature=0.05 --set flow.weight_decay=0.1 --set flow.path_norm_penalty=0.02"
    " --set flow.temperature_schedule=logarithmic";

TEST(Cli, LangevinRestartReproducesTheUninterruptedRunBitwise) {
  expect_bitwise_restart("cli_langevin_restart", tiny_config, two_layer_groups, langevin_options,
                         {"euler"});
}

// 16 particles a layer: the free energy's entropy uses one of each antithetic pair, more than
// knn_k.
TEST(Cli, ResNetLangevinRestartReproducesTheUninterruptedRunBitwise) {
  expect_bitwise_restart("cli_resnet_langevin_restart", tiny_resnet_config, resnet_groups,
                         std::string(langevin_options) + " --set model.width=16", {"euler"});
}

// Minibatch SGD draws each step's samples by the step number: a restart reproduces the
// uninterrupted run bitwise (every integrator: the minibatch is fixed within a step).
TEST(Cli, MinibatchRestartReproducesTheUninterruptedRunBitwise) {
  expect_bitwise_restart("cli_sgd_restart", tiny_config, two_layer_groups,
                         " --set flow.batch_size=7");
  expect_bitwise_restart("cli_resnet_sgd_restart", tiny_resnet_config, resnet_groups,
                         " --set flow.batch_size=7");
}

// Several outputs (model.outputs = 3, on class labels and on one-hot targets), both models:
// restarts of the plain flow, of Langevin dynamics and of minibatch SGD reproduce the
// uninterrupted run bitwise.
TEST(Cli, MultiOutputRestartReproducesTheUninterruptedRunBitwise) {
  const std::string dir = test::scratch_dir("cli_multi_output_data");
  std::ofstream table(dir + "/three.csv");
  table << "a,b,c,y\n";
  for (int i = 0; i < 30; ++i)
    table << std::sin(i) << "," << std::cos(3 * i) << "," << 0.1 * i << "," << i % 3 << "\n";
  table.close();
  for (const std::string& name : {"three", "three_hot"}) {
    const Result r = mfsim(dir, "data import " + dir + "/three.csv -o " + dir + "/" + name +
                                    ".h5 --test-fraction 0.2 --normalize-to-sphere" +
                                    (name == "three" ? "" : " --one-hot"));
    ASSERT_EQ(r.code, 0) << r.err;
  }
  const std::string cross_entropy =
      " --set data.kind=file --set data.path=" + dir +
      "/three.h5 --set model.loss=cross_entropy --set model.outputs=3";
  const std::string square =
      " --set data.kind=file --set data.path=" + dir + "/three_hot.h5 --set model.outputs=3";
  expect_bitwise_restart("cli_multi_output_restart", tiny_config, two_layer_groups, cross_entropy);
  expect_bitwise_restart("cli_multi_output_square_restart", tiny_config, two_layer_groups, square,
                         {"heun"});
  expect_bitwise_restart("cli_multi_output_langevin_restart", tiny_config, two_layer_groups,
                         cross_entropy + langevin_options, {"euler"});
  expect_bitwise_restart("cli_multi_output_sgd_restart", tiny_config, two_layer_groups,
                         square + " --set flow.batch_size=7");
  // Model B's head with a_k ∈ R^3 (16 particles a layer for the free energy's entropy, as above).
  expect_bitwise_restart("cli_multi_output_resnet_restart", tiny_resnet_config, resnet_groups,
                         cross_entropy);
  expect_bitwise_restart(
      "cli_multi_output_resnet_langevin_restart", tiny_resnet_config, resnet_groups,
      square + langevin_options + " --set model.width=16 --set flow.batch_size=7", {"euler"});
}

// A run with the activation cache (flow.activation_cache_bytes, on by default at these sizes)
// against one recomputing the activations (0), for each set of options: every frame of every group
// (particles and log-densities) and every observable agree to 1e−12 relative, per series.
void expect_cache_agrees(const std::string& dir, const std::string& text,
                         const std::vector<std::string>& groups,
                         const std::vector<std::string>& option_sets) {
  const std::string config = write_config(dir, text);
  const double tol = test::tol(1e-12, 1e-5);
  const auto close = [tol](const std::vector<double>& a, const std::vector<double>& b) {
    return test::max_abs_diff(a, b) <= tol * test::max_abs(b);
  };
  for (const std::string& options : option_sets) {
    const Result cached = mfsim(dir, "run " + config + " -q -f -o " + dir + "/cached.h5" + options);
    ASSERT_EQ(cached.code, 0) << cached.err;
    const Result recomputed = mfsim(dir, "run " + config + " -q -f -o " + dir + "/recomputed.h5" +
                                             options + " --set flow.activation_cache_bytes=0");
    ASSERT_EQ(recomputed.code, 0) << recomputed.err;
    const H5mdReader a(dir + "/cached.h5"), b(dir + "/recomputed.h5");
    for (const std::string& group : groups)
      for (index_t frame = 0; frame < b.frames(group); ++frame) {
        const ParticleFrame fa = a.read_frame(group, frame), fb = b.read_frame(group, frame);
        const auto values = [](const auto& v) {
          return std::vector<double>(v.data(), v.data() + v.size());
        };
        EXPECT_TRUE(close(values(fa.value), values(fb.value))) << options << " " << group << frame;
        EXPECT_TRUE(close(values(fa.log_density), values(fb.log_density)))
            << options << " " << group << frame;
      }
    ASSERT_EQ(a.observables(), b.observables()) << options;
    EXPECT_GE(b.observables().size(), 5u) << options;
    // A dense eigensolver's eigenvalues carry errors of rounding × the largest one: the Gram
    // matrices' smallest eigenvalues are compared on the scale of the largest.
    const std::vector<std::string> names = b.observables();
    const bool gram = std::count(names.begin(), names.end(), "gram_lambda_max") > 0;
    const double gram_scale =
        gram ? test::max_abs(observable(dir + "/recomputed.h5", "gram_lambda_max")) : 0.0;
    for (const std::string& name : names) {
      const auto va = observable(dir + "/cached.h5", name),
                 vb = observable(dir + "/recomputed.h5", name);
      // The energy identity's error is itself a difference at rounding level: absolute.
      if (name == "energy_identity_error")
        EXPECT_LE(test::max_abs_diff(va, vb), tol) << options;
      else if (name.rfind("gram_", 0) == 0)
        EXPECT_LE(test::max_abs_diff(va, vb), tol * gram_scale) << options << " " << name;
      else
        EXPECT_TRUE(close(va, vb)) << options << " " << name;
    }
  }
}

// Model A's cache, with d = 192 inputs (the fewest that use it), across integrators,
// activations, bias, losses, Langevin dynamics and minibatches.
TEST(Cli, ActivationCacheAgreesWithRecomputing) {
  std::string text = std::string(tiny_config) + "[diagnostics]\nkl = [\"transport\"]\n";
  text.replace(text.find("dim = 3"), 7, "dim = 192");
  expect_cache_agrees(
      test::scratch_dir("cli_activation_cache"), text, two_layer_groups,
      {std::string(" --set flow.integrator=euler"), std::string(" --set flow.integrator=heun"),
       std::string(" --set flow.integrator=rk4 --set model.activation=softplus"),
       std::string(" --set model.activation=gelu --set model.bias=false --set flow.batch_size=7"),
       std::string(" --set model.activation=relu --set model.loss=logistic "
                   "--set data.kind=random_labels --set diagnostics.kl=[]"),
       std::string(" --set model.activation=erf --set diagnostics.kl=[]") + langevin_options});
}

// Model B's cache, with d = 64 inputs (the fewest that use it), with the Gram diagnostics, across
// integrators, block activations, c = 3 outputs (cross-entropy on class labels), Langevin dynamics
// and minibatches.
TEST(Cli, ResNetActivationCacheAgreesWithRecomputing) {
  const std::string dir = test::scratch_dir("cli_resnet_activation_cache");
  // 40 samples of 64 features in 3 classes, for c = 3 outputs under cross-entropy.
  std::ofstream table(dir + "/classes.csv");
  for (int c = 0; c < 64; ++c) table << "x" << c << ",";
  table << "y\n";
  for (int i = 0; i < 40; ++i) {
    // Frequencies that differ per feature: samples in general position (a Gram matrix of full
    // rank), unlike sin(a·i + b·c), whose rows span two dimensions.
    for (int c = 0; c < 64; ++c) table << std::sin(0.37 * (i + 1) * (c + 1) + c) << ",";
    table << i % 3 << "\n";
  }
  table.close();
  const Result imported = mfsim(dir, "data import " + dir + "/classes.csv -o " + dir +
                                         "/classes.h5 --test-fraction 0.2 --normalize-to-sphere");
  ASSERT_EQ(imported.code, 0) << imported.err;
  std::string text =
      std::string(tiny_resnet_config) + "[diagnostics]\nkl = [\"transport\"]\ngram = true\n";
  text.replace(text.find("dim = 3"), 7, "dim = 64");
  expect_cache_agrees(
      dir, text, resnet_groups,
      {std::string(" --set flow.integrator=euler"),
       std::string(" --set flow.integrator=rk4 --set model.activation=softplus"),
       std::string(" --set model.activation=gelu --set flow.batch_size=7"),
       " --set data.kind=file --set data.path=" + dir +
           "/classes.h5 --set model.loss=cross_entropy --set model.outputs=3 "
           "--set diagnostics.kl=[]",
       std::string(" --set model.activation=erf --set diagnostics.kl=[] --set model.width=16") +
           langevin_options});
}

// The regularised run writes its objective's terms, which add up to the free energy, and a
// temperature with a non-Euler integrator is refused before anything is written.
TEST(Cli, LangevinRunWritesTheFreeEnergy) {
  const std::string dir = test::scratch_dir("cli_langevin");
  const std::string config = write_config(dir);
  const std::string out = dir + "/noisy.h5";
  const Result r = mfsim(dir, "run " + config + " -q -o " + out + langevin_options +
                                  " --set diagnostics.knn_k=3 --set data.dim=1");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<double> f = observable(out, "free_energy"), loss = observable(out, "loss");
  const std::vector<double> decay = observable(out, "weight_decay_term"),
                            penalty = observable(out, "path_norm_penalty_term"),
                            entropy = observable(out, "entropy_term"),
                            h = observable(out, "entropy_knn"),
                            lambda = observable(out, "temperature");
  ASSERT_EQ(f.size(), loss.size());
  for (std::size_t i = 0; i < f.size(); ++i) {
    EXPECT_DOUBLE_EQ(f[i], loss[i] + decay[i] + penalty[i] + entropy[i]) << i;
    EXPECT_DOUBLE_EQ(entropy[i], -lambda[i] * h[i]) << i;
  }
  EXPECT_EQ(observable(out, "gibbs_gap").size(), f.size());  // d = 1: D = 3
  // (A12) and the W₂ path length hold for the plain gradient flow only: not written here.
  const auto names = H5mdReader(out).observables();
  EXPECT_EQ(std::count(names.begin(), names.end(), "loss_bound"), 0);
  EXPECT_EQ(std::count(names.begin(), names.end(), "w2_path_length"), 0);
  EXPECT_EQ(std::count(names.begin(), names.end(), "gram_lambda_min"), 1);
  const Result refused = mfsim(dir, "run " + config + " -q -o " + dir + "/never.h5" +
                                        langevin_options + " --set flow.integrator=heun");
  EXPECT_EQ(refused.code, 2);
  EXPECT_THAT(refused.err, HasSubstr("flow.integrator"));
  EXPECT_FALSE(fs::exists(dir + "/never.h5"));
}

// Kills a run of `config` with SIGKILL once a few frames are on disk: the file still opens, every
// complete frame of every group is finite, and h5py reads it.
void expect_readable_after_kill(const std::string& name, const char* config_text,
                                const std::vector<std::string>& groups) {
  const std::string dir = test::scratch_dir(name);
  const std::string config = write_config(dir, config_text);
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
      frames = H5mdReader(out).frames(groups.back());
    } catch (const std::exception&) {
    }
  }
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  ASSERT_GE(frames, 5);

  // Every frame on disk has its observation rows (observed and snapshotted at every step): the
  // frame and its rows were committed together.
  const H5mdReader r(out);
  const std::vector<long long> loss_steps = r.read_observable("loss").step;
  EXPECT_GE(loss_steps.size(), std::size_t(frames));
  for (const std::string& group : groups) {
    const index_t complete = r.frames(group);
    EXPECT_GE(complete, frames) << group;
    for (index_t j = 0; j < complete; ++j) {
      const index_t step = r.read_frame(group, j).step;
      ASSERT_TRUE(std::binary_search(loss_steps.begin(), loss_steps.end(), step))
          << group << " frame " << j << " (step " << step << ") has no loss row; the loss has "
          << loss_steps.size() << " rows";
      for (double v : frame_values(out, j, group)) ASSERT_TRUE(std::isfinite(v));
    }
  }

  // h5py (what users analyse with) opens it too.
  if (fs::exists("/usr/bin/python3")) {
    const std::string cmd =
        "/usr/bin/python3 -c \"import sys,h5py; f=h5py.File(sys.argv[1],'r');"
        " print(f['particles/" +
        groups.back() + "/position/value'].shape[0])\" " + out + " >" + dir + "/py.out 2>&1";
    if (std::system("/usr/bin/python3 -c 'import h5py' 2>/dev/null") == 0) {
      EXPECT_EQ(std::system(cmd.c_str()), 0) << slurp(dir + "/py.out");
    }
  }
}

TEST(Cli, KilledRunLeavesAReadableFile) {
  expect_readable_after_kill("cli_kill", tiny_config, two_layer_groups);
}

TEST(Cli, KilledResNetRunLeavesAReadableFile) {
  expect_readable_after_kill("cli_resnet_kill", tiny_resnet_config, resnet_groups);
}

TEST(Cli, ResNetRunsAndDescribesTheOutput) {
  const std::string dir = test::scratch_dir("cli_resnet_run");
  const std::string config = write_config(dir, tiny_resnet_config);
  const Result r = mfsim(dir, "run " + config + " -q -o " + dir + "/a.h5");
  ASSERT_EQ(r.code, 0) << r.err;
  const H5mdReader reader(dir + "/a.h5");
  EXPECT_EQ(reader.particle_groups(), resnet_groups);
  EXPECT_EQ(reader.frames("resnet_blocks"), 3);
  EXPECT_EQ(reader.frames("resnet_head"), 3);
  EXPECT_EQ(reader.parameter("model"), "resnet");
  EXPECT_DOUBLE_EQ(std::stod(reader.parameter("raw_learning_rate_blocks")), 24 * 0.05);
  EXPECT_DOUBLE_EQ(std::stod(reader.parameter("raw_learning_rate_head")), 16 * 0.05);
  const ParticleFrame blocks = reader.read_frame("resnet_blocks", 0);
  EXPECT_EQ(blocks.value.extent(0), 24u);
  EXPECT_EQ(blocks.columns,
            (std::vector<std::string>{"u_1", "u_2", "u_3", "w_1", "w_2", "w_3", "b"}));
  const auto loss = reader.read_observable("loss").value;
  EXPECT_LT(loss.back(), loss.front());

  const Result info = mfsim(dir, "info " + dir + "/a.h5");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("model: resnet"));
  EXPECT_THAT(info.out, HasSubstr("particles/resnet_blocks: 24 particles x 7 coordinates"));
  EXPECT_THAT(info.out, HasSubstr("particles/resnet_head: 16 particles x 4 coordinates"));

  // Bad ResNet input: one line naming the key, nothing written.
  const Result bad = mfsim(dir, "run " + config + " -o " + dir + "/never.h5 --set model.depth=0");
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("model.depth"));
  EXPECT_FALSE(fs::exists(dir + "/never.h5"));
  // A two-layer file cannot start a ResNet.
  ASSERT_EQ(mfsim(dir, "run " + write_config(dir) + " -q -o " + dir + "/two.h5").code, 0);
  const Result wrong =
      mfsim(dir, "run " + write_config(dir, tiny_resnet_config) + " -o " + dir +
                     "/never.h5 --set init.kind=file --set init.path=" + dir + "/two.h5");
  EXPECT_EQ(wrong.code, 2);
  EXPECT_THAT(wrong.err, HasSubstr("init.path"));
  EXPECT_THAT(wrong.err, HasSubstr("/particles/resnet_blocks"));
  EXPECT_FALSE(fs::exists(dir + "/never.h5"));
}

// A run killed between writing its blocks and its head leaves the head one frame behind; a
// restart from the last frame takes the last frame that both groups have.
TEST(Cli, ResNetRestartUsesTheLastFrameOfEveryGroup) {
  const std::string dir = test::scratch_dir("cli_resnet_behind");
  const std::string config = write_config(dir, tiny_resnet_config);
  const std::string killed = dir + "/killed.h5";
  ASSERT_EQ(mfsim(dir, "run " + config + " -q -o " + killed).code, 0);  // frames at 0, 10, 20
  {
    h5::Handle file = h5::open_file(killed, true);
    h5::Handle step = h5::open_dataset(file.get(), "particles/resnet_head/position/step");
    const hsize_t rows[1] = {2};
    ASSERT_GE(H5Dset_extent(step.get(), rows), 0);
  }
  ASSERT_EQ(H5mdReader(killed).frames("resnet_head"), 2);
  const Result r = mfsim(dir, "run " + config + " -q -o " + dir +
                                  "/restart.h5 --set flow.steps=0 --set init.kind=file "
                                  "--set init.path=" +
                                  killed);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const std::string& group : resnet_groups) {
    EXPECT_EQ(H5mdReader(dir + "/restart.h5").read_frame(group, 0).step, 10) << group;
    EXPECT_EQ(frame_values(dir + "/restart.h5", 0, group), frame_values(killed, 1, group));
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

// The message channel: results on one stream, everything else on the other, each message whole
// lines written at once; a console for rank 0 is silent on the other ranks.
TEST(Console, ResultsAndNotesLandOnTheirStreamsALineEach) {
  std::ostringstream results, notes;
  const Console console(results, notes);
  console.result("mfsim: wrote a.h5 (2 snapshots, 5 observation rows)");
  console.note("mfsim: note: a.h5 holds no value at the restart step 10: w2_path_length");
  console.result("first line\nsecond line");
  console.result_text("[model]\nwidth = 32\n");
  EXPECT_EQ(results.str(),
            "mfsim: wrote a.h5 (2 snapshots, 5 observation rows)\nfirst line\nsecond line\n"
            "[model]\nwidth = 32\n");
  EXPECT_EQ(notes.str(),
            "mfsim: note: a.h5 holds no value at the restart step 10: w2_path_length\n");
  EXPECT_EQ(console.results_stream(), &results);

  std::ostringstream other_results, other_notes;
  const Console other = Console(other_results, other_notes).on_root(test::FakeShardComm(1, 2));
  other.result("mfsim: wrote a.h5");
  other.note("mfsim: error: x");
  other.rewrite_note("step 1", true);
  EXPECT_EQ(other_results.str(), "");
  EXPECT_EQ(other_notes.str(), "");
  EXPECT_EQ(other.results_stream(), nullptr);
  std::ostringstream root_notes;
  Console(results, root_notes).on_root(test::FakeShardComm(0, 2)).note("mfsim: error: x");
  EXPECT_EQ(root_notes.str(), "mfsim: error: x\n");
}

// Progress through a console: whole "mfsim: " lines into a log; on a terminal one line that
// rewrites itself and ends with the last update.
TEST(Console, ProgressIsALogLineOrARewrittenTerminalLine) {
  std::ostringstream results, log;
  StderrProgress(10, 0, 0, Console(results, log)).update(10, 10, 0.5, 0.25, true);
  EXPECT_THAT(log.str(), ::testing::MatchesRegex("mfsim: step 10  t=0.5  loss=0.25  .* steps/s  "
                                                 "ETA 0s\n"));
  std::ostringstream terminal;
  const Console on_terminal(results, terminal, true);
  on_terminal.rewrite_note("step 5", false);
  StderrProgress(10, 0, 0, on_terminal).update(10, 10, 0.5, 0.25, true);
  EXPECT_THAT(terminal.str(), ::testing::MatchesRegex("\r\033\\[Kstep 5\r\033\\[Kstep 10  t=0.5  "
                                                      "loss=0.25  .* steps/s  ETA 0s\n"));
  EXPECT_EQ(results.str(), "");
}

}  // namespace
}  // namespace mfsim
