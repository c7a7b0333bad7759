// Model B (MATH.md §3) against independent references: a host implementation of the network and
// its backpropagation, finite differences of the loss for every parameter block, second
// differences of the potentials (B7)/(B8), the energy identity, the exact forward ODE (V2a), the
// antithetic start (V2b), the lazy limit (V3), the initial laws and their independence of the
// split.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>

#include "detail/resnet_kernels.hpp"
#include "detail/two_layer_vector_kernels.hpp"
#include "execution_spaces.hpp"
#include "helpers.hpp"
#include "host_resnet.hpp"
#include "mfsim/core/shard.hpp"
#include "mfsim/flow/integrator.hpp"
#include "mfsim/models/resnet.hpp"

namespace mfsim {
namespace {

struct Problem {
  Dataset data;
  ResNetSpec spec;
  std::unique_ptr<ResNetModel> model;
  ParticleState state;
};

Problem make_problem(const ResNetSpec& spec, bool antithetic = false, bool log_density = true) {
  Problem p;
  SyntheticDataSpec data = test::small_data(3, 7, 4);
  data.sign_labels = needs_signed_labels(spec.loss);
  p.data = make_synthetic_dataset(data);
  p.spec = spec;
  p.model = std::make_unique<ResNetModel>(spec, p.data);
  p.state = allocate_state(p.model->groups(), log_density, "test");
  p.model->initialize(p.state, 11, antithetic);
  if (log_density) set_initial_log_density(p.state, p.model->groups());
  return p;
}

using test::HostResNet;

// The host network's pass at (blocks, head) with c = 1: the layer states z_l, the sensitivities
// q_l = ∂f/∂z_l and the residuals r.
struct Pass {
  test::Layers z, q;
  std::vector<double> r;
};
Pass host_pass(const HostResNet& net, const std::vector<double>& blocks,
               const std::vector<double>& head) {
  Pass p;
  p.z = net.states(blocks);
  p.r = net.residuals(net.head().outputs(head, p.z[net.L], net.beta / double(net.K)));
  p.q = net.adjoints(blocks, head, p.z, std::vector<double>(std::size_t(net.n), 1.0));
  return p;
}

using ActivationPair = std::pair<std::string, std::string>;  // σ0, σh

class ResNetActivations : public ::testing::TestWithParam<ActivationPair> {
 protected:
  ResNetSpec spec() const {
    return test::small_resnet_spec(parse_activation(GetParam().first),
                                   parse_activation(GetParam().second));
  }
  bool twice_differentiable() const {
    return is_twice_differentiable(parse_activation(GetParam().first)) &&
           is_twice_differentiable(parse_activation(GetParam().second));
  }
};

// The largest reference entry of a compared column must exceed this (a column of near-zeros
// would compare nothing).
constexpr double column_floor = 1e-3;

// The kernels' z_l, q_l, residual, loss and test predictions against the host network.
void expect_passes_match_host(const ResNetSpec& spec) {
  Problem p = make_problem(spec);
  ParticleState v = allocate_like(p.state, "v");
  const auto e = test::evaluate(*p.model, p.state, v);
  const double loss = e->loss;
  const HostResNet net(p.data, p.spec);
  const auto blocks = test::host(p.state.theta[0]), head = test::host(p.state.theta[1]);
  const Pass ref = host_pass(net, blocks, head);
  EXPECT_NEAR(loss, net.loss(blocks, head), test::tol(1e-13, 1e-5));
  EXPECT_LT(test::max_abs_diff(test::host(e->residual), ref.r), test::tol(1e-13, 1e-5));
  for (index_t l = 0; l <= net.L; ++l) {
    EXPECT_LT(test::max_abs_diff(test::host(test::resnet(*e).state(l)), ref.z[l]),
              test::tol(1e-13, 1e-5));
    EXPECT_LT(test::max_abs_diff(test::host(test::resnet(*e).sensitivity(l)), ref.q[l]),
              test::tol(1e-13, 1e-5));
  }
  EXPECT_GT(test::max_abs(ref.q[0]), 1e-2);
  Vector f("f", p.data.n_test());
  p.model->predict(p.state, p.data.x_test, f);
  HostResNet test_net(p.data, p.spec);  // the host network on the test inputs
  test_net.x = test::host(p.data.x_test);
  test_net.n = int(p.data.n_test());
  EXPECT_LT(test::max_abs_diff(test::host(f), test_net.outputs(blocks, head)),
            test::tol(1e-13, 1e-5));
}

TEST_P(ResNetActivations, ForwardAndBackwardPassesMatchTheHostNetwork) {
  expect_passes_match_host(spec());
}

// V = −LM ∇_θ L for the blocks and −K ∇_ω L for the head (B11), each parameter block (u, w, b,
// a, v) against central differences of the host loss.
void expect_velocity_is_minus_scaled_loss_gradient(const ResNetSpec& spec) {
  Problem p = make_problem(spec);
  ParticleState v = allocate_like(p.state, "v");
  test::evaluate(*p.model, p.state, v);
  const HostResNet net(p.data, p.spec);
  const auto blocks = test::host(p.state.theta[0]), head = test::host(p.state.theta[1]);
  const double h = test::is_double() ? 1e-5 : 1e-2;
  const auto fd_blocks = test::minus_scaled_gradient(
      blocks, [&](const auto& th) { return net.loss(th, head); }, double(net.L * net.M), h);
  const auto fd_head = test::minus_scaled_gradient(
      head, [&](const auto& th) { return net.loss(blocks, th); }, double(net.K), h);
  const auto v_blocks = test::host(v.theta[0]), v_head = test::host(v.theta[1]);
  const double tol = test::tol(1e-7, 2e-2);
  const int d = net.d;
  EXPECT_LT(test::relative_block_error(v_blocks, fd_blocks, net.DB(), 0, d, column_floor), tol)
      << "u";
  EXPECT_LT(test::relative_block_error(v_blocks, fd_blocks, net.DB(), d, d, column_floor), tol)
      << "w";
  EXPECT_LT(test::relative_block_error(v_blocks, fd_blocks, net.DB(), 2 * d, 1, column_floor), tol)
      << "b";
  EXPECT_LT(test::relative_block_error(v_head, fd_head, net.DH(), 0, 1, column_floor), tol) << "a";
  EXPECT_LT(test::relative_block_error(v_head, fd_head, net.DH(), 1, d, column_floor), tol) << "v";
}

TEST_P(ResNetActivations, VelocityIsMinusScaledLossGradient) {
  expect_velocity_is_minus_scaled_loss_gradient(spec());
}

// The same with the logistic loss (labels ±1): the velocity weighs each sample by ℓ'(f, y).
TEST(ResNet, LogisticVelocityIsMinusScaledLossGradient) {
  ResNetSpec s = test::small_resnet_spec(ActivationKind::tanh, ActivationKind::erf);
  s.loss = LossKind::logistic;
  expect_velocity_is_minus_scaled_loss_gradient(s);
}

// (B12): the Laplacian of Ψ^R, Ψ^H in the particle's own variables, the mean field frozen.
TEST_P(ResNetActivations, LaplaciansAreTracesOfPotentialHessians) {
  if (!twice_differentiable()) GTEST_SKIP() << "σ'' is a Dirac mass";
  if (!test::is_double()) GTEST_SKIP() << "second differences need double precision";
  Problem p = make_problem(spec());
  ParticleState v = allocate_like(p.state, "v");
  test::evaluate(*p.model, p.state, v);
  const HostResNet net(p.data, p.spec);
  const auto blocks = test::host(p.state.theta[0]), head = test::host(p.state.theta[1]);
  const Pass ref = host_pass(net, blocks, head);
  const test::Layers adjoints = net.adjoints(blocks, head, ref.z, ref.r);  // r q: c = 1
  const double h = 1e-4;
  auto second_difference = [&](std::vector<double> th, int dim, auto&& potential) {
    double sum = 0;
    for (int j = 0; j < dim; ++j) {
      const double saved = th[j], mid = potential(th.data());
      th[j] = saved + h;
      const double plus = potential(th.data());
      th[j] = saved - h;
      const double minus = potential(th.data());
      th[j] = saved;
      sum += (plus - 2 * mid + minus) / (h * h);
    }
    return sum;
  };
  const auto lap_blocks = test::host(v.log_density[0]), lap_head = test::host(v.log_density[1]);
  double largest = 0;
  for (index_t k = 0; k < net.L * net.M; ++k) {
    const std::vector<double> th(&blocks[k * net.DB()], &blocks[(k + 1) * net.DB()]);
    const index_t l = k / net.M;
    const double fd = second_difference(
        th, net.DB(), [&](const double* t) { return net.block_potential(t, l, ref.z, adjoints); });
    EXPECT_NEAR(lap_blocks[k], fd, 1e-5 * (1 + std::fabs(fd))) << "block " << k;
    largest = std::fmax(largest, std::fabs(fd));
  }
  EXPECT_GT(largest, 1e-3);
  largest = 0;
  for (index_t k = 0; k < net.K; ++k) {
    const std::vector<double> om(&head[k * net.DH()], &head[(k + 1) * net.DH()]);
    const double fd = second_difference(
        om, net.DH(), [&](const double* t) { return net.head_potential(t, ref.z[net.L], ref.r); });
    EXPECT_NEAR(lap_head[k], fd, 1e-5 * (1 + std::fabs(fd))) << "head " << k;
    largest = std::fmax(largest, std::fabs(fd));
  }
  EXPECT_GT(largest, 1e-3);
}

// dL/dt along the flow = Σ ∇_θL·V_θ + Σ ∇_ωL·V_ω = −(1/(LM)) Σ_blocks |V|² − (1/K) Σ_head |V|²,
// checked by a central difference of the host loss along the velocity field.
TEST_P(ResNetActivations, EnergyIdentity) {
  Problem p = make_problem(spec(), false, false);
  ParticleState v = allocate_like(p.state, "v");
  test::evaluate(*p.model, p.state, v);
  const HostResNet net(p.data, p.spec);
  const auto blocks = test::host(p.state.theta[0]), head = test::host(p.state.theta[1]);
  const auto vb = test::host(v.theta[0]), vh = test::host(v.theta[1]);
  double block_speed2 = 0, head_speed2 = 0;
  for (double c : vb) block_speed2 += c * c;
  for (double c : vh) head_speed2 += c * c;
  const double block_part = -block_speed2 / double(net.L * net.M);
  const double head_part = -head_speed2 / double(net.K);
  EXPECT_LT(block_part, -1e-6);
  const double h = test::is_double() ? 1e-6 : 1e-3;
  auto moved = [&](double step) {
    auto b = blocks, a = head;
    for (std::size_t j = 0; j < b.size(); ++j) b[j] += step * vb[j];
    for (std::size_t j = 0; j < a.size(); ++j) a[j] += step * vh[j];
    return net.loss(b, a);
  };
  const double fd = (moved(h) - moved(-h)) / (2 * h);
  const double dissipation = block_part + head_part;
  EXPECT_NEAR(fd, dissipation, test::tol(1e-7, 1e-2) * std::fabs(dissipation));
}

INSTANTIATE_TEST_SUITE_P(
    All, ResNetActivations,
    ::testing::Values(ActivationPair{"tanh", "tanh"}, ActivationPair{"sigmoid", "erf"},
                      ActivationPair{"softplus", "gelu"}, ActivationPair{"erf", "sigmoid"},
                      ActivationPair{"gelu", "softplus"}, ActivationPair{"relu", "tanh"},
                      ActivationPair{"tanh", "relu"}));

// Layers and a head wider than one tile of the per-sample reductions, the last tile partial.
TEST(ResNet, WideLayersMatchTheHostNetwork) {
  ResNetSpec spec = test::small_resnet_spec();
  spec.depth = 2;
  spec.width = 300;
  spec.head_width = 260;
  expect_passes_match_host(spec);
}

// (B11)–(B12) of the blocks written out on the host from the host passes, at sizes that span
// several particle tiles and sample chunks of the velocity kernel (both ragged).
TEST(ResNet, WideLayerVelocitiesAndLaplaciansMatchTheHostSums) {
  Problem p;
  p.data = make_synthetic_dataset(test::small_data(3, 101, 0));
  p.spec = test::small_resnet_spec();
  p.spec.depth = 2;
  p.spec.width = 150;
  p.spec.head_width = 10;
  p.model = std::make_unique<ResNetModel>(p.spec, p.data);
  p.state = allocate_state(p.model->groups(), true, "test");
  p.model->initialize(p.state, 5, false);
  ParticleState v = allocate_like(p.state, "v");
  test::evaluate(*p.model, p.state, v);
  const HostResNet net(p.data, p.spec);
  const auto blocks = test::host(p.state.theta[0]), head = test::host(p.state.theta[1]);
  const Pass ref = host_pass(net, blocks, head);
  const int d = net.d, DB = net.DB();
  const std::vector<double> sums = net.block_velocities(blocks, ref.z, ref.q, ref.r);
  std::vector<double> expected(blocks.size()), expected_lap(std::size_t(net.L * net.M));
  for (std::size_t k = 0; k < expected_lap.size(); ++k) {
    for (int j = 0; j < DB; ++j) expected[k * DB + j] = sums[k * (DB + 1) + j];
    expected_lap[k] = sums[k * (DB + 1) + DB];
  }
  const auto v_blocks = test::host(v.theta[0]);
  const double tol = test::tol(1e-12, 1e-4);
  EXPECT_LT(test::relative_block_error(v_blocks, expected, DB, 0, d, column_floor), tol) << "u";
  EXPECT_LT(test::relative_block_error(v_blocks, expected, DB, d, d, column_floor), tol) << "w";
  EXPECT_LT(test::relative_block_error(v_blocks, expected, DB, 2 * d, 1, column_floor), tol) << "b";
  EXPECT_LT(
      test::relative_block_error(test::host(v.log_density[0]), expected_lap, 1, 0, 1, column_floor),
      tol)
      << "Laplacian";
}

// The velocities of a group of layers come from one kernel over packs of their states: how the
// layers are grouped (all in one at small n·d, one by one past the packs' memory budget) changes
// nothing, bit for bit, for ragged groups as for one. The default groups every layer here.
TEST(ResNet, VelocitiesDoNotDependOnHowLayersAreGrouped) {
  ResNetSpec spec = test::small_resnet_spec();
  spec.depth = 5;
  spec.width = 70;  // two particle tiles per layer, the second ragged
  Problem p = make_problem(spec);
  const auto velocities = [&](index_t group) {
    auto e = p.model->make_evaluation();
    auto& re = static_cast<ResNetEvaluation&>(*e);
    if (group > 0) re.velocity_layer_group = group;
    ParticleState v = allocate_like(p.state, "v");
    p.model->evaluate(p.state, *e, v);
    return std::make_pair(test::host(v.theta[0]), test::host(v.log_density[0]));
  };
  {
    auto e = p.model->make_evaluation();
    EXPECT_EQ(static_cast<ResNetEvaluation&>(*e).velocity_layer_group, spec.depth);
  }
  const auto all = velocities(0);
  for (index_t group : {1, 2, 3}) {
    const auto grouped = velocities(group);
    EXPECT_EQ(grouped.first, all.first) << "velocities, groups of " << group;
    EXPECT_EQ(grouped.second, all.second) << "Laplacians, groups of " << group;
  }
}

// Host values as a device matrix of `cols` columns, or a device vector.
Matrix device_matrix(const std::string& name, const std::vector<double>& values, int cols) {
  Matrix m(name, values.size() / std::size_t(cols), cols);
  test::set(m, values);
  return m;
}
Vector device_vector(const std::string& name, const std::vector<double>& values) {
  Vector v(name, values.size());
  const auto h = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < values.size(); ++i) h(i) = real(values[i]);
  Kokkos::deep_copy(v, h);
  return v;
}

// Columns [0, width) of rows of `stride` values: a velocity without its Laplacian column.
std::vector<double> leading_columns(const std::vector<double>& rows, int stride, int width) {
  std::vector<double> out;
  for (std::size_t k = 0; k < rows.size() / stride; ++k)
    out.insert(out.end(), rows.begin() + k * stride, rows.begin() + k * stride + width);
  return out;
}
std::vector<double> column(const std::vector<double>& rows, int stride, int j) {
  std::vector<double> out;
  for (std::size_t k = 0; k < rows.size() / stride; ++k) out.push_back(rows[k * stride + j]);
  return out;
}

// got ≈ expected to `tol` relative to the largest |expected|, which must be non-negligible.
void expect_close(const std::vector<double>& got, const std::vector<double>& expected, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), expected.size()) << what;
  EXPECT_GT(test::max_abs(expected), 1e-3) << what;
  EXPECT_LT(test::max_abs_diff(got, expected), tol * test::max_abs(expected)) << what;
}

