// Config parsing: defaults, overrides, and every kind of bad input giving a one-line error that
// names the key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "helpers.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/io/config.hpp"

namespace mfsim {
namespace {

using ::testing::HasSubstr;

std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(text, overrides, "test.toml");
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    return message;
  }
  ADD_FAILURE() << "accepted: " << text;
  return "";
}

TEST(Config, DefaultsAreResolved) {
  const Config c = parse_config("");
  EXPECT_EQ(c.model.kind, "two_layer");
  EXPECT_EQ(c.model.two_layer.width, 1024);
  EXPECT_EQ(c.model.two_layer.activation.kind, ActivationKind::tanh);
  EXPECT_EQ(c.data.synthetic.n_train, 100);
  EXPECT_EQ(c.flow.steps, 1000);
  EXPECT_EQ(c.flow.integrator, IntegratorKind::euler);
  EXPECT_EQ(c.output.path, "run.h5");
  EXPECT_THAT(c.resolved, HasSubstr("width = 1024"));
  EXPECT_THAT(c.resolved, HasSubstr("observe_every = 10"));
  // The resolved text is itself a valid config that resolves to the same thing.
  EXPECT_EQ(parse_config(c.resolved).resolved, c.resolved);
}

TEST(Config, ValuesAndOverrides) {
  const Config c = parse_config(
      "[model]\nactivation = \"softplus\"\nsoftplus_kappa = 4\nwidth = 64\n"
      "[flow]\nintegrator = \"rk4\"\nt_end = 2.5\n",
      {"model.width=128", "model.beta=2", "output.path=out/run.h5", "init.antithetic=true",
       "data.inputs=gaussian"});
  EXPECT_EQ(c.model.two_layer.width, 128);
  EXPECT_DOUBLE_EQ(c.model.two_layer.beta, 2.0);
  EXPECT_EQ(c.model.two_layer.activation.kind, ActivationKind::softplus);
  EXPECT_DOUBLE_EQ(c.model.two_layer.activation.kappa, 4.0);
  EXPECT_EQ(c.output.path, "out/run.h5");
  EXPECT_TRUE(c.init.antithetic);
  EXPECT_EQ(c.data.synthetic.inputs, InputDistribution::gaussian);
  EXPECT_DOUBLE_EQ(c.flow.t_end, 2.5);
  EXPECT_GT(c.flow.steps, 1000000);  // t_end alone decides
  EXPECT_EQ(parse_config("[flow]\nt_end = 1.0\nsteps = 5\n").flow.steps, 5);
}

TEST(Config, ErrorsNameTheKey) {
  EXPECT_THAT(error_of("[model]\nwidht = 5\n"), HasSubstr("model.widht: unknown key"));
  EXPECT_THAT(error_of("[modle]\n"), HasSubstr("modle: unknown section"));
  EXPECT_THAT(error_of("[model]\nwidth = 0\n"), HasSubstr("model.width: must be >= 1 (got 0)"));
  EXPECT_THAT(error_of("[model]\nwidth = -3\n"), HasSubstr("model.width"));
  EXPECT_THAT(error_of("[model]\nwidth = 2.5\n"), HasSubstr("model.width: must be an integer"));
  EXPECT_THAT(error_of("[model]\nwidth = \"big\"\n"), HasSubstr("model.width"));
  EXPECT_THAT(error_of("[model]\nbeta = nan\n"), HasSubstr("model.beta: must be a finite number"));
  EXPECT_THAT(error_of("[model]\nbeta = 0\n"), HasSubstr("model.beta: must be > 0"));
  EXPECT_THAT(error_of("[model]\nactivation = \"swish\"\n"),
              HasSubstr("model.activation: must be one of relu, tanh"));
  EXPECT_THAT(error_of("[model]\nkind = \"resnet\"\n"), HasSubstr("model.kind"));
  EXPECT_THAT(error_of("[model]\nbias = 1\n"), HasSubstr("model.bias: must be true or false"));
  EXPECT_THAT(error_of("[flow]\ndt = 0\n"), HasSubstr("flow.dt: must be > 0"));
  EXPECT_THAT(error_of("[flow]\ndt = -0.1\n"), HasSubstr("flow.dt"));
  EXPECT_THAT(error_of("[flow]\ndt = inf\n"), HasSubstr("flow.dt: must be a finite number"));
  EXPECT_THAT(error_of("[flow]\nintegrator = \"leapfrog\"\n"), HasSubstr("flow.integrator"));
  EXPECT_THAT(error_of("[flow]\nsteps = -1\n"), HasSubstr("flow.steps"));
  EXPECT_THAT(error_of("[data]\nn_train = 0\n"), HasSubstr("data.n_train"));
  EXPECT_THAT(error_of("[data]\nnoise = -1\n"), HasSubstr("data.noise"));
  EXPECT_THAT(error_of("[data]\nkind = \"file\"\npath = \"/nonexistent/data.h5\"\n"),
              HasSubstr("data.path: no such file"));
  EXPECT_THAT(error_of("[data]\nkind = \"file\"\n"), HasSubstr("data.path: is required"));
  EXPECT_THAT(error_of("[init]\nkind = \"file\"\npath = \"/nonexistent/run.h5\"\n"),
              HasSubstr("init.path: no such file"));
  EXPECT_THAT(error_of("[init]\nantithetic = true\n[model]\nwidth = 7\n"),
              HasSubstr("init.antithetic: needs an even model.width"));
  EXPECT_THAT(error_of("[output]\nobserve_every = 0\n"), HasSubstr("output.observe_every"));
  EXPECT_THAT(error_of("[output]\npath = \"\"\n"), HasSubstr("output.path"));
  EXPECT_THAT(error_of("model = 3\n"), HasSubstr("model: must be a table"));
  EXPECT_THAT(error_of("[model\nwidth = 3\n"), HasSubstr("test.toml:1: TOML syntax error"));
}

TEST(Config, BadOverridesNameTheKey) {
  EXPECT_THAT(error_of("", {"model.width=abc"}), HasSubstr("model.width"));
  EXPECT_THAT(error_of("", {"widthonly=3"}), HasSubstr("expected section.key=value"));
  EXPECT_THAT(error_of("", {"model.width"}), HasSubstr("expected section.key=value"));
  EXPECT_THAT(error_of("", {"model.colour=3"}), HasSubstr("model.colour: unknown key"));
}

TEST(Config, LoadsFiles) {
  const std::string dir = test::scratch_dir("config_files");
  std::ofstream(dir + "/a.toml") << "[model]\nwidth = 16\n";
  EXPECT_EQ(load_config(dir + "/a.toml").model.two_layer.width, 16);
  EXPECT_EQ(load_config(dir + "/a.toml").source, dir + "/a.toml");
  EXPECT_THROW(load_config(dir + "/missing.toml"), InputError);
  // The shipped example configs are valid.
  EXPECT_NO_THROW(load_config(MFSIM_SOURCE_DIR "/simulations/configs/two_layer_meanfield.toml"));
}

}  // namespace
}  // namespace mfsim
