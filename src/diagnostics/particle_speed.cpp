#include "mfsim/diagnostics/particle_speed.hpp"

namespace mfsim {

double mean_square_speed(const ExecSpace& space, const ParticleState& velocity,
                         const std::vector<GroupSpec>& groups, const Communicator& comm) {
  std::vector<double> sums(groups.size(), 0.0);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    ConstMatrix v = velocity.theta[g];
    const index_t dim = index_t(v.extent(1));
    Kokkos::parallel_reduce(
        "mfsim::ParticleSpeed::sum_squares",
        Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(v.extent(0)) * dim),
        KOKKOS_LAMBDA(index_t e, double& acc) {
          const double c = v(e / dim, e % dim);
          acc += c * c;
        },
        sums[g]);
  }
  comm.allreduce_sum(sums.data(), int(sums.size()));
  double total = 0;
  for (std::size_t g = 0; g < groups.size(); ++g) total += sums[g] / double(groups[g].global_count);
  return total;
}

}  // namespace mfsim
