// Model A with c = model.outputs > 1 (MATH.md §1.5) against references written from the
// equations: finite differences of the square and cross-entropy losses, the trace of the
// potential's Hessian, the nc × nc Gram matrix from its definition and a dense eigensolver, the
// dissipation identity, the classification observables, and cross-entropy's c = 2 identity with
// the logistic loss.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <tuple>

#include "detail/two_layer_vector_kernels.hpp"
#include "execution_spaces.hpp"
#include "helpers.hpp"
#include "host_resnet.hpp"
#include "mfsim/core/host_copy.hpp"
#include "mfsim/diagnostics/classification_observer.hpp"
#include "mfsim/diagnostics/eigenvalues.hpp"
#include "mfsim/models/two_layer.hpp"

namespace mfsim {
namespace {

Vector device(const std::vector<double>& values, const std::string& label) {
  Vector v(label, values.size());
  auto h = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < values.size(); ++i) h(i) = real(values[i]);
  Kokkos::deep_copy(v, h);
  return v;
}

using test::vector_data;

struct Problem {
  Dataset data;
  TwoLayerSpec spec;
  std::unique_ptr<TwoLayerModel> model;
  ParticleState state;
};

Problem make_problem(ActivationKind act, int c, LossKind loss, bool bias = true, index_t width = 6,
                     bool antithetic = false) {
  Problem p;
  p.data = vector_data(9, 3, c, loss);
  p.spec.loss = loss;
  p.spec.outputs = c;
  p.spec.width = width;
  p.spec.beta = 1.7;
  p.spec.bias = bias;
  p.spec.activation = {act, real(1.5)};
  p.spec.std_b = 0.5;
  p.model = std::make_unique<TwoLayerModel>(p.spec, p.data);
  p.state = allocate_state(p.model->groups(), true, "test");
  p.model->initialize(p.state, 11, antithetic);
  set_initial_log_density(p.state, p.model->groups());
  return p;
}

// The network and its loss on the host (test::HostUnit, MATH.md (A1) and §1.5): the inputs z
// carry the bias as a last coordinate equal to 1.
struct HostNetwork {
  test::HostUnit unit;
  std::vector<double> z, y;
  int n;
  double beta;
  LossKind loss_kind;

