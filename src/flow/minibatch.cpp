#include "mfsim/flow/minibatch.hpp"

#include "mfsim/core/random.hpp"

namespace mfsim {

MinibatchSampler::MinibatchSampler(const ExecSpace& space, const MinibatchSettings& settings,
                                   const Dataset& data)
    : settings_(settings), data_(data) {
  if (settings.online) online_.emplace(space, settings.online_data);
}

void MinibatchSampler::draw(const ExecSpace& space, index_t step, Evaluation& e) const {
  const index_t size = e.samples();
  if (online_) {
    // Samples step·B, ..., step·B + B − 1 of the law's own streams: never reused.
    online_->draw(space, std::uint64_t(step) * std::uint64_t(size), e.batch_x, e.batch_y);
    return;
  }
  const Matrix x = e.batch_x;
  const Vector y = e.batch_y;
  ConstMatrix x_train = data_.x_train;
  ConstVector y_train = data_.y_train;
  const index_t n = data_.n_train();
  const int dim = int(x.extent(1)), targets = data_.targets;
  const CounterRng rng(settings_.seed, rng_minibatch);
  Kokkos::parallel_for(
      "mfsim::Minibatch::draw", Kokkos::RangePolicy<ExecSpace>(space, 0, size),
      KOKKOS_LAMBDA(index_t j) {
        double u0, u1;
        rng.uniform2(std::uint64_t(step), std::uint32_t(j), u0, u1);
        const index_t drawn = index_t(u0 * double(n)), i = drawn < n ? drawn : n - 1;
        for (int c = 0; c < dim; ++c) x(j, c) = x_train(i, c);
        for (int t = 0; t < targets; ++t) y(j * targets + t) = y_train(i * targets + t);
      });
}

}  // namespace mfsim
