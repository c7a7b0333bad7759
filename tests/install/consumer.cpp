// Uses only the installed public headers: a two-layer ReLU network on synthetic data, its
// prediction checked against the formula of MATH.md §2, f(x) = (β/m) Σ_k a_k σ(w_k·x + b_k),
// computed here on the host; then a few Euler steps of the flow, which must lower the loss.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "mfsim/data/synthetic.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/models/two_layer.hpp"

namespace {

class NoOutput final : public mfsim::RunOutput {
 public:
  void append_particles(const mfsim::ExecSpace&, mfsim::index_t, double,
                        const mfsim::ParticleState&) override {}
  void append_observable(const std::string&, mfsim::index_t, double, const std::vector<double>&,
                         const std::vector<std::size_t>&) override {}
};

int check() {
  using namespace mfsim;
  SyntheticDataSpec data_spec;
  data_spec.dim = 3;
  data_spec.n_train = 20;
  data_spec.n_test = 5;
  const Dataset data = make_synthetic_dataset(data_spec);
  TwoLayerSpec spec;
  spec.width = 50;
  spec.beta = 2;
  spec.activation.kind = ActivationKind::relu;
  const TwoLayerModel model(spec, data);
  ParticleState state = allocate_state(model.groups(), false, "consumer::state");
  model.initialize(state, 7, false);

  Vector f("consumer::f", data.n_test());
  model.predict(state, data.x_test, f);
  const auto theta = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), state.theta[0]);
  const auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), data.x_test);
  const auto f_host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f);
  double worst = 0;
  for (index_t i = 0; i < data.n_test(); ++i) {
    double sum = 0;
    for (index_t k = 0; k < spec.width; ++k) {
      double u = theta(k, data_spec.dim + 1);  // b
      for (int c = 0; c < data_spec.dim; ++c) u += theta(k, 1 + c) * x(i, c);
      sum += theta(k, 0) * std::max(u, 0.0);
    }
    worst = std::max(worst, std::abs(f_host(i) - spec.beta * sum / double(spec.width)));
  }
  std::printf("prediction vs host formula: max |difference| = %.3g\n", worst);
  if (!(worst < 1e4 * std::numeric_limits<real>::epsilon())) return 1;

  RunSettings settings;
  settings.dt = 0.05;
  settings.steps = 20;
  NoOutput output;
  const RunSummary run = run_flow(model, state, settings, {}, output);
  std::printf("loss %.6g -> %.6g in %lld steps\n", run.initial_loss, run.loss,
              static_cast<long long>(run.steps_run));
  return run.loss < run.initial_loss ? 0 : 1;
}

}  // namespace

int main(int argc, char* argv[]) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  return check();
}
