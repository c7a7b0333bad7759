#include "mfsim/data/synthetic.hpp"

#include <cmath>

#include "mfsim/core/random.hpp"

namespace mfsim {
namespace {

// Teacher rows (w*_j, a*_j): [width][dim + 1].
// Every kernel of this file runs on the instance `space` it is given.
Matrix make_teacher(const ExecSpace& space, const SyntheticDataSpec& spec) {
  const int dim = spec.dim, width = spec.teacher_width;
  const Matrix teacher(Kokkos::view_alloc(space, "mfsim::SyntheticData::teacher"), width, dim + 1);
  const CounterRng rng(spec.seed, rng_teacher);
  Kokkos::parallel_for(
      "mfsim::SyntheticData::teacher", Kokkos::RangePolicy<ExecSpace>(space, 0, width),
      KOKKOS_LAMBDA(index_t j) {
        for (int c = 0; c < dim; ++c) teacher(j, c) = real(rng.normal(std::uint64_t(j), c));
        teacher(j, dim) = width == 1 ? real(1) : real(rng.normal(std::uint64_t(j), dim));
      });
  return teacher;
}

// √ of the covariance diagonal on the device (no entries for N(0, I_d)), copied on `space`: a
// sampler made inside a run (online minibatches) fences nothing else.
Vector input_scales(const ExecSpace& space, const SyntheticDataSpec& spec) {
  const Vector scales =
      uninitialized<Vector>("mfsim::SyntheticData::input_scales", spec.covariance_diagonal.size());
  auto host = Kokkos::create_mirror_view(scales);
  for (std::size_t c = 0; c < spec.covariance_diagonal.size(); ++c)
    host(c) = real(std::sqrt(spec.covariance_diagonal[c]));
  Kokkos::deep_copy(space, scales, host);
  return scales;
}

// Sample i of x is item first_id + i of the stream; coordinate c is multiplied by scales(c)
// when there are scales (a diagonal covariance).
void fill_inputs(const ExecSpace& space, Matrix x, const SyntheticDataSpec& spec,
                 ConstVector scales, RngStream stream, std::uint64_t first_id = 0) {
  const int dim = spec.dim;
  const bool sphere = spec.inputs == InputDistribution::sphere;
  const bool scaled = scales.extent(0) > 0;
  const CounterRng rng(spec.seed, stream);
  Kokkos::parallel_for(
      "mfsim::SyntheticData::inputs",
      Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(x.extent(0))), KOKKOS_LAMBDA(index_t i) {
        double norm2 = 0;
        for (int c = 0; c < dim; ++c) {
          const double z = rng.normal(first_id + std::uint64_t(i), c);
          x(i, c) = real(z);
          norm2 += z * z;
        }
        if (sphere) {
          const double inv = 1.0 / math::sqrt(norm2);
          for (int c = 0; c < dim; ++c) x(i, c) = real(double(x(i, c)) * inv);
        }
        if (scaled)
          for (int c = 0; c < dim; ++c) x(i, c) *= scales(c);
      });
}

template <class Act>
void fill_teacher_targets(const ExecSpace& space, Vector y, ConstMatrix x, ConstMatrix teacher,
                          Act act) {
  const int dim = int(x.extent(1)), width = int(teacher.extent(0));
  const real scale = real(teacher_output_scale(width));
  Kokkos::parallel_for(
      "mfsim::SyntheticData::teacher_targets",
      Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(x.extent(0))), KOKKOS_LAMBDA(index_t i) {
        real sum = 0;
        for (int j = 0; j < width; ++j) {
          real z = 0;
          for (int c = 0; c < dim; ++c) z += teacher(j, c) * x(i, c);
          sum += teacher(j, dim) * act.value(z);
        }
        y(i) = scale * sum;
      });
}

void fill_targets(const ExecSpace& space, Vector y, ConstMatrix x, const SyntheticDataSpec& spec,
                  ConstMatrix teacher, RngStream label_stream, double noise,
                  std::uint64_t first_id = 0) {
  const CounterRng rng(spec.seed, label_stream);
  if (spec.target == TargetKind::random_labels) {
    Kokkos::parallel_for(
        "mfsim::SyntheticData::random_labels",
        Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(y.extent(0))), KOKKOS_LAMBDA(index_t i) {
          double u0, u1;
          rng.uniform2(first_id + std::uint64_t(i), 0, u0, u1);
          y(i) = u0 < 0.5 ? real(-1) : real(1);
        });
  } else {
    with_activation(spec.teacher_activation,
                    [&](auto act) { fill_teacher_targets(space, y, x, teacher, act); });
  }
  if (noise > 0) {
    const real sd = real(noise);
    Kokkos::parallel_for(
        "mfsim::SyntheticData::label_noise",
        Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(y.extent(0))), KOKKOS_LAMBDA(index_t i) {
          y(i) += sd * real(rng.normal(first_id + std::uint64_t(i), 2));
        });
  }
  if (spec.sign_labels)
    Kokkos::parallel_for(
        "mfsim::SyntheticData::sign_labels",
        Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(y.extent(0))),
        KOKKOS_LAMBDA(index_t i) { y(i) = y(i) < 0 ? real(-1) : real(1); });
}

}  // namespace

SyntheticSampler::SyntheticSampler(const ExecSpace& space, const SyntheticDataSpec& spec)
    : spec_(spec), teacher_(make_teacher(space, spec)), input_scales_(input_scales(space, spec)) {}

void SyntheticSampler::draw(const ExecSpace& space, std::uint64_t first_id, Matrix x,
                            Vector y) const {
  fill_inputs(space, x, spec_, input_scales_, rng_online_inputs, first_id);
  fill_targets(space, y, x, spec_, teacher_, rng_online_labels, spec_.noise, first_id);
}

Matrix synthetic_teacher(const SyntheticDataSpec& spec) {
  return make_teacher(ExecSpace(), spec);
}

Matrix synthetic_probe(const SyntheticDataSpec& spec, index_t count) {
  const Matrix x = uninitialized<Matrix>("mfsim::Dataset::probe", count, spec.dim);
  const ExecSpace space;
  fill_inputs(space, x, spec, input_scales(space, spec), rng_probe_inputs);
  return x;
}

Dataset make_synthetic_dataset(const SyntheticDataSpec& spec) {
  Dataset d;
  d.x_train = uninitialized<Matrix>("mfsim::Dataset::x_train", spec.n_train, spec.dim);
  d.y_train = uninitialized<Vector>("mfsim::Dataset::y_train", spec.n_train);
  d.x_test = uninitialized<Matrix>("mfsim::Dataset::x_test", spec.n_test, spec.dim);
  d.y_test = uninitialized<Vector>("mfsim::Dataset::y_test", spec.n_test);
  const ExecSpace space;
  const Matrix teacher = make_teacher(space, spec);
  const Vector scales = input_scales(space, spec);
  fill_inputs(space, d.x_train, spec, scales, rng_train_inputs);
  fill_inputs(space, d.x_test, spec, scales, rng_test_inputs);
  fill_targets(space, d.y_train, d.x_train, spec, teacher, rng_train_labels, spec.noise);
  fill_targets(space, d.y_test, d.x_test, spec, teacher, rng_test_labels, 0);
  return d;
}

}  // namespace mfsim
