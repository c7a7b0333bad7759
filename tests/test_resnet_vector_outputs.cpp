// Model B with c = model.outputs > 1 (MATH.md §3.9: the head's output weights a_k ∈ R^c) against
// references written from the equations: a host network of c outputs and its losses (square on
// c targets a sample, cross-entropy on class labels), central differences of the loss for every
// parameter block, second differences of the potentials, the nc × nc Gram matrix from its
// definition G = LM J_θ J_θᵀ + K J_ω J_ωᵀ (J = ∂f/∂θ by central differences of the host network)
// and a dense eigensolver, the dissipation identity, the loss's derivative along the flow, the
// antithetic start and the weighted path norm with |a_k|₂.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>

#include "helpers.hpp"
#include "host_resnet.hpp"
#include "mfsim/core/host_copy.hpp"
#include "mfsim/diagnostics/eigenvalues.hpp"
#include "mfsim/models/resnet.hpp"

namespace mfsim {
namespace {

constexpr int samples = 7, dim = 3;

struct Problem {
  Dataset data;
  ResNetSpec spec;
  std::unique_ptr<ResNetModel> model;
  ParticleState state;
};

Problem make_problem(const ResNetSpec& spec, bool antithetic = false) {
  Problem p;
  p.data = test::vector_data(samples, dim, spec.outputs, spec.loss);
  p.spec = spec;
  p.model = std::make_unique<ResNetModel>(spec, p.data);
  p.state = allocate_state(p.model->groups(), true, "test");
  p.model->initialize(p.state, 11, antithetic);
  set_initial_log_density(p.state, p.model->groups());
  return p;
}

using test::HostResNet;

// The largest reference entry of a compared column must exceed this (a column of near-zeros
// would compare nothing).
constexpr double column_floor = 1e-4;

using ActivationPair = std::pair<std::string, std::string>;  // σ0, σh

class ResNetVectorOutputs : public ::testing::TestWithParam<ActivationPair> {
 protected:
  ResNetSpec spec(int c, LossKind loss) const {
    return test::small_resnet_spec(parse_activation(GetParam().first),
                                   parse_activation(GetParam().second), c, loss);
  }
};

// V = −LM ∇_θ L for the blocks and −K ∇_ω L for the head (B11), each parameter block (u, w, b,
// a, v) against central differences of the host loss, c ∈ {1, 3, 10}, both losses.
TEST_P(ResNetVectorOutputs, VelocityIsMinusScaledLossGradient) {
  for (int c : {1, 3, 10})
    for (LossKind loss : {LossKind::square, LossKind::cross_entropy}) {
      if (c == 1 && loss == LossKind::cross_entropy) continue;  // needs c ≥ 2
      Problem p = make_problem(spec(c, loss));
      ParticleState v = allocate_like(p.state, "v");
      const double value = test::evaluate(*p.model, p.state, v)->loss;
      const HostResNet net(p.data, p.spec);
      const auto blocks = test::host(p.state.theta[0]), head = test::host(p.state.theta[1]);
      EXPECT_NEAR(value, net.loss(blocks, head), test::tol(1e-13, 1e-5));
      const double h = test::is_double() ? 1e-5 : 1e-2;
      const auto fd_blocks = test::minus_scaled_gradient(
          blocks, [&](const auto& th) { return net.loss(th, head); }, double(net.L * net.M), h);
      const auto fd_head = test::minus_scaled_gradient(
          head, [&](const auto& th) { return net.loss(blocks, th); }, double(net.K), h);
      const auto vb = test::host(v.theta[0]), vh = test::host(v.theta[1]);
      const double tol = test::tol(1e-7, 2e-2);
      const int d = net.d;
      const std::string what = GetParam().first + "/" + GetParam().second +
                               " c=" + std::to_string(c) + " loss=" + loss_name(loss);
      EXPECT_LT(test::relative_block_error(vb, fd_blocks, net.DB(), 0, d, column_floor), tol)
          << "u " << what;
      EXPECT_LT(test::relative_block_error(vb, fd_blocks, net.DB(), d, d, column_floor), tol)
          << "w " << what;
      EXPECT_LT(test::relative_block_error(vb, fd_blocks, net.DB(), 2 * d, 1, column_floor), tol)
          << "b " << what;
      EXPECT_LT(test::relative_block_error(vh, fd_head, net.DH(), 0, c, column_floor), tol)
          << "a " << what;
      EXPECT_LT(test::relative_block_error(vh, fd_head, net.DH(), c, d, column_floor), tol)
          << "v " << what;
    }
}

// (B12) with c outputs: the Laplacians of Ψ^R(θ) = (α/n) Σ_i (p_{l+1,i}·u) σ0(w·z_{l,i} + b) and
// Ψ^H(ω) = (β/n) Σ_i (r_i·a) σh(v·z_{L,i}) in the particle's own variables, the mean field frozen.
TEST_P(ResNetVectorOutputs, LaplaciansAreTracesOfPotentialHessians) {
  if (!is_twice_differentiable(parse_activation(GetParam().first)) ||
      !is_twice_differentiable(parse_activation(GetParam().second)))
    GTEST_SKIP() << "σ'' is a Dirac mass";
  if (!test::is_double()) GTEST_SKIP() << "second differences need double precision";
  for (LossKind loss : {LossKind::square, LossKind::cross_entropy}) {
    Problem p = make_problem(spec(3, loss));
    ParticleState v = allocate_like(p.state, "v");
    test::evaluate(*p.model, p.state, v);
    const HostResNet net(p.data, p.spec);
    const auto blocks = test::host(p.state.theta[0]), head = test::host(p.state.theta[1]);
    const auto z = net.states(blocks);
    const auto r = net.residuals(net.outputs(blocks, head));
    const auto adj = net.adjoints(blocks, head, z, r);
    const double h = 1e-4;
    auto second_difference = [&](std::vector<double> th, auto&& potential) {
      double sum = 0;
      for (std::size_t j = 0; j < th.size(); ++j) {
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
      const double fd =
          second_difference(th, [&](const double* t) { return net.block_potential(t, l, z, adj); });
      EXPECT_NEAR(lap_blocks[k], fd, 1e-5 * (1 + std::fabs(fd))) << "block " << k;
      largest = std::fmax(largest, std::fabs(fd));
    }
    EXPECT_GT(largest, 1e-4) << loss_name(loss);
    largest = 0;
    for (index_t k = 0; k < net.K; ++k) {
      const std::vector<double> om(&head[k * net.DH()], &head[(k + 1) * net.DH()]);
      const double fd = second_difference(
          om, [&](const double* t) { return net.head_potential(t, z[net.L], r); });
      EXPECT_NEAR(lap_head[k], fd, 1e-5 * (1 + std::fabs(fd))) << "head " << k;
      largest = std::fmax(largest, std::fabs(fd));
    }
    EXPECT_GT(largest, 1e-4) << loss_name(loss);
  }
}

INSTANTIATE_TEST_SUITE_P(All, ResNetVectorOutputs,
                         ::testing::Values(ActivationPair{"tanh", "tanh"},
                                           ActivationPair{"softplus", "gelu"},
                                           ActivationPair{"erf", "sigmoid"},
                                           ActivationPair{"relu", "erf"}));

// The Gram parts against their definition G₁ = LM J_θ J_θᵀ, G₂ = K J_ω J_ωᵀ (rows i·c + j, J the
// Jacobian of the outputs by central differences of the host network), λ_min of the nc × nc sum
// against Eigen's dense solver, the dissipation identity per part, rᵀG_part r/n² = (1/N) Σ |v|²
// over the part's N particles, and the loss's derivative along the flow.
TEST(ResNetVectorOutputs, GramMatchesItsDefinitionAndTheDissipationIdentity) {
  if (!test::is_double()) GTEST_SKIP() << "the Jacobian by central differences needs double";
  for (LossKind loss : {LossKind::square, LossKind::cross_entropy}) {
    Problem p =
        make_problem(test::small_resnet_spec(ActivationKind::tanh, ActivationKind::erf, 3, loss));
    ParticleState v = allocate_like(p.state, "v");
    const auto e = test::evaluate(*p.model, p.state, v);
    const HostResNet net(p.data, p.spec);
    const int rows = net.n * net.c;
    const auto blocks = test::host(p.state.theta[0]), head = test::host(p.state.theta[1]);
    const double h = 1e-5;
    auto jacobian = [&](std::vector<double> th, bool is_blocks) {
      Eigen::MatrixXd J(rows, th.size());
      for (std::size_t q = 0; q < th.size(); ++q) {
        const double saved = th[q];
        th[q] = saved + h;
        const auto plus = is_blocks ? net.outputs(th, head) : net.outputs(blocks, th);
        th[q] = saved - h;
        const auto minus = is_blocks ? net.outputs(th, head) : net.outputs(blocks, th);
        th[q] = saved;
        for (int a = 0; a < rows; ++a) J(a, Eigen::Index(q)) = (plus[a] - minus[a]) / (2 * h);
      }
      return J;
    };
    const Eigen::MatrixXd Jb = jacobian(blocks, true), Jh = jacobian(head, false);
    const std::vector<Eigen::MatrixXd> reference = {double(net.L * net.M) * Jb * Jb.transpose(),
                                                    double(net.K) * Jh * Jh.transpose()};
    const auto r = test::host(e->residual);
    const std::vector<std::vector<double>> speeds = {test::host(v.theta[0]),
                                                     test::host(v.theta[1])};
    const std::vector<double> counts = {double(net.L * net.M), double(net.K)};
    Eigen::MatrixXd total = Eigen::MatrixXd::Zero(rows, rows);
    double dissipation = 0;
    for (int part = 0; part < 2; ++part) {
      Matrix gram("gram", rows, rows);
      Workspace scratch;
      p.model->accumulate_gram(p.state, *e, part, gram, scratch);
      const HostMatrix g = to_host(gram);
      Eigen::MatrixXd dense(rows, rows);
      for (int a = 0; a < rows; ++a)
        for (int b = 0; b < rows; ++b) dense(a, b) = double(g(a, b));
      const double scale = reference[part].cwiseAbs().maxCoeff();
      EXPECT_GT(scale, 1e-3);
      EXPECT_LT((dense - reference[part]).cwiseAbs().maxCoeff(), 1e-8 * scale)
          << loss_name(loss) << " part " << part;
      total += dense;
      // (A11) per part with r ∈ R^{nc}.
      double quadratic = 0, speed = 0;
      for (int a = 0; a < rows; ++a)
        for (int b = 0; b < rows; ++b) quadratic += r[a] * dense(a, b) * r[b];
      quadratic /= double(net.n) * net.n;
      for (double x : speeds[part]) speed += x * x;
      speed /= counts[part];
      EXPECT_NEAR(quadratic, speed, 1e-12 * speed) << loss_name(loss) << " part " << part;
      dissipation += speed;
    }
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(total);
    HostMatrix host_total("total", rows, rows);
    for (int a = 0; a < rows; ++a)
      for (int b = 0; b < rows; ++b) host_total(a, b) = real(total(a, b));
    const ExtremeEigenvalues ev = extreme_eigenvalues(host_total, EigenSolverKind::dense);
    EXPECT_NEAR(ev.min, eigen.eigenvalues()(0), 1e-12 * eigen.eigenvalues().cwiseAbs().maxCoeff());
    // dL/dt along the flow = −rᵀGr/n², by a central difference of the host loss.
    const double step = 1e-6;
    auto moved = [&](double t) {
      auto b = blocks, a = head;
      for (std::size_t j = 0; j < b.size(); ++j) b[j] += t * speeds[0][j];
      for (std::size_t j = 0; j < a.size(); ++j) a[j] += t * speeds[1][j];
      return net.loss(b, a);
    };
    const double slope = (moved(step) - moved(-step)) / (2 * step);
    EXPECT_NEAR(slope, -dissipation, 1e-7 * dissipation) << loss_name(loss);
  }
}

// With gram_layers, G₁'s layer terms sum to the part (each recomputes the sensitivities of every
// output for its layer alone).
TEST(ResNetVectorOutputs, GramLayersSumToTheBlocksPart) {
  Problem p = make_problem(test::small_resnet_spec(ActivationKind::tanh, ActivationKind::tanh, 4,
                                                   LossKind::cross_entropy));
  ParticleState v = allocate_like(p.state, "v");
  const auto e = test::evaluate(*p.model, p.state, v);
  const int rows = samples * 4;
  Matrix part("part", rows, rows), layers("layers", rows, rows);
  Workspace scratch;
  p.model->accumulate_gram(p.state, *e, 0, part, scratch);
  for (int l = 0; l < p.model->gram_layers(0); ++l)
    p.model->accumulate_gram_layer(ExecSpace(), p.state, *e, 0, l, layers, scratch);
  const auto a = test::host(part), b = test::host(layers);
  EXPECT_LT(test::max_abs_diff(a, b), test::tol(1e-13, 1e-5) * test::max_abs(a));
  EXPECT_GT(test::max_abs(a), 1e-3);
}

// Antithetic pairs (opposite a_k ∈ R^c, opposite u) start at the identity map with f ≡ 0.
TEST(ResNetVectorOutputs, AntitheticStartHasZeroOutputs) {
  Problem p = make_problem(test::small_resnet_spec(ActivationKind::tanh, ActivationKind::erf, 5,
                                                   LossKind::cross_entropy),
                           true);
  Vector f("f", samples * 5);
  p.model->predict(p.state, p.data.x_train, f);
  for (double value : test::host(f)) EXPECT_EQ(value, 0.0);
  // The output weights a_2 … a_c are drawn: not copies of a_1.
  const auto head = test::host(p.state.theta[1]);
  EXPECT_NE(head[0], head[1]);
}

// path_norm_weighted (MATH.md §3.8) with the head's path weights c_j = (β/K) Σ_k |a_k|₂ |v_kj|:
// with the residual branches switched off (α → 0) it is the head's path norm over v.
TEST(ResNetVectorOutputs, WeightedPathNormUsesTheEuclideanNormOfTheOutputWeights) {
  ResNetSpec spec =
      test::small_resnet_spec(ActivationKind::tanh, ActivationKind::tanh, 3, LossKind::square);
  spec.alpha = 1e-300;
  Problem p = make_problem(spec);
  Workspace scratch;
  const double norm = p.model->path_norms(ExecSpace(), p.state, scratch).at("path_norm_weighted");
  const auto head = test::host(p.state.theta[1]);
  double expected = 0;
  for (int k = 0; k < 6; ++k) {
    const double a2 = std::sqrt(head[k * 6] * head[k * 6] + head[k * 6 + 1] * head[k * 6 + 1] +
                                head[k * 6 + 2] * head[k * 6 + 2]);
    for (int j = 3; j < 6; ++j) expected += a2 * std::fabs(head[k * 6 + j]);
  }
  expected *= spec.beta / 6;
  EXPECT_NEAR(norm, expected, test::tol(1e-12, 1e-5) * expected);
}

}  // namespace
}  // namespace mfsim
