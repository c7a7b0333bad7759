#include "mfsim/models/population.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "detail/population_kernel.hpp"

namespace mfsim {
namespace {

// The Polynomial kernel of σ = Σ c_i He_i against σ' = Σ other_i He_i.
gaussian_kernels::Polynomial polynomial_kernel(const Activation& a, const Activation& other) {
  const std::vector<double> c = hermite_coefficients(a), o = hermite_coefficients(other);
  gaussian_kernels::Polynomial p;
  p.degree = int(std::max(c.size(), o.size())) - 1;
  for (std::size_t i = 0; i < c.size(); ++i) p.c[i] = real(c[i]);
  for (std::size_t i = 0; i < o.size(); ++i) p.other[i] = real(o[i]);
  return p;
}

template <class Moments>
gaussian_kernels::HermiteLink<Moments> link_kernel(const Activation& teacher) {
  const std::vector<double> c = hermite_coefficients(teacher);
  gaussian_kernels::HermiteLink<Moments> k;
  k.degree = int(c.size()) - 1;
  for (std::size_t i = 0; i < c.size(); ++i) k.c[i] = real(c[i]);
  return k;
}

// Calls f(student kernel K(σ, σ), teacher kernel K(σ, σ*)) with the Gaussian kernel functors of
// the student's σ and the teacher's σ* (MATH.md §2.8): σ* = σ, or σ* a polynomial (against erf
// and relu the HermiteLink kernels, against a polynomial the Polynomial one).
template <class F>
void with_gaussian_kernels(const Activation& a, const Activation& teacher, F&& f) {
  const bool same = teacher.kind == a.kind;
  if (is_polynomial(a.kind) && is_polynomial(teacher.kind))
    return f(polynomial_kernel(a, a), polynomial_kernel(a, teacher));
  if (a.kind == ActivationKind::erf && same)
    return f(gaussian_kernels::Erf{}, gaussian_kernels::Erf{});
  if (a.kind == ActivationKind::relu && same)
    return f(gaussian_kernels::Relu{}, gaussian_kernels::Relu{});
  if (a.kind == ActivationKind::erf && is_polynomial(teacher.kind))
    return f(gaussian_kernels::Erf{}, link_kernel<gaussian_kernels::ErfMoments>(teacher));
  if (a.kind == ActivationKind::relu && is_polynomial(teacher.kind))
    return f(gaussian_kernels::Relu{}, link_kernel<gaussian_kernels::ReluMoments>(teacher));
  throw std::logic_error("population flow: no Gaussian kernel for " + activation_name(a.kind) +
                         " against " + activation_name(teacher.kind));
}

// ½E[f*²] = ½ scale² Σ_{i,j} a*_i a*_j K*(w*_i, w*_j), on the host from rows (w*_j, a*_j), with
// the Σ-weighted products w*_i·Σw*_j.
double half_teacher_square(const HostMatrix& rows, double scale, const Activation& teacher,
                           const std::vector<double>& variance) {
  const int d = int(rows.extent(1)) - 1;
  const index_t k = index_t(rows.extent(0));
  double sum = 0;
  with_gaussian_kernels(teacher, teacher, [&](auto kernel, auto) {
    for (index_t i = 0; i < k; ++i)
      for (index_t j = 0; j < k; ++j) {
        double qii = 0, qij = 0, qjj = 0;
        for (int c = 0; c < d; ++c) {
          qii += rows(i, c) * (variance[std::size_t(c)] * rows(i, c));
          qij += rows(i, c) * (variance[std::size_t(c)] * rows(j, c));
          qjj += rows(j, c) * (variance[std::size_t(c)] * rows(j, c));
        }
        sum += rows(i, d) * rows(j, d) * double(kernel(real(qii), real(qij), real(qjj)).k);
      }
  });
  return 0.5 * scale * scale * sum;
}

}  // namespace

bool has_population_kernel(ActivationKind a) {
  return a == ActivationKind::erf || a == ActivationKind::relu || is_polynomial(a);
}

bool has_population_kernel(ActivationKind student, ActivationKind teacher) {
  return has_population_kernel(student) && (student == teacher || is_polynomial(teacher));
}

PopulationEvaluation::PopulationEvaluation(const Dataset& data, index_t sources_count, int dim,
                                           index_t local)
    : Evaluation(data),
      sources("mfsim::Population::sources", sources_count, dim + 1),
      teacher_part("mfsim::Population::teacher_part", local),
      student_part("mfsim::Population::student_part", local) {}

PopulationModel::PopulationModel(const TwoLayerSpec& spec, const Dataset& data,
                                 const Communicator& comm)
    : Model(data, comm, spec.loss), layout_(spec, data, comm) {
  if (spec.bias || !has_population_kernel(spec.activation.kind, data.teacher_activation.kind))
    throw std::logic_error("PopulationModel: bias or activation without a Gaussian kernel");
  const int d = data.dim();
  if (int(data.teacher.extent(1)) != d + 1) throw std::logic_error("PopulationModel: no teacher");
  HostMatrix rows("mfsim::Population::teacher_rows", data.teacher.extent(0), d + 1);
  const auto device_rows = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), data.teacher);
  for (std::size_t j = 0; j < rows.extent(0); ++j)
    for (int c = 0; c <= d; ++c) rows(j, c) = double(device_rows(j, c));
  // Sources (β·scale·a*_j, w*_j): the teacher's coefficient in (P2).
  auto host = Kokkos::create_mirror_view(
      Matrix(uninitialized<Matrix>("mfsim::Population::teacher", rows.extent(0), d + 1)));
  for (std::size_t j = 0; j < rows.extent(0); ++j) {
    host(j, 0) = real(spec.beta * data.teacher_scale * rows(j, d));
    for (int c = 0; c < d; ++c) host(j, 1 + c) = real(rows(j, c));
  }
  teacher_sources_ = Kokkos::create_mirror_view_and_copy(MemSpace(), host);
  std::vector<double> variance = data.covariance_diagonal;
  if (variance.empty()) variance.assign(std::size_t(d), 1.0);
  if (int(variance.size()) != d) throw std::logic_error("PopulationModel: covariance size");
  auto host_variance =
      Kokkos::create_mirror_view(Vector(uninitialized<Vector>("mfsim::Population::variance", d)));
  for (int c = 0; c < d; ++c) host_variance(c) = real(variance[std::size_t(c)]);
  variance_ = Kokkos::create_mirror_view_and_copy(MemSpace(), host_variance);
  teacher_energy_ =
      half_teacher_square(rows, data.teacher_scale, data.teacher_activation, variance);
}