// The kernels alone, on each execution space (TypeParam) of the build.
template <class Space>
class ResNetKernels : public ::testing::Test {};
TYPED_TEST_SUITE(ResNetKernels, test::ExecutionSpaces);

// The kernels of an evaluation run on `space` and chained as ResNetModel chains them — the
// forward per-sample sums of every layer and the head's outputs, the head's adjoint (weighted by
// the residuals at c > 1) and the backward sums, the block velocities of all layers in one kernel
// and the head's velocity, with their Laplacians — against the host network, c = 1 (square loss)
// and c = 3 (cross-entropy). Sizes straddle every tiling: n = 101 samples make groups of 32 and a
// ragged one (per-sample sums) and chunks of 48 and a ragged one (velocities); M = 150 particles
// per layer and K = 70 head particles make chunks of 64 (per-sample sums) and velocity tiles of
// 64, the last ragged, and particle chunks of 60 in the head's forward; parameters without
// structure (sin of their indices) that a tiling bug could hide in.
TYPED_TEST(ResNetKernels, PassesAndVelocitiesMatchTheHostNetworkAcrossTilesAndChunks) {
  const TypeParam space;
  const activations::Tanh block_act;
  const activations::Erf head_act;
  const int n = 101, d = 5;
  for (int c : {1, 3}) {
    ResNetSpec spec = test::small_resnet_spec(ActivationKind::tanh, ActivationKind::erf, c,
                                              c == 1 ? LossKind::square : LossKind::cross_entropy);
    spec.depth = 2;
    spec.width = 150;
    spec.head_width = 70;
    const Dataset data = test::vector_data(n, d, c, spec.loss);
    const HostResNet net(data, spec);
    const index_t L = net.L, M = net.M, K = net.K;
    std::vector<double> blocks(std::size_t(L * M * net.DB())), head(std::size_t(K * net.DH()));
    for (std::size_t i = 0; i < blocks.size(); ++i) blocks[i] = 0.8 * std::sin(2.0 + 1.37 * i);
    for (std::size_t i = 0; i < head.size(); ++i) head[i] = 0.9 * std::sin(1.0 + 0.61 * i);

    // The host network: states, outputs, residuals, adjoints and velocity sums.
    const test::Layers z = net.states(blocks);
    const std::vector<double> f = net.outputs(blocks, head), r = net.residuals(f);
    const std::vector<double> ones(std::size_t(n), 1.0);
    // c = 1: the sensitivities q = ∂f/∂z, each sample weighed by r_i in the velocities; c > 1:
    // the adjoints weighted by the residuals, each sample weighing 1 (as the model).
    const test::Layers q = net.adjoints(blocks, head, z, c == 1 ? ones : r);
    const std::vector<double> block_sums = net.block_velocities(blocks, z, q, c == 1 ? r : ones);
    const std::vector<double> head_sums = net.head().velocities(head, z[L], r, net.beta / n);

    // The kernels on `space`.
    const Matrix blocks_dev = device_matrix("blocks", blocks, net.DB());
    const Matrix head_dev = device_matrix("head", head, net.DH());
    const Vector r_dev = device_vector("r", r), ones_dev = device_vector("ones", ones);
    using Layers = Kokkos::View<real***, Kokkos::LayoutRight, MemSpace>;
    const Layers states("states", L + 1, n, d), sensitivities("sensitivities", L + 1, n, d);
    const auto layer = [](const Layers& v, index_t l) -> Matrix {
      return Kokkos::subview(v, l, Kokkos::ALL, Kokkos::ALL);
    };
    Vector f_dev("f", n * c), norm2("norm2", (L + 1) * n);
    Matrix v_blocks("v_blocks", L * M, net.DB()), v_head("v_head", K, net.DH());
    Vector lap_blocks("lap_blocks", L * M), lap_head("lap_head", K);
    Workspace scratch;
    Kokkos::deep_copy(space, layer(states, 0), data.x_train);
    const real block_scale = real(net.alpha / double(L * M));
    const real head_scale = real(net.beta / double(K));
    const detail::ParticlePanels panels =
        detail::transpose_layers(space, blocks_dev, L, M, scratch, "block_panels");
    for (index_t l = 0; l < L; ++l)
      detail::per_sample_sum<detail::SampleSum::forward>(
          space, "test::forward", detail::layer_panel(panels, l), layer(states, l),
          layer(states, l), layer(states, l), layer(states, l + 1), block_scale, block_act);
    const Matrix z_last = layer(states, L);
    if (c == 1)
      detail::two_layer_forward(space, "test::head_output", head_dev, z_last, f_dev, head_scale,
                                false, head_act);
    else
      detail::two_layer_vector_forward(space, "test::head_output", head_dev, z_last, f_dev,
                                       head_scale, false, head_act, c);
    const detail::ParticlePanels head_panel =
        detail::transpose_layers(space, head_dev, 1, K, scratch, "head_panel");
    if (c == 1)
      detail::per_sample_sum<detail::SampleSum::head_adjoint>(
          space, "test::head_adjoint", detail::layer_panel(head_panel, 0), z_last, z_last,
          ConstMatrix(), layer(sensitivities, L), head_scale, head_act);
    else
      detail::per_sample_sum<detail::SampleSum::weighted_head_adjoint>(
          space, "test::head_adjoint", detail::layer_panel(head_panel, 0), z_last,
          ConstMatrix(r_dev.data(), n, c), ConstMatrix(), layer(sensitivities, L), head_scale,
          head_act);
    for (index_t l = L - 1; l >= 0; --l)
      detail::per_sample_sum<detail::SampleSum::backward>(
          space, "test::backward", detail::layer_panel(panels, l), layer(states, l),
          layer(sensitivities, l + 1), layer(sensitivities, l + 1), layer(sensitivities, l),
          block_scale, block_act);
    detail::squared_row_norms(space, ConstMatrix(states.data(), (L + 1) * n, d), 0, norm2);
    const auto stack = [](const Layers& v, index_t first) -> tiles::MatrixStack {
      return Kokkos::subview(v, std::make_pair(first, first + 2), Kokkos::ALL, Kokkos::ALL);
    };
    const tiles::SamplePanels zs =
        tiles::pack_layers(space, stack(states, 0), true, scratch, "layer_states");
    const tiles::SamplePanels qs =
        tiles::pack_layers(space, stack(sensitivities, 1), false, scratch, "layer_sensitivities");
    detail::block_velocity<true>(space, blocks_dev, 0, L, M, zs, qs, c == 1 ? r_dev : ones_dev,
                                 norm2, v_blocks, lap_blocks, real(net.alpha / n), block_act);
    const ConstVector head_norm2 = Kokkos::subview(norm2, std::make_pair(L * n, (L + 1) * n));
    if (c == 1) {
      detail::two_layer_velocity<true>(space, "test::head_velocity", head_dev, z_last, r_dev,
                                       head_norm2, v_head, lap_head, real(net.beta / n), false,
                                       head_act, scratch);
    } else {
      const tiles::SamplePanels head_samples =
          tiles::pack_samples(space, z_last, false, scratch, "head_samples");
      detail::two_layer_vector_velocity<true>(space, "test::head_velocity", head_dev, head_samples,
                                              r_dev, head_norm2, v_head, lap_head,
                                              real(net.beta / n), head_act, c, scratch);
    }
    space.fence();

    const double tol = test::tol(1e-12, 1e-4);
    const std::string at = "c=" + std::to_string(c);
    for (index_t l = 1; l <= L; ++l)
      expect_close(test::host(layer(states, l)), z[l], tol, "z_" + std::to_string(l) + " " + at);
    expect_close(test::host(f_dev), f, tol, "f " + at);
    for (index_t l = 0; l <= L; ++l)
      expect_close(test::host(layer(sensitivities, l)), q[l], tol,
                   "q_" + std::to_string(l) + " " + at);
    const int DB = net.DB(), DH = net.DH();
    expect_close(test::host(v_blocks), leading_columns(block_sums, DB + 1, DB), tol,
                 "block velocities " + at);
    expect_close(test::host(lap_blocks), column(block_sums, DB + 1, DB), tol,
                 "block Laplacians " + at);
    expect_close(test::host(v_head), leading_columns(head_sums, DH + 1, DH), tol,
                 "head velocities " + at);
    expect_close(test::host(lap_head), column(head_sums, DH + 1, DH), tol, "head Laplacians " + at);
  }
}

