// The loss choice (models/loss.hpp): the logistic loss and its derivative against closed forms and
// finite differences, stable for large |f|; the square loss unchanged; classification labels and
// observables.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "helpers.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/diagnostics/classification_observer.hpp"
#include "mfsim/io/config.hpp"
#include "mfsim/models/loss.hpp"

namespace mfsim {
namespace {

using ::testing::HasSubstr;

Vector device(const std::vector<double>& values) {
  Vector v("v", values.size());
  auto h = Kokkos::create_mirror_view(v);
  for (std::size_t i = 0; i < values.size(); ++i) h(i) = real(values[i]);
  Kokkos::deep_copy(v, h);
  return v;
}

TEST(Loss, LogisticMatchesTheClosedFormAndItsDerivative) {
  for (double y : {-1.0, 1.0})
    for (double f : {-3.0, -0.4, 0.0, 0.7, 2.5}) {
      EXPECT_NEAR(logistic_loss(f, y), std::log(1 + std::exp(-y * f)), 1e-15);
      const double h = 1e-6;
      const double fd = (logistic_loss(f + h, y) - logistic_loss(f - h, y)) / (2 * h);
      EXPECT_NEAR(logistic_derivative(f, y), fd, 1e-9);
      EXPECT_NEAR(logistic_derivative(f, y), -y / (1 + std::exp(y * f)), 1e-15);
    }
}

// log(1 + e^{−yf}) overflows naively at yf = −710 and loses everything to cancellation at yf = 40;
// the softplus form is exact at both ends.
TEST(Loss, LogisticIsStableForLargeOutputs) {
  EXPECT_DOUBLE_EQ(logistic_loss(-1000, 1), 1000);
  EXPECT_DOUBLE_EQ(logistic_loss(1000, -1), 1000);
  EXPECT_DOUBLE_EQ(logistic_loss(40, 1), std::exp(-40.0));  // log1p(e^{−40}) = e^{−40} to rounding
  EXPECT_EQ(logistic_loss(1000, 1), 0);
  EXPECT_DOUBLE_EQ(logistic_derivative(-1000, 1), -1);
  EXPECT_DOUBLE_EQ(logistic_derivative(1000, -1), 1);
  EXPECT_DOUBLE_EQ(logistic_derivative(40, 1), -std::exp(-40.0) / (1 + std::exp(-40.0)));
  EXPECT_TRUE(std::isfinite(logistic_derivative(1e300, -1)));
}

TEST(Loss, MeanAndDerivativeOverSamples) {
  const std::vector<double> f{0.3, -2.0, 5.0}, y{1, 1, -1};
  const Vector dl("dl", 3);
  const double mean = loss_and_derivative(LossKind::logistic, device(f), device(y), dl);
  double expected = 0;
  for (int i = 0; i < 3; ++i) expected += std::log(1 + std::exp(-y[i] * f[i])) / 3;
  EXPECT_NEAR(mean, expected, test::tol(1e-15, 1e-6));
  const std::vector<double> got = test::host(ConstVector(dl));
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(got[i], -y[i] / (1 + std::exp(y[i] * f[i])), test::tol(1e-15, 1e-7));
  // The square loss: r = f − y and |r|²/(2n).
  const double square = loss_and_derivative(LossKind::square, device(f), device(y), dl);
  EXPECT_NEAR(square, (0.49 + 9.0 + 36.0) / 6, test::tol(1e-14, 1e-5));
  EXPECT_NEAR(test::host(ConstVector(dl))[2], 6.0, 1e-6);
}

TEST(Loss, AccuracyAndMargin) {
  const std::vector<double> f{0.3, -2.0, 5.0, 0.0}, y{1, 1, -1, 1};
  EXPECT_DOUBLE_EQ(accuracy(device(f), device(y)), 0.25);  // f = 0 counts as wrong
  EXPECT_NEAR(margin(device(f), device(y)), -5.0, 1e-6);
}

using test::config_error;

TEST(Loss, ConfigAndSyntheticLabels) {
  EXPECT_THAT(config_error("[model]\nloss = \"hinge\"\n"), HasSubstr("model.loss"));
  const Config c = parse_config("[model]\nloss = \"logistic\"\n[data]\nteacher_width = 4\n");
  EXPECT_EQ(c.model.loss_kind(), LossKind::logistic);
  EXPECT_EQ(parse_config("[model]\nkind = \"resnet\"\nloss = \"logistic\"\n").model.loss_kind(),
            LossKind::logistic);
  EXPECT_TRUE(c.data.synthetic.sign_labels);
  // The teacher's outputs become their signs, on both sets, with both classes present.
  const Dataset d = make_synthetic_dataset(c.data.synthetic);
  for (const auto& y : {test::host(ConstVector(d.y_train)), test::host(ConstVector(d.y_test))}) {
    int plus = 0;
    for (double v : y) {
      ASSERT_TRUE(v == 1 || v == -1) << v;
      plus += v > 0;
    }
    EXPECT_GT(plus, 0);
    EXPECT_LT(plus, int(y.size()));
  }
  EXPECT_FALSE(parse_config("").data.synthetic.sign_labels);
}

}  // namespace
}  // namespace mfsim