  explicit HostNetwork(const Problem& p)
      : unit{p.data.dim() + (p.spec.bias ? 1 : 0), p.spec.outputs, p.spec.activation},
        y(test::host(p.data.y_train)),
        n(int(p.data.n_train())),
        beta(p.spec.beta),
        loss_kind(p.spec.loss) {
    const std::vector<double> x = test::host(p.data.x_train);
    const int d = p.data.dim();
    for (int i = 0; i < n; ++i) {
      z.insert(z.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
      if (p.spec.bias) z.push_back(1.0);
    }
  }

  int D() const { return unit.D(); }
  double loss(const std::vector<double>& th) const {
    const int m = int(th.size()) / D();
    return test::host_loss(loss_kind, unit.outputs(th, z, beta / m), y, unit.c);
  }
  // Ψ(θ) = (β/n) Σ_i (r_i·a) σ(w·x_i + b) for particle row k of th, the residuals fixed.
  double potential(const std::vector<double>& th, int k, const std::vector<double>& r) const {
    return unit.potential(&th[std::size_t(k) * D()], z, r, beta / n);
  }
};

class VectorOutputs : public ::testing::TestWithParam<std::string> {};

TEST_P(VectorOutputs, VelocityIsMinusWidthTimesLossGradient) {
  const ActivationKind act = parse_activation(GetParam());
  for (int c : {1, 3, 10})
    for (LossKind loss : {LossKind::square, LossKind::cross_entropy})
      for (bool bias : {true, false}) {
        if (c == 1 && loss == LossKind::cross_entropy) continue;  // needs c ≥ 2
        Problem p = make_problem(act, c, loss, bias);
        ParticleState v = allocate_like(p.state, "v");
        const double value = test::evaluate(*p.model, p.state, v)->loss;
        const HostNetwork net(p);
        const auto th = test::host(p.state.theta[0]), vel = test::host(v.theta[0]);
        EXPECT_NEAR(value, net.loss(th), test::tol(1e-13, 1e-5));
        const double h = 1e-5;
        std::vector<double> fd(th.size());
        for (std::size_t j = 0; j < th.size(); ++j) {
          auto plus = th, minus = th;
          plus[j] += h, minus[j] -= h;
          fd[j] = -6 * (net.loss(plus) - net.loss(minus)) / (2 * h);
        }
        EXPECT_LT(test::max_abs_diff(vel, fd), test::tol(1e-7, 1e-4) * test::max_abs(fd))
            << GetParam() << " c=" << c << " loss=" << loss_name(loss) << " bias=" << bias;
      }
}

TEST_P(VectorOutputs, LaplacianIsTraceOfPotentialHessian) {
  const ActivationKind act = parse_activation(GetParam());
  if (!is_twice_differentiable(act)) GTEST_SKIP() << "σ'' is a Dirac mass";
  for (LossKind loss : {LossKind::square, LossKind::cross_entropy}) {
    Problem p = make_problem(act, 3, loss);
    ParticleState v = allocate_like(p.state, "v");
    const auto e = test::evaluate(*p.model, p.state, v);
    const HostNetwork net(p);
    const auto th = test::host(p.state.theta[0]), lap = test::host(v.log_density[0]);
    const auto r = test::host(e->residual);
    const double h = 1e-4;
    for (int k = 0; k < 6; ++k) {
      double fd = 0;
      for (int j = 0; j < net.D(); ++j) {
        auto plus = th, minus = th;
        plus[k * net.D() + j] += h, minus[k * net.D() + j] -= h;
        fd +=
            (net.potential(plus, k, r) - 2 * net.potential(th, k, r) + net.potential(minus, k, r)) /
            (h * h);
      }
      EXPECT_NEAR(lap[k], fd, test::tol(1e-5, 1e-4) * (1 + std::fabs(fd)))
          << GetParam() << " particle " << k << " loss=" << loss_name(loss);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Activations, VectorOutputs,
                         ::testing::Values("relu", "tanh", "sigmoid", "softplus", "erf", "gelu"));

TEST(VectorOutputs, CrossEntropyOfTwoClassesIsLogisticOfTheDifference) {
  // ℓ_CE(f, y) = log(1 + e^{−s(f₁ − f₀)}) with s = +1 for class 1, −1 for class 0 (MATH.md §1.5),
  // and its gradient (−ℓ', ℓ') with ℓ' the logistic derivative in f₁ − f₀.
  std::vector<double> f, y, fd, ys;
  for (double a : {-30.0, -2.0, -0.3, 0.0, 0.7, 4.0, 35.0})
    for (double b : {-1.0, 0.0, 2.5})
      for (int label : {0, 1}) {
        f.push_back(b), f.push_back(a + b);
        y.push_back(label);
        fd.push_back(a);
        ys.push_back(label == 1 ? 1.0 : -1.0);
      }
  const Vector ce_grad("ce_grad", f.size()), lg_grad("lg_grad", fd.size());
  const double ce =
      loss_and_derivative(LossKind::cross_entropy, device(f, "f"), device(y, "y"), ce_grad, 2);
  const double lg =
      loss_and_derivative(LossKind::logistic, device(fd, "fd"), device(ys, "ys"), lg_grad);
  EXPECT_NEAR(ce, lg, 1e-14 * std::fabs(lg));
  const auto g = test::host(ce_grad), l = test::host(lg_grad);
  for (std::size_t i = 0; i < l.size(); ++i) {
    EXPECT_NEAR(g[2 * i + 1], l[i], 1e-15) << i;
    EXPECT_NEAR(g[2 * i], -l[i], 1e-15) << i;
  }
}

TEST(VectorOutputs, CrossEntropyIsStableForLargeOutputs) {
  // log Σ e^{f_j} of outputs near 1e3 overflows e^{f}; the shifted form does not.
  const std::vector<double> f = {1000, 999, 990, -1000, -999, -990};
  const Vector grad("grad", 6);
  const double loss =
      loss_and_derivative(LossKind::cross_entropy, device(f, "f"), device({1, 0}, "y"), grad, 3);
  const double first = 1 + std::log(1 + std::exp(-1.0) + std::exp(-10.0));    // label 1 of row 0
  const double second = 10 + std::log(1 + std::exp(-9.0) + std::exp(-10.0));  // label 0 of row 1
  EXPECT_NEAR(loss, (first + second) / 2, 1e-12);
  for (double g : test::host(grad)) EXPECT_TRUE(std::isfinite(g));
}

TEST(VectorOutputs, GramMatchesItsDefinitionAndTheDissipationIdentity) {
  for (LossKind loss : {LossKind::square, LossKind::cross_entropy}) {
    Problem p = make_problem(ActivationKind::tanh, 3, loss, true, 10);
    ParticleState v = allocate_like(p.state, "v");
    const auto e = test::evaluate(*p.model, p.state, v);
    const HostNetwork net(p);
    const int n = net.n, c = net.unit.c, D = net.D(), width = net.unit.width, m = 10;
    Matrix gram("gram", n * c, n * c);
    Workspace scratch;
    p.model->accumulate_gram(p.state, *e, 0, gram, scratch);
    const HostMatrix g = to_host(gram);
    // G_{(i,j),(i',j')} = (β²/m) Σ_k [δ_jj' σσ' + a_kj a_kj' σ'σ' x̃·x̃'] (MATH.md §1.5), with σ'
    // by a central difference of σ.
    const auto th = test::host(p.state.theta[0]);
    const auto sigma = [&](double z) {
      return test::sigma(net.unit.act, z);
    };
    const auto dsigma = [&](double z) {
      return (sigma(z + 1e-6) - sigma(z - 1e-6)) / 2e-6;
    };
    Eigen::MatrixXd dense(n * c, n * c);
    double worst = 0;
    for (int i = 0; i < n; ++i)
      for (int i2 = 0; i2 < n; ++i2) {
        double xx = 0;  // x̃·x̃', the bias coordinates included
        for (int q = 0; q < width; ++q) xx += net.z[i * width + q] * net.z[i2 * width + q];
        for (int j = 0; j < c; ++j)
          for (int j2 = 0; j2 < c; ++j2) {
            double sum = 0;
            for (int k = 0; k < m; ++k) {
              const double z = double(net.unit.pre(&th[k * D], net.z, i));
              const double z2 = double(net.unit.pre(&th[k * D], net.z, i2));
              sum += (j == j2 ? sigma(z) * sigma(z2) : 0.0) +
                     th[k * D + j] * th[k * D + j2] * dsigma(z) * dsigma(z2) * xx;
            }
            const double ref = net.beta * net.beta / m * sum;
            dense(i * c + j, i2 * c + j2) = double(g(i * c + j, i2 * c + j2));
            worst = std::max(worst, std::fabs(double(g(i * c + j, i2 * c + j2)) - ref));
          }
      }
    EXPECT_LT(worst, 1e-8) << loss_name(loss);
    // λ_min of the nc × nc matrix against Eigen's dense solver.
    const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eigen(dense);
    const ExtremeEigenvalues ev = extreme_eigenvalues(g, EigenSolverKind::dense);
    EXPECT_NEAR(ev.min, eigen.eigenvalues()(0), 1e-12 * eigen.eigenvalues().cwiseAbs().maxCoeff());
    // (A11) with r ∈ R^{nc}: rᵀGr/n² = (1/m) Σ_k |v_k|².
    const auto r = test::host(e->residual), vel = test::host(v.theta[0]);
    double quadratic = 0, speed = 0;
    for (int a = 0; a < n * c; ++a)
      for (int b = 0; b < n * c; ++b) quadratic += r[a] * double(g(a, b)) * r[b];
    quadratic /= double(n) * n;
    for (double x : vel) speed += x * x;
    speed /= m;
    EXPECT_NEAR(quadratic, speed, 1e-12 * speed) << loss_name(loss);
  }
}

TEST(VectorOutputs, AntitheticPairsGiveZeroOutputs) {
  Problem p = make_problem(ActivationKind::tanh, 4, LossKind::cross_entropy, true, 12, true);
  Vector f("f", 9 * 4);
  p.model->predict(p.state, p.data.x_train, f);
  for (double v : test::host(f)) EXPECT_EQ(v, 0.0);
}

TEST(VectorOutputs, AccuracyAndMarginByArgmax) {
  // Three samples of c = 3: argmax 2 (label 2, margin 0.5), argmax 0 (label 1, margin −1), a tie
  // between 0 and 1 (first wins: label 0 is right, margin 0).
  const std::vector<double> f = {0.1, 0.2, 0.7, 1.0, 0.0, -1.0, 0.4, 0.4, 0.1};
  const Vector fv = device(f, "f");
  EXPECT_DOUBLE_EQ(accuracy(ExecSpace(), fv, device({2, 1, 0}, "y"), 3, 1), 2.0 / 3);
  EXPECT_DOUBLE_EQ(margin(ExecSpace(), fv, device({2, 1, 0}, "y"), 3, 1), -1.0);
  // One-hot rows: the class is the row's argmax.
  const Vector onehot = device({0, 0, 1, 0, 1, 0, 1, 0, 0}, "onehot");
  EXPECT_DOUBLE_EQ(accuracy(ExecSpace(), fv, onehot, 3, 3), 2.0 / 3);
  EXPECT_DOUBLE_EQ(margin(ExecSpace(), device({0.1, 0.2, 0.7}, "f1"), device({2}, "y1"), 3, 1),
                   0.7 - 0.2);
}

// The kernels alone, on each execution space (TypeParam) of the build.
template <class Space>
class TwoLayerVectorKernels : public ::testing::Test {};
TYPED_TEST_SUITE(TwoLayerVectorKernels, test::ExecutionSpaces);

// The forward pass and the velocity with its Laplacian of c = 3 outputs against the host unit
// (inputs x̃ = (x, 1) with a bias), at sizes straddling the tiles: n = 101 samples make two full
// velocity chunks of 48 and a ragged one, m = 142 particles two full velocity tiles of 64 and a
// ragged one and forward chunks of 60; inputs, parameters and residuals without structure (sin of
// their indices) that a tiling bug could hide in.
TYPED_TEST(TwoLayerVectorKernels, ForwardAndVelocityMatchTheFormulasAcrossTilesAndChunks) {
  const TypeParam space;
  const activations::Tanh act;
  const int d = 7, n = 101, m = 142, c = 3;
  const real scale = real(0.37), coeff = real(1.3) / n;
  for (bool bias : {true, false}) {
    const int dz = d + (bias ? 1 : 0);
    const test::HostUnit unit{dz, c, Activation(ActivationKind::tanh, 1)};
    std::vector<double> x(n * d), x_ext, th(m * unit.D()), r(n * c);
    for (int i = 0; i < n * d; ++i) x[i] = std::sin(1.0 + 0.73 * i);
    for (int i = 0; i < m * unit.D(); ++i) th[i] = 0.8 * std::sin(2.0 + 1.37 * i);
    for (int i = 0; i < n * c; ++i) r[i] = std::sin(3.0 + 0.41 * i * i);
    for (int i = 0; i < n; ++i) {
      x_ext.insert(x_ext.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
      if (bias) x_ext.push_back(1);
    }
    Matrix x_dev("x", n, d), theta("theta", m, unit.D()), v("v", m, unit.D());
    test::set(x_dev, x);
    test::set(theta, th);
    const Vector r_dev = device(r, "r");
    Vector f("f", n * c), norm2("norm2", n), lap("lap", m);
    Workspace scratch;
    detail::two_layer_vector_forward(space, "test::forward", theta, x_dev, f, scale, bias, act, c);
    const tiles::SamplePanels samples = tiles::pack_samples(space, x_dev, bias);
    detail::squared_row_norms(space, x_dev, bias ? real(1) : real(0), norm2);
    detail::two_layer_vector_velocity<true>(space, "test::velocity", theta, samples, r_dev, norm2,
                                            v, lap, coeff, act, c, scratch);
    space.fence();

    const std::vector<double> f_ref = unit.outputs(th, x_ext, scale);
    const std::vector<double> sums = unit.velocities(th, x_ext, r, coeff);
    std::vector<double> v_ref, lap_ref;
    for (int k = 0; k < m; ++k) {
      const auto row = sums.begin() + k * (unit.D() + 1);
      v_ref.insert(v_ref.end(), row, row + unit.D());
      lap_ref.push_back(row[unit.D()]);
    }
    const double tol = test::tol(1e-13, 1e-5);
    const std::string what = bias ? "bias" : "no bias";
    for (const auto& [got, expected, name] :
         {std::make_tuple(test::host(f), f_ref, "outputs"),
          std::make_tuple(test::host(v), v_ref, "velocities"),
          std::make_tuple(test::host(lap), lap_ref, "Laplacians")}) {
      EXPECT_GT(test::max_abs(expected), 1e-3) << name << ", " << what;
      EXPECT_LT(test::max_abs_diff(got, expected), tol * test::max_abs(expected))
          << name << ", " << what;
    }
  }
}

}  // namespace
}  // namespace mfsim