// V2a: with every block (u, w, b) = (1, 1, 0), σ0 = tanh and d = 1, the ResNet is the Euler
// scheme of dz/ds = α tanh z, whose flow map is z(1) = asinh(e^α sinh x); error O(1/L).
TEST(ResNet, IdenticalBlocksApproachTheForwardOde) {
  const std::vector<double> x = {-1.5, -0.4, 0.3, 0.9, 2.0};
  Dataset data;
  data.x_train = Matrix("x", x.size(), 1);
  test::set(data.x_train, x);
  data.y_train = Vector("y", x.size());
  data.x_test = Matrix("x_test", 0, 1);
  data.y_test = Vector("y_test", 0);
  const double alpha = 0.8;
  auto error = [&](index_t L) {
    ResNetSpec spec;
    spec.depth = L;
    spec.width = 3;
    spec.head_width = 2;
    spec.alpha = alpha;
    spec.activation = {ActivationKind::tanh, 1};
    ResNetModel model(spec, data);
    ParticleState s = allocate_state(model.groups(), false, "s");
    model.initialize(s, 1, false);
    std::vector<double> blocks(std::size_t(L * 3 * 3), 0.0);  // rows (u, w, b) = (1, 1, 0)
    for (index_t k = 0; k < L * 3; ++k) blocks[k * 3] = 1, blocks[k * 3 + 1] = 1;
    test::set(s.theta[0], blocks);
    ParticleState v = allocate_like(s, "v");
    const auto evaluation = test::evaluate(model, s, v);
    const auto z = test::host(test::resnet(*evaluation).state(L));
    double e = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      e = std::fmax(e, std::fabs(z[i] - std::asinh(std::exp(alpha) * std::sinh(x[i]))));
    return e;
  };
  const double e16 = error(16), e32 = error(32), e64 = error(64), e128 = error(128);
  EXPECT_LT(e128, 1e-2);
  EXPECT_NEAR(std::log2(e16 / e32), 1.0, 0.2);
  EXPECT_NEAR(std::log2(e32 / e64), 1.0, 0.2);
  EXPECT_NEAR(std::log2(e64 / e128), 1.0, 0.2);
}

