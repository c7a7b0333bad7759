// The [diagnostics] section and the Diagnostics factory: defaults, every error path, the checks
// against the model, and observable names for a model with several labelled groups and Gram parts
// (how the ResNet plugs in).
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include <sstream>

#include "helpers.hpp"
#include "linear_flow_model.hpp"
#include "mfsim/app/diagnostics.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/io/config.hpp"
#include "recording_output.hpp"

namespace mfsim {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string config_error(const std::string& text) {
  try {
    parse_config(text);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << text;
  return "";
}

TEST(DiagnosticsConfig, Defaults) {
  const Config c = parse_config("[output]\nobserve_every = 7\n");
  const DiagnosticsSettings& d = c.diagnostics;
  EXPECT_EQ(d.every, 7);  // output.observe_every
  EXPECT_EQ(d.gram_every, 7);
  EXPECT_EQ(d.knn_every, 7);
  EXPECT_TRUE(d.gram);
  EXPECT_EQ(d.gram_max_samples, 2000);
  EXPECT_EQ(d.gram_solver, EigenSolverKind::dense);
  EXPECT_FALSE(d.gram_spectrum);
  EXPECT_FALSE(d.gram_matrix);
  EXPECT_TRUE(d.ntk);
  EXPECT_FALSE(d.kl_transport);
  EXPECT_FALSE(d.kl_knn);
  EXPECT_EQ(d.knn_k, 5);
  EXPECT_TRUE(d.path_norm);
  EXPECT_TRUE(d.path_length);
  EXPECT_THAT(c.resolved, HasSubstr("[diagnostics]"));
  EXPECT_EQ(parse_config(c.resolved).resolved, c.resolved);
}

TEST(DiagnosticsConfig, Values) {
  const Config c = parse_config(
      "[diagnostics]\nevery = 3\ngram_every = 6\nkl = [\"transport\", \"knn\"]\nknn_k = 8\n"
      "gram_solver = \"lanczos\"\npath_norm = false\n");
  EXPECT_EQ(c.diagnostics.every, 3);
  EXPECT_EQ(c.diagnostics.gram_every, 6);
  EXPECT_EQ(c.diagnostics.knn_every, 3);
  EXPECT_TRUE(c.diagnostics.kl_transport);
  EXPECT_TRUE(c.diagnostics.kl_knn);
  EXPECT_EQ(c.diagnostics.knn_k, 8);
  EXPECT_EQ(c.diagnostics.gram_solver, EigenSolverKind::lanczos);
  EXPECT_FALSE(c.diagnostics.path_norm);
}

TEST(DiagnosticsConfig, ErrorsNameTheKey) {
  EXPECT_THAT(config_error("[diagnostics]\nkl = [\"entropy\"]\n"),
              HasSubstr("diagnostics.kl: unknown entry \"entropy\""));
  EXPECT_THAT(config_error("[diagnostics]\nkl = \"knn\"\n"),
              HasSubstr("diagnostics.kl: must be an array of strings"));
  EXPECT_THAT(config_error("[diagnostics]\nknn_k = 0\n"), HasSubstr("diagnostics.knn_k"));
  EXPECT_THAT(config_error("[diagnostics]\nknn_k = 33\n"),
              HasSubstr("diagnostics.knn_k: must be in [1, 32]"));
  EXPECT_THAT(config_error("[diagnostics]\nevery = 0\n"), HasSubstr("diagnostics.every"));
  EXPECT_THAT(config_error("[diagnostics]\ngram_every = -1\n"),
              HasSubstr("diagnostics.gram_every"));
  EXPECT_THAT(config_error("[diagnostics]\ngram = 1\n"),
              HasSubstr("diagnostics.gram: must be true or false"));
  EXPECT_THAT(config_error("[diagnostics]\ngram_solver = \"arpack\"\n"),
              HasSubstr("diagnostics.gram_solver: must be one of dense, lanczos"));
  EXPECT_THAT(config_error("[diagnostics]\ngram_solver = \"lanczos\"\ngram_spectrum = true\n"),
              HasSubstr("diagnostics.gram_spectrum: needs gram_solver = \"dense\""));
  EXPECT_THAT(config_error("[diagnostics]\ngram_max_samples = 0\n"),
              HasSubstr("diagnostics.gram_max_samples"));
  EXPECT_THAT(config_error("[diagnostics]\ncadence = 3\n"),
              HasSubstr("diagnostics.cadence: unknown key"));
}

std::string factory_error(const std::string& text) {
  const Config c = parse_config(text);
  Problem p = build_problem(c, self_communicator(), c.diagnostics.kl_transport);
  std::ostringstream log;
  try {
    Diagnostics d(c, p, log);
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "accepted: " << text;
  return "";
}

const char* small = "[model]\nwidth = 16\n[data]\nn_train = 12\nn_test = 0\n";

TEST(Diagnostics, ChecksTheRequestAgainstTheModel) {
  const std::string relu = factory_error(
      "[model]\nwidth = 16\nactivation = \"relu\"\n[data]\nn_train = 12\n[diagnostics]\n"
      "kl = [\"transport\"]\n");
  EXPECT_THAT(relu, HasSubstr("diagnostics.kl: \"transport\" needs a twice-differentiable"));
  EXPECT_THAT(relu, HasSubstr("model.activation = \"relu\""));
  EXPECT_THAT(relu, HasSubstr("softplus"));
  EXPECT_THAT(factory_error(std::string(small) + "[diagnostics]\nkl = [\"knn\"]\nknn_k = 16\n"),
              HasSubstr("diagnostics.knn_k: must be below the 16 particles per slice"));
  EXPECT_THAT(factory_error("[data]\nn_train = 501\n[diagnostics]\ngram_matrix = true\n"),
              HasSubstr("diagnostics.gram_matrix: the matrix is written only for n_train <= 500"));
}

TEST(Diagnostics, BuildsWhatIsAskedFor) {
  const Config c = parse_config(std::string(small) +
                                "[diagnostics]\nkl = [\"transport\", \"knn\"]\nknn_k = 3\n");
  Problem p = build_problem(c, self_communicator(), true);
  std::ostringstream log;
  const Diagnostics d(c, p, log);
  EXPECT_EQ(d.observers().size(), 5u);  // transport, knn, gram, path norm, path length
  EXPECT_EQ(d.parameters().count("ntk_lambda0"), 1u);
  EXPECT_EQ(std::stod(d.parameters().at("ntk_gram_scale")), 1.0);
  // Nothing printed before the run (an unreliable estimate is announced when it is observed).
  EXPECT_EQ(log.str(), "");

  // Above gram_max_samples: no Gram observer, no λ₀, one log line.
  const Config big = parse_config(std::string(small) + "[diagnostics]\ngram_max_samples = 10\n");
  Problem q = build_problem(big);
  std::ostringstream log2;
  const Diagnostics without(big, q, log2);
  EXPECT_EQ(without.observers().size(), 2u);
  EXPECT_EQ(without.parameters().count("ntk_lambda0"), 0u);
  EXPECT_THAT(log2.str(), HasSubstr("Gram diagnostics skipped: n_train = 12 > "
                                    "diagnostics.gram_max_samples = 10"));
}

// A stand-in for the ResNet: groups "blocks" (2 slices) and "head" (with path norms), Gram parts
// "blocks" and "head". Every observable must carry its label.
TEST(Diagnostics, LabelledGroupsAndGramParts) {
  GroupSpec blocks = test::linear_group_spec("resnet_blocks", 40, {1.0, 0.7, 1.3}, "blocks", 2);
  GroupSpec head = test::linear_group_spec("resnet_head", 30, {1.0, 0.5}, "head");
  head.path_norm_scale = 2;
  Dataset data = make_synthetic_dataset(test::small_data(2, 4, 0));
  const std::vector<double> diag = {1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 3, 0, 0, 0, 0, 4};
  std::vector<double> ten(16, 0.0);
  for (int i = 0; i < 4; ++i) ten[std::size_t(i * 5)] = 10;
  Problem p;
  p.data = data;
  p.model = std::make_unique<test::LinearFlowModel>(
      std::vector<test::LinearGroup>{{blocks, {0.3, 0, 0, 0, 0.2, 0, 0, 0, 0.1}, {}},
                                     {head, {0.5, 0.1, 0, 0.5}, {}}},
      data,
      std::vector<std::pair<std::string, std::vector<double>>>{{"blocks", diag}, {"head", ten}});
  p.state = allocate_state(p.model->groups(), true, "state");
  p.model->initialize(p.state, 4, false);
  set_initial_log_density(p.state, p.model->groups());

  const Config c = parse_config(
      "[diagnostics]\nkl = [\"transport\", \"knn\"]\nknn_k = 2\nevery = 2\ngram_every = 4\n");
  std::ostringstream log;
  const Diagnostics d(c, p, log);
  RunSettings r;
  r.dt = 0.05;
  r.steps = 5;
  r.observe_every = 1;
  test::RecordingOutput out;
  run_flow(*p.model, p.state, r, d.observers(), out);
  for (const char* name :
       {"kl_blocks_transport", "kl_head_transport", "kl_blocks_knn", "kl_head_knn",
        "kl_blocks_knn_two_sample", "kl_head_knn_two_sample", "gram_blocks_lambda_min",
        "gram_head_lambda_min", "gram_lambda_min", "gram_lambda_max", "energy_identity_error",
        "loss_bound", "path_norm_head_l1", "path_norm_head_l2", "rademacher_head_bound",
        "w2_path_length"})
    EXPECT_TRUE(out.has(name)) << name;
  EXPECT_FALSE(out.has("kl_transport"));
  EXPECT_FALSE(out.has("path_norm_blocks_l1"));
  EXPECT_DOUBLE_EQ(out["gram_blocks_lambda_min"].last(), 1.0);
  EXPECT_DOUBLE_EQ(out["gram_head_lambda_min"].last(), 10.0);
  EXPECT_DOUBLE_EQ(out["gram_lambda_min"].last(), 11.0);
  EXPECT_DOUBLE_EQ(out["gram_lambda_max"].last(), 14.0);
  // Every KL beside its standard error and flag. 20 particles per slice in D = 3 are far too few
  // for the kNN estimators: each is flagged from the start, and announced once.
  for (const char* name :
       {"kl_blocks_transport", "kl_head_transport", "kl_blocks_knn", "kl_head_knn",
        "kl_blocks_knn_corrected", "kl_head_knn_corrected", "kl_blocks_knn_two_sample",
        "kl_head_knn_two_sample", "kl_blocks_knn_ellipsoid", "kl_head_knn_ellipsoid"}) {
    const std::string stderr_name = std::string(name) + "_stderr",
                      flag = std::string(name) + "_reliable";
    ASSERT_TRUE(out.has(stderr_name) && out.has(flag)) << name;
    EXPECT_EQ(out[flag].step, out[name].step) << name;
    for (const auto& row : out[stderr_name].value) EXPECT_GE(row[0], 0.0) << name;
    if (std::string(name).find("knn") == std::string::npos) continue;
    // A sampling error of a few dozen particles is never 0.
    for (const auto& row : out[stderr_name].value) EXPECT_GT(row[0], 0.0) << name;
    EXPECT_EQ(out[flag].value[0][0], 0.0) << name;
    const std::string warning = fmt::format("mfsim: warning: {} = ", name);
    const std::string messages = log.str();
    std::size_t count = 0;
    for (auto at = messages.find(warning); at != std::string::npos;
         at = messages.find(warning, at + 1))
      ++count;
    EXPECT_EQ(count, 1u) << name << "\n" << messages;
  }
  EXPECT_FALSE(out.has("kl_blocks_knn_bias_t0_stderr"));
  // The bias at t = 0 is the one-sample estimate on the initial particles (true KL 0), constant;
  // the corrected estimate subtracts it, so it starts at 0.
  for (const char* part : {"blocks", "head"}) {
    const auto& knn = out[fmt::format("kl_{}_knn", part)].value;
    const auto& bias = out[fmt::format("kl_{}_knn_bias_t0", part)].value;
    const auto& corrected = out[fmt::format("kl_{}_knn_corrected", part)].value;
    ASSERT_EQ(bias.size(), knn.size()) << part;
    EXPECT_NE(bias[0][0], 0.0) << part;  // a finite sample of ρ₀ never estimates exactly 0
    for (std::size_t i = 0; i < knn.size(); ++i) {
      EXPECT_NEAR(bias[i][0], knn[0][0], 1e-12 * std::fabs(knn[0][0])) << part;
      EXPECT_DOUBLE_EQ(corrected[i][0], knn[i][0] - bias[0][0]) << part;
    }
  }
  // Each observer keeps its own cadence (r.observe_every = 1 is the loss's).
  EXPECT_EQ(out["kl_blocks_transport"].step, (std::vector<index_t>{0, 2, 4, 5}));
  EXPECT_EQ(out["kl_blocks_knn"].step, (std::vector<index_t>{0, 2, 4, 5}));
  EXPECT_EQ(out["gram_lambda_min"].step, (std::vector<index_t>{0, 4, 5}));
}

}  // namespace
}  // namespace mfsim
