// Synthetic data: inputs on the sphere, the single-neuron teacher, label noise on the training
// targets only, random labels, reproducibility.
#include <gtest/gtest.h>

#include <cmath>

#include "helpers.hpp"
#include "mfsim/core/random.hpp"
#include "mfsim/data/synthetic.hpp"

namespace mfsim {
namespace {

TEST(SyntheticData, SphereInputsAndReluTeacher) {
  SyntheticDataSpec spec = test::small_data(4, 50, 30);
  const Dataset d = make_synthetic_dataset(spec);
  ASSERT_EQ(d.n_train(), 50);
  ASSERT_EQ(d.n_test(), 30);
  ASSERT_EQ(d.dim(), 4);
  const auto x = test::host(d.x_train), y = test::host(d.y_train);
  // Recover w* from the generator and check y = relu(w*·x) independently.
  const CounterRng rng(spec.seed, rng_teacher);
  for (int i = 0; i < 50; ++i) {
    double norm2 = 0, z = 0;
    for (int c = 0; c < 4; ++c) {
      norm2 += x[i * 4 + c] * x[i * 4 + c];
      z += rng.normal(0, c) * x[i * 4 + c];
    }
    EXPECT_NEAR(norm2, 1.0, test::tol(1e-14, 1e-6));
    EXPECT_NEAR(y[i], std::fmax(z, 0.0), test::tol(1e-14, 1e-6));
  }
}

TEST(SyntheticData, NoiseOnlyOnTrainingTargets) {
  SyntheticDataSpec clean = test::small_data(3, 2000, 2000), noisy = clean;
  noisy.noise = 0.5;
  const Dataset a = make_synthetic_dataset(clean), b = make_synthetic_dataset(noisy);
  const auto ya = test::host(a.y_train), yb = test::host(b.y_train);
  double var = 0;
  for (std::size_t i = 0; i < ya.size(); ++i) var += (yb[i] - ya[i]) * (yb[i] - ya[i]);
  EXPECT_NEAR(var / ya.size(), 0.25, 0.03);
  EXPECT_EQ(test::host(a.y_test), test::host(b.y_test));
  EXPECT_EQ(test::host(a.x_train), test::host(b.x_train));
}

TEST(SyntheticData, RandomLabelsAreBalancedSigns) {
  SyntheticDataSpec spec = test::small_data(3, 4000, 0);
  spec.target = TargetKind::random_labels;
  const auto y = test::host(make_synthetic_dataset(spec).y_train);
  double sum = 0;
  for (double v : y) {
    EXPECT_EQ(std::fabs(v), 1.0);
    sum += v;
  }
  EXPECT_LT(std::fabs(sum / y.size()), 0.05);
}

TEST(SyntheticData, GaussianInputsAndWideTeacher) {
  SyntheticDataSpec spec = test::small_data(6, 5000, 0);
  spec.inputs = InputDistribution::gaussian;
  spec.teacher_width = 16;
  spec.teacher_activation = {ActivationKind::tanh, 1};
  const Dataset d = make_synthetic_dataset(spec);
  const auto x = test::host(d.x_train);
  double norm2 = 0;
  for (double v : x) norm2 += v * v;
  EXPECT_NEAR(norm2 / 5000, 6.0, 0.2);  // E|x|² = d
  const auto y = test::host(d.y_train);
  EXPECT_GT(test::max_abs(y), 0.1);
}

TEST(SyntheticData, SameSeedSameData) {
  const SyntheticDataSpec spec = test::small_data();
  EXPECT_EQ(test::host(make_synthetic_dataset(spec).x_test),
            test::host(make_synthetic_dataset(spec).x_test));
  SyntheticDataSpec other = spec;
  other.seed += 1;
  EXPECT_NE(test::host(make_synthetic_dataset(spec).x_train),
            test::host(make_synthetic_dataset(other).x_train));
}

}  // namespace
}  // namespace mfsim