// V2b: antithetic pairs make every layer the identity, the output zero and the adjoint zero, so
// the blocks start at rest while the head moves; exactly, for both depth laws.
TEST(ResNet, AntitheticStartIsExactlyTheIdentityWithZeroOutput) {
  for (DepthInit law : {DepthInit::iid, DepthInit::constant}) {
    ResNetSpec spec = test::small_resnet_spec();
    spec.depth_init = law;
    Problem p = make_problem(spec, true, true);
    const HostResNet net(p.data, p.spec);
    const auto blocks = test::host(p.state.theta[0]), head = test::host(p.state.theta[1]);
    for (index_t k = 0; k < net.L * net.M; k += 2) {
      for (int c = 0; c < net.d; ++c)
        EXPECT_EQ(blocks[k * net.DB() + c], -blocks[(k + 1) * net.DB() + c]);
      for (int c = net.d; c < net.DB(); ++c)
        EXPECT_EQ(blocks[k * net.DB() + c], blocks[(k + 1) * net.DB() + c]);
    }
    for (index_t k = 0; k < net.K; k += 2) {
      EXPECT_EQ(head[k * net.DH()], -head[(k + 1) * net.DH()]);
      for (int c = 1; c < net.DH(); ++c)
        EXPECT_EQ(head[k * net.DH() + c], head[(k + 1) * net.DH() + c]);
    }

    ParticleState v = allocate_like(p.state, "v");
    const auto e = test::evaluate(*p.model, p.state, v);
    const std::vector<double> zeros(std::size_t(net.n * net.d), 0.0);
    for (index_t l = 0; l <= net.L; ++l) {
      EXPECT_EQ(test::host(test::resnet(*e).state(l)), net.x) << "layer " << l;
      EXPECT_EQ(test::host(test::resnet(*e).sensitivity(l)), zeros) << "layer " << l;
    }
    std::vector<double> minus_y = net.y;
    for (double& c : minus_y) c = -c;
    EXPECT_EQ(test::host(e->residual), minus_y);
    Vector f("f", p.data.n_test());
    p.model->predict(p.state, p.data.x_test, f);
    EXPECT_EQ(test::host(f), std::vector<double>(std::size_t(p.data.n_test()), 0.0));
    EXPECT_EQ(test::max_abs(test::host(v.theta[0])), 0.0);
    EXPECT_EQ(test::max_abs(test::host(v.log_density[0])), 0.0);
    EXPECT_GT(test::max_abs(test::host(v.theta[1])), 1e-2);
  }
}