std::unique_ptr<Evaluation> PopulationModel::make_evaluation(const ExecSpace& /*space*/,
                                                             index_t minibatch) const {
  if (minibatch > 0) throw std::logic_error("population flow: no minibatches (no samples)");
  return std::make_unique<PopulationEvaluation>(data(),
                                                index_t(teacher_sources_.extent(0)) + spec().width,
                                                data().dim(), groups()[0].local_count);
}

real PopulationModel::evaluate(const ExecSpace& space, const ParticleState& s, Evaluation& base,
                               ParticleState& dsdt) const {
  if (dsdt.tracks_log_density())
    throw std::logic_error("population flow: log-densities are not transported");
  auto& e = dynamic_cast<PopulationEvaluation&>(base);
  const GroupSpec& g = groups()[0];
  const ConstMatrix theta = s.theta[0];
  const Matrix sources = e.sources, teacher = teacher_sources_;
  const index_t kt = index_t(teacher_sources_.extent(0)), offset = g.slice_offset,
                local = g.local_count;
  const int cols = int(sources.extent(1));
  const bool sharded = comm().size() > 1;
  const real student_coeff = real(-spec().beta * spec().beta / double(spec().width));
  // The source list: the teacher's rows, then every rank's particles at their global rows (this
  // rank writes its own; the all-gather brings the others').
  Kokkos::parallel_for(
      "mfsim::Population::sources", Kokkos::RangePolicy<ExecSpace>(space, 0, kt + local),
      KOKKOS_LAMBDA(index_t r) {
        if (r < kt) {
          for (int c = 0; c < cols; ++c) sources(r, c) = teacher(r, c);
        } else {
          const index_t i = r - kt;
          sources(kt + offset + i, 0) = student_coeff * theta(i, 0);
          for (int c = 1; c < cols; ++c) sources(kt + offset + i, c) = theta(i, c);
        }
      });
  if (sharded)
    comm().allgather_rows(
        space, Kokkos::subview(sources, Kokkos::make_pair(kt, kt + spec().width), Kokkos::ALL),
        offset, local);
  with_gaussian_kernels(
      spec().activation, data().teacher_activation, [&](auto kernel, auto teacher_kernel) {
        detail::population_velocity(space, theta, sources, kt, variance_, dsdt.theta[0],
                                    e.teacher_part, e.student_part, kernel, teacher_kernel);
      });
  // R* − (1/m) Σ_k a_k teacher_k − (1/(2m)) Σ_k a_k students_k (MATH.md (P1)).
  double sums[2] = {0, 0};
  const ConstVector tp = e.teacher_part, sp = e.student_part;
  Kokkos::parallel_reduce(
      "mfsim::Population::risk", Kokkos::RangePolicy<ExecSpace>(space, 0, local),
      KOKKOS_LAMBDA(index_t k, double& t, double& u) {
        t += double(theta(k, 0)) * double(tp(k));
        u += double(theta(k, 0)) * double(sp(k));
      },
      sums[0], sums[1]);
  space.fence();
  comm().allreduce_sum(sums, 2);
  const double m = double(spec().width);
  e.teacher_energy = teacher_energy_;
  e.teacher_term = -sums[0] / m;
  e.interaction = -0.5 * sums[1] / m;
  e.loss = e.teacher_energy + e.teacher_term + e.interaction;
  return real(e.loss);
}

std::map<std::string, std::string> PopulationModel::scalings(double dt) const {
  return {
      {"flow_scaling",
       "f = (beta/m) sum_k a_k sigma(w_k.x); R = E_x|f(x)-f*(x)|^2/2, x ~ N(0, I_d); "
       "dtheta_k/dt = -m grad_{theta_k} R"},
      {"raw_learning_rate", fmt::format("{}", double(spec().width) * dt)},
  };
}

}  // namespace mfsim
