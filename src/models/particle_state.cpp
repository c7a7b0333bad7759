#include "mfsim/models/particle_state.hpp"

#include <cmath>
#include <stdexcept>

#include "mfsim/core/communicator.hpp"
#include "mfsim/core/math.hpp"
#include "mfsim/core/shard.hpp"

namespace mfsim {

namespace {

// A group's coordinates as one run of particle-major values, for the element-wise kernels: they
// index it without the division and remainder per element that (row, column) indices cost, a
// visible share of a small step (docs/performance.md). Every state is allocated whole
// (allocate_state, allocate_like), hence contiguous.
template <class T>
using Flat = Kokkos::View<T*, MemSpace, Kokkos::MemoryTraits<Kokkos::Unmanaged>>;

template <class View>
Flat<typename View::value_type> flat(const View& m) {
  if (!m.span_is_contiguous())
    throw std::logic_error("ParticleState: a group's coordinates are not contiguous");
  return Flat<typename View::value_type>(m.data(), m.span());
}

}  // namespace

void shard_group(GroupSpec& g, int rank, int size) {
  const Shard s = shard_of(g.per_slice(), rank, size, 2);
  g.slice_offset = s.begin;
  g.local_per_slice = s.size();
  g.local_count = index_t(g.slices) * s.size();
}

ParticleState allocate_state(const std::vector<GroupSpec>& specs, bool log_density,
                             const std::string& label) {
  ParticleState s;
  for (const auto& g : specs) {
    s.theta.emplace_back("mfsim::" + label + "::" + g.name, g.local_count, g.dim());
    if (log_density)
      s.log_density.emplace_back("mfsim::" + label + "::" + g.name + "::log_density",
                                 g.local_count);
  }
  return s;
}

ParticleState allocate_like(const ExecSpace& space, const ParticleState& like,
                            const std::string& label) {
  ParticleState s;
  for (const auto& t : like.theta)
    s.theta.emplace_back(Kokkos::view_alloc(space, "mfsim::" + label + "::" + t.label()),
                         t.extent(0), t.extent(1));
  for (const auto& l : like.log_density)
    s.log_density.emplace_back(Kokkos::view_alloc(space, "mfsim::" + label + "::" + l.label()),
                               l.extent(0));
  return s;
}

ParticleState allocate_like(const ParticleState& like, const std::string& label) {
  return allocate_like(ExecSpace(), like, label);
}

void deep_copy(const ExecSpace& space, ParticleState& dst, const ParticleState& src) {
  for (std::size_t g = 0; g < src.theta.size(); ++g)
    Kokkos::deep_copy(space, dst.theta[g], src.theta[g]);
  for (std::size_t g = 0; g < src.log_density.size(); ++g)
    Kokkos::deep_copy(space, dst.log_density[g], src.log_density[g]);
}

void deep_copy(ParticleState& dst, const ParticleState& src) {
  deep_copy(ExecSpace(), dst, src);
}

void axpy(const ExecSpace& space, ParticleState& out, const ParticleState& base, real c,
          const ParticleState& k) {
  for (std::size_t g = 0; g < base.theta.size(); ++g) {
    const Flat<real> o = flat(out.theta[g]);
    const Flat<const real> b = flat(base.theta[g]), v = flat(k.theta[g]);
    Kokkos::parallel_for(
        "mfsim::ParticleState::axpy",
        Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(b.extent(0))),
        KOKKOS_LAMBDA(index_t i) { o(i) = b(i) + c * v(i); });
  }
  for (std::size_t g = 0; g < base.log_density.size(); ++g) {
    Vector o = out.log_density[g];
    ConstVector b = base.log_density[g], v = k.log_density[g];
    Kokkos::parallel_for(
        "mfsim::ParticleState::axpy_log_density",
        Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(b.extent(0))),
        KOKKOS_LAMBDA(index_t i) { o(i) = b(i) + c * v(i); });
  }
}

void axpy(ParticleState& out, const ParticleState& base, real c, const ParticleState& k) {
  axpy(ExecSpace(), out, base, c, k);
}

bool all_finite(const ExecSpace& space, const ParticleState& s) {
  index_t bad = 0;
  for (const auto& t : s.theta) {
    const Flat<const real> v = flat(t);
    index_t count = 0;
    Kokkos::parallel_reduce(
        "mfsim::ParticleState::count_non_finite",
        Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(v.extent(0))),
        KOKKOS_LAMBDA(index_t i, index_t & acc) {
          if (!math::isfinite(v(i))) ++acc;
        },
        count);
    bad += count;
  }
  for (const auto& l : s.log_density) {
    ConstVector v = l;
    index_t count = 0;
    Kokkos::parallel_reduce(
        "mfsim::ParticleState::count_non_finite_log_density",
        Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(v.extent(0))),
        KOKKOS_LAMBDA(index_t i, index_t & acc) {
          if (!math::isfinite(v(i))) ++acc;
        },
        count);
    bad += count;
  }
  return bad == 0;
}

bool all_finite(const ParticleState& s) {
  return all_finite(ExecSpace(), s);
}

void set_initial_log_density(ParticleState& s, const std::vector<GroupSpec>& specs) {
  for (std::size_t g = 0; g < s.log_density.size(); ++g) {
    const int dim = specs[g].dim();
    Kokkos::View<real*, MemSpace> inv_var("mfsim::ParticleState::inv_var", dim);
    auto inv_var_host = Kokkos::create_mirror_view(inv_var);
    double log_norm = 0;
    for (int j = 0; j < dim; ++j) {
      const double sd = specs[g].init_std[j];
      inv_var_host(j) = real(1 / (sd * sd));
      log_norm += 0.5 * std::log(2 * math::pi * sd * sd);
    }
    Kokkos::deep_copy(inv_var, inv_var_host);
    ConstMatrix theta = s.theta[g];
    Vector logp = s.log_density[g];
    const real c = real(log_norm);
    Kokkos::parallel_for(
        "mfsim::ParticleState::initial_log_density",
        Kokkos::RangePolicy<ExecSpace>(0, index_t(theta.extent(0))), KOKKOS_LAMBDA(index_t i) {
          real q = 0;
          for (int j = 0; j < dim; ++j) q += theta(i, j) * theta(i, j) * inv_var(j);
          logp(i) = real(-0.5) * q - c;
        });
  }
}

}  // namespace mfsim