// V3: as β grows the flow becomes lazy: r(t) → exp(−t β² K_head/n) r(0), K_head the head's Gram
// matrix at initialisation (computed here from the head's features), at a fixed rescaled time
// β²t/n. The particles move by O(1/β), so the generic error is O(1/β) (MATH.md §6 V3); from the
// antithetic start it is O(1/β²): a pair (a + δa, v + δv), (−a + δa, v − δv) — the head velocity
// is even in a for δa and odd for δv — contributes a[σ(+) − σ(−)] + δa[σ(+) + σ(−)] to f, which
// has no second-order term in (δa, δv); the blocks move only at second order (q(0) = 0).
TEST(ResNet, LargeBetaApproachesTheLazyKernelPrediction) {
  const Dataset data = make_synthetic_dataset(test::small_data(3, 6, 0));
  const int n = 6, d = 3;
  const double rescaled_time = 1.0;
  const int steps = 60;
  auto error = [&](double beta) {
    ResNetSpec spec;
    spec.depth = 2;
    spec.width = 8;
    spec.head_width = 64;
    spec.beta = beta;
    ResNetModel model(spec, data);
    ParticleState s = allocate_state(model.groups(), false, "s");
    model.initialize(s, 4, true);

    // K_ij = (1/K) Σ_k [σ(v_k·x_i) σ(v_k·x_j) + a_k² σ'(v_k·x_i) σ'(v_k·x_j) x_i·x_j] (z_L = x).
    const auto head = test::host(s.theta[1]), x = test::host(data.x_train);
    Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(n, n);
    for (index_t k = 0; k < spec.head_width; ++k) {
      const double* om = &head[k * (1 + d)];
      std::vector<double> s0(n), s1(n);
      for (int i = 0; i < n; ++i) {
        double pre = 0;
        for (int c = 0; c < d; ++c) pre += om[1 + c] * x[i * d + c];
        s0[i] = std::tanh(pre);
        s1[i] = 1 - s0[i] * s0[i];
      }
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
          double xx = 0;
          for (int c = 0; c < d; ++c) xx += x[i * d + c] * x[j * d + c];
          gram(i, j) += (s0[i] * s0[j] + om[0] * om[0] * s1[i] * s1[j] * xx) / spec.head_width;
        }
    }
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(gram);
    const Eigen::VectorXd decay = (-rescaled_time * eig.eigenvalues().array()).exp();
    Eigen::VectorXd r0(n);
    const auto y = test::host(data.y_train);
    for (int i = 0; i < n; ++i) r0(i) = -y[i];
    const Eigen::VectorXd lazy =
        eig.eigenvectors() * decay.asDiagonal() * eig.eigenvectors().transpose() * r0;

    const double t_end = rescaled_time * n / (beta * beta);
    ParticleState v = allocate_like(s, "v");
    Integrator rk4(IntegratorKind::rk4, s);
    const VelocityField field = [&](const ExecSpace&, const ParticleState& a, ParticleState& da) {
      return test::evaluate(model, a, da)->loss;
    };
    for (int step = 0; step < steps; ++step) {
      field(ExecSpace(), s, v);
      rk4.finish_step(s, v, real(t_end / steps), field);
    }
    const auto r = test::host(test::evaluate(model, s, v)->residual);
    double diff = 0;
    for (int i = 0; i < n; ++i) diff += (r[i] - lazy(i)) * (r[i] - lazy(i));
    return std::sqrt(diff) / r0.norm();
  };
  const double e8 = error(8), e16 = error(16), e32 = error(32), e64 = error(64);
  EXPECT_LT(e8, 0.01);
  EXPECT_NEAR(std::log2(e8 / e16), 2.0, 0.2);
  EXPECT_NEAR(std::log2(e16 / e32), 2.0, 0.2);
  EXPECT_NEAR(std::log2(e32 / e64), 2.0, 0.2);
}

