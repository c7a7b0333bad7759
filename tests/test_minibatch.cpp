// Stochastic gradients (flow/minibatch.hpp): the minibatch velocity is an unbiased estimate of the
// full-batch one, B >= n is the full batch bitwise, the draws are keyed by the step (a split run
// equals the run in one go), and online SGD follows the population flow.
#include <gtest/gtest.h>

#include <cmath>

#include "helpers.hpp"
#include "mfsim/diagnostics/loss_observer.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/models/resnet.hpp"
#include "mfsim/models/two_layer.hpp"
#include "recording_output.hpp"

namespace mfsim {
namespace {

struct Flow {
  Dataset data;
  std::unique_ptr<Model> model;
  ParticleState state;
  explicit Flow(bool resnet = false, SyntheticDataSpec spec = test::small_data(3, 20, 10)) {
    data = make_synthetic_dataset(spec);
    if (resnet) {
      ResNetSpec r;
      r.depth = 3, r.width = 8, r.head_width = 16;
      model = std::make_unique<ResNetModel>(r, data);
    } else {
      TwoLayerSpec t;
      t.width = 16;
      model = std::make_unique<TwoLayerModel>(t, data);
    }
    state = allocate_state(model->groups(), false, "s");
    model->initialize(state, 3, false);
  }
};

// The largest |mean − full batch| / standard error over the coordinates of group g's velocity, in
// 4000 steps' draws of B = 5 samples; a coordinate that no draw changes must equal the full batch's
// to 1e-12 instead.
double worst_minibatch_deviation(const Model& model, const ParticleState& state,
                                 const Dataset& data, std::size_t g) {
  ParticleState full = allocate_like(state, "full"), v = allocate_like(state, "v");
  test::evaluate(model, state, full);
  MinibatchSettings settings;
  settings.size = 5;
  settings.seed = 9;
  const MinibatchSampler sampler(settings, data);
  const auto e = model.make_evaluation(settings.size);
  const int draws = 4000;
  const std::vector<double> expected = test::host(full.theta[g]);
  std::vector<double> sum(expected.size()), sum2(expected.size());
  for (int step = 0; step < draws; ++step) {
    sampler.draw(step, *e);
    model.evaluate(state, *e, v);
    const std::vector<double> got = test::host(v.theta[g]);
    for (std::size_t i = 0; i < got.size(); ++i) sum[i] += got[i], sum2[i] += got[i] * got[i];
  }
  double worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double mean = sum[i] / draws, var = sum2[i] / draws - mean * mean;
    const double se = std::sqrt(std::max(var, 0.0) / draws);
    if (se > 1e-14)
      worst = std::max(worst, std::fabs(mean - expected[i]) / se);
    else
      EXPECT_NEAR(mean, expected[i], 1e-12);
  }
  return worst;
}

// E[v_B] = v: the mean of the minibatch velocities of 4000 steps' draws (B = 5 of n = 20) agrees
// with the full-batch velocity within 5 standard errors in every coordinate (both models).
TEST(Minibatch, VelocityIsAnUnbiasedEstimateOfTheFullBatch) {
  for (bool resnet : {false, true}) {
    Flow f(resnet);
    for (std::size_t g = 0; g < f.state.groups(); ++g) {
      const double worst = worst_minibatch_deviation(*f.model, f.state, f.data, g);
      EXPECT_LT(worst, 5.0) << (resnet ? "resnet" : "two_layer") << " group " << g;
    }
  }
}

// The same with c = 3 outputs, for both models (every group of model B), for the cross-entropy on
// class labels and the square loss on three targets a sample (the minibatch copies a sample's
// targets with it).
TEST(Minibatch, VectorOutputVelocityIsAnUnbiasedEstimateOfTheFullBatch) {
  for (bool resnet : {false, true}) {
    for (LossKind loss : {LossKind::cross_entropy, LossKind::square}) {
      const int c = 3;
      Dataset data = make_synthetic_dataset(test::small_data(3, 20, 0));
      auto y = Kokkos::create_mirror_view(Vector("y", loss == LossKind::square ? 20 * c : 20));
      for (std::size_t i = 0; i < y.extent(0); ++i)
        y(i) = loss == LossKind::square ? real(std::sin(1.0 + double(i))) : real(i % c);
      data.y_train = Kokkos::create_mirror_view_and_copy(MemSpace(), y);
      data.targets = loss == LossKind::square ? c : 1;
      data.classes = c;
      std::unique_ptr<Model> model;
      if (resnet) {
        ResNetSpec r;
        r.depth = 3, r.width = 8, r.head_width = 16, r.outputs = c, r.loss = loss;
        model = std::make_unique<ResNetModel>(r, data);
      } else {
        TwoLayerSpec t;
        t.width = 16, t.outputs = c, t.loss = loss;
        model = std::make_unique<TwoLayerModel>(t, data);
      }
      ParticleState state = allocate_state(model->groups(), false, "s");
      model->initialize(state, 3, false);
      for (std::size_t g = 0; g < state.groups(); ++g)
        EXPECT_LT(worst_minibatch_deviation(*model, state, data, g), 5.0)
            << (resnet ? "resnet" : "two_layer") << ", " << loss_name(loss) << ", group " << g;
    }
  }
}

std::vector<std::vector<double>> run(Flow& f, RunSettings r, std::vector<index_t> segments) {
  test::RecordingOutput out;
  for (index_t steps : segments) {
    r.steps = steps;
    const RunSummary s = run_flow(*f.model, f.state, r, {}, out);
    r.first_step = s.step;
    r.start_time = s.time;
  }
  std::vector<std::vector<double>> theta;
  for (const auto& t : f.state.theta) theta.push_back(test::host(t));
  return theta;
}

TEST(Minibatch, FullSizeIsTheFullBatchBitwiseAndDrawsAreKeyedByStep) {
  for (bool resnet : {false, true}) {
    RunSettings r;
    r.dt = 0.05;
    Flow a(resnet), b(resnet), c(resnet), d(resnet);
    const auto full = run(a, r, {30});
    r.minibatch.size = 20;  // = n_train
    EXPECT_EQ(run(b, r, {30}), full);
    r.minibatch.size = 4;
    const auto sgd = run(c, r, {30});
    EXPECT_NE(sgd, full);
    EXPECT_EQ(run(d, r, {10, 20}), sgd);  // a restart at step 10 draws what the run drew
  }
}

// Online SGD (B = 20 fresh samples per step) against the full-batch flow on n = 4000 samples of
// the same law (a proxy of the population flow): the test losses agree within 10 % along the
// way, while the loss moves by far more than that.
TEST(Minibatch, OnlineSgdFollowsThePopulationFlow) {
  SyntheticDataSpec spec = test::small_data(3, 4000, 500);
  spec.teacher_width = 3;
  Flow population(false, spec), online(false, spec);
  RunSettings r;
  r.dt = 0.02;
  r.steps = 500;
  r.observe_every = 100;
  LossObserver loss;
  test::RecordingOutput a, b;
  run_flow(*population.model, population.state, r, {&loss}, a);
  r.minibatch.size = 20;
  r.minibatch.online = true;
  r.minibatch.online_data = spec;
  run_flow(*online.model, online.state, r, {&loss}, b);
  const auto& pa = a["test_loss"].value;
  const auto& pb = b["test_loss"].value;
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i)
    EXPECT_NEAR(pb[i][0], pa[i][0], 0.1 * pa[i][0]) << "observation " << i;
  EXPECT_LT(pa.back()[0], 0.5 * pa.front()[0]);
}

}  // namespace
}  // namespace mfsim