TEST(ResNet, GroupsDescribeTheParticles) {
  Problem p = make_problem(test::small_resnet_spec(), false, false);
  const auto& g = p.model->groups();
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g[0].name, "resnet_blocks");
  EXPECT_EQ(g[0].columns,
            (std::vector<std::string>{"u_1", "u_2", "u_3", "w_1", "w_2", "w_3", "b"}));
  EXPECT_EQ(g[0].init_std, (std::vector<double>{0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.5}));
  EXPECT_EQ(g[0].global_count, 12);
  EXPECT_EQ(g[0].slices, 3);
  EXPECT_EQ(g[1].name, "resnet_head");
  EXPECT_EQ(g[1].columns, (std::vector<std::string>{"a", "v_1", "v_2", "v_3"}));
  EXPECT_EQ(g[1].init_std, (std::vector<double>{1.2, 0.7, 0.7, 0.7}));
  EXPECT_EQ(g[1].global_count, 6);
  EXPECT_EQ(g[1].slices, 1);
  const auto scalings = p.model->scalings(0.01);
  EXPECT_DOUBLE_EQ(std::stod(scalings.at("raw_learning_rate_blocks")), 12 * 0.01);
  EXPECT_DOUBLE_EQ(std::stod(scalings.at("raw_learning_rate_head")), 6 * 0.01);
}

TEST(ResNet, InitialLawsMatchTheSpecifiedStdsAndDepthLaw) {
  ResNetSpec spec = test::small_resnet_spec();
  spec.depth = 2;
  spec.width = 4000;
  spec.head_width = 8000;
  for (DepthInit law : {DepthInit::iid, DepthInit::constant}) {
    spec.depth_init = law;
    Problem p = make_problem(spec, false, false);
    const auto blocks = test::host(p.state.theta[0]), head = test::host(p.state.theta[1]);
    std::vector<double> var_blocks(7, 0), var_head(4, 0);
    for (std::size_t j = 0; j < blocks.size(); ++j) var_blocks[j % 7] += blocks[j] * blocks[j];
    for (std::size_t j = 0; j < head.size(); ++j) var_head[j % 4] += head[j] * head[j];
    const std::vector<double> sd_blocks = {0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.5},
                              sd_head = {1.2, 0.7, 0.7, 0.7};
    for (int c = 0; c < 7; ++c)
      EXPECT_NEAR(var_blocks[c] / 8000, sd_blocks[c] * sd_blocks[c],
                  0.06 * sd_blocks[c] * sd_blocks[c]);
    for (int c = 0; c < 4; ++c)
      EXPECT_NEAR(var_head[c] / 8000, sd_head[c] * sd_head[c], 0.06 * sd_head[c] * sd_head[c]);
    // Depth-constant: layer 1 repeats layer 0; i.i.d.: no coordinate repeats.
    const std::vector<double> layer0(blocks.begin(), blocks.begin() + 4000 * 7),
        layer1(blocks.begin() + 4000 * 7, blocks.end());
    if (law == DepthInit::constant) {
      EXPECT_EQ(layer0, layer1);
    } else {
      for (std::size_t j = 0; j < layer0.size(); ++j) ASSERT_NE(layer0[j], layer1[j]);
    }
  }
}

TEST(ResNet, InitialisationDoesNotDependOnTheSplit) {
  const Dataset data = make_synthetic_dataset(test::small_data());
  ResNetSpec spec = test::small_resnet_spec();
  spec.width = 10;  // 5 pairs per layer: on 4 ranks the shards differ in size
  spec.head_width = 10;
  for (int ranks : {3, 4})
    for (DepthInit law : {DepthInit::iid, DepthInit::constant})
      for (bool antithetic : {false, true}) {
        spec.depth_init = law;
        ResNetModel whole(spec, data);
        ParticleState all = allocate_state(whole.groups(), false, "all");
        whole.initialize(all, 5, antithetic);
        const auto all_blocks = test::host(all.theta[0]);
        const int dim = whole.groups()[0].dim();
        std::vector<double> blocks(all_blocks.size(), 0), head;
        std::vector<int> seen(std::size_t(spec.depth * spec.width), 0);
        for (int rank = 0; rank < ranks; ++rank) {
          test::FakeShardComm comm(rank, ranks);
          ResNetModel part(spec, data, comm);
          ParticleState s = allocate_state(part.groups(), false, "part");
          part.initialize(s, 5, antithetic);
          const GroupSpec& g = part.groups()[0];
          EXPECT_EQ(g.slice_offset % 2, 0);
          EXPECT_EQ(part.groups()[1].slice_offset % 2, 0);
          EXPECT_GT(g.local_per_slice, 0);  // every rank holds part of every layer
          const auto b = test::host(s.theta[0]), h = test::host(s.theta[1]);
          // Local rows are layer-major: local_layer(l) is this rank's part of layer l, whose
          // global ids l·M + slice_offset + j hold the single-process rows.
          for (index_t l = 0; l < spec.depth; ++l) {
            const Shard rows = part.local_layer(l);
            EXPECT_EQ(rows.size(), g.local_per_slice);
            for (index_t k = rows.begin; k < rows.end; ++k) {
              const index_t id = l * spec.width + g.slice_offset + (k - rows.begin);
              EXPECT_EQ(g.rows().global_row(k), id);
              ++seen[std::size_t(id)];
              for (int c = 0; c < dim; ++c)
                blocks[std::size_t(id * dim + c)] = b[std::size_t(k * dim + c)];
            }
          }
          head.insert(head.end(), h.begin(), h.end());
        }
        EXPECT_EQ(blocks, all_blocks);
        EXPECT_EQ(head, test::host(all.theta[1]));
        for (int count : seen) EXPECT_EQ(count, 1);
      }
}

// M < 2P: the last of 3 ranks holds no block particle of any layer (2 pairs per layer), yet it
// tracks log-densities like the others and takes part in the evaluation.
TEST(ResNet, RankWithoutBlockParticlesStillTracksLogDensities) {
  const Dataset data = make_synthetic_dataset(test::small_data());
  ResNetSpec spec = test::small_resnet_spec();
  spec.width = 4;
  test::FakeShardComm comm(2, 3);
  ResNetModel part(spec, data, comm);
  ASSERT_EQ(part.groups()[0].local_count, 0);
  ParticleState s = allocate_state(part.groups(), true, "s");
  part.initialize(s, 5, false);
  set_initial_log_density(s, part.groups());
  EXPECT_TRUE(s.tracks_log_density());
  ParticleState v = allocate_like(s, "v");
  EXPECT_TRUE(v.tracks_log_density());
  EXPECT_TRUE(std::isfinite(double(test::evaluate(part, s, v)->loss)));
  EXPECT_EQ(part.local_layer(1).size(), 0);
}

}  // namespace
}  // namespace mfsim
