#include "mfsim/flow/regularisation.hpp"

#include <cmath>

#include "mfsim/core/enum_names.hpp"
#include "mfsim/core/random.hpp"

namespace mfsim {

namespace {
const EnumNames<TemperatureSchedule>& schedules() {
  static const EnumNames<TemperatureSchedule> names(
      "temperature schedule", {{TemperatureSchedule::constant, "constant"},
                               {TemperatureSchedule::logarithmic, "logarithmic"},
                               {TemperatureSchedule::exponential, "exponential"}});
  return names;
}

// SplitMix64's finaliser: a bijection of 64-bit words that mixes every input bit into every
// output bit, so that neighbouring steps get unrelated Philox keys.
std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

TemperatureSchedule parse_temperature_schedule(const std::string& name) {
  return schedules().parse(name);
}

const std::vector<std::string>& temperature_schedule_names() {
  return schedules().names();
}

double Regularisation::temperature_at(double time) const {
  switch (schedule) {
    case TemperatureSchedule::logarithmic:
      return temperature / std::log(std::exp(1.0) + time);
    case TemperatureSchedule::exponential:
      return temperature * std::exp(-temperature_rate * time);
    case TemperatureSchedule::constant:
      break;
  }
  return temperature;
}

void add_regulariser_drift(const ExecSpace& space, const Regularisation& r,
                           const std::vector<GroupSpec>& groups, const ParticleState& s,
                           const ParticleState& v, ParticleState& out) {
  const bool log_density = out.tracks_log_density();
  for (std::size_t g = 0; g < groups.size(); ++g) {
    ConstMatrix theta = s.theta[g], vel = v.theta[g];
    Matrix o = out.theta[g];
    ConstVector rate_in = log_density ? ConstVector(v.log_density[g]) : ConstVector();
    Vector rate = log_density ? out.log_density[g] : Vector();
    const int dim = int(theta.extent(1));
    const double decay = r.weight_decay;
    // μ β: the penalty's weight on this group (none on groups of other units).
    const double penalty = r.path_norm_penalty * groups[g].path_norm_scale;
    const double eps = r.path_norm_smoothing;
    const int outputs = groups[g].outputs;
    Kokkos::parallel_for(
        "mfsim::Regularisation::drift",
        Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(theta.extent(0))),
        KOKKOS_LAMBDA(index_t k) {
          const auto row = Kokkos::subview(theta, k, Kokkos::ALL);
          SmoothedPathWeight p{0, 0, 0, 0};
          if (penalty > 0) p = SmoothedPathWeight::at(row, dim, eps, outputs);
          if (outputs == 1)
            o(k, 0) = real(double(vel(k, 0)) - decay * double(row(0)) - penalty * p.d_a);
          else
            for (int c = 0; c < outputs; ++c)
              o(k, c) = real(double(vel(k, c)) - (decay + penalty * p.d_a_factor) * double(row(c)));
          for (int c = outputs; c < dim; ++c)
            o(k, c) = real(double(vel(k, c)) - (decay + penalty * p.d_w_factor) * double(row(c)));
          if (log_density) rate(k) = real(double(rate_in(k)) + decay * dim + penalty * p.laplacian);
        });
  }
}

void add_regulariser_drift(const Regularisation& r, const std::vector<GroupSpec>& groups,
                           const ParticleState& s, const ParticleState& v, ParticleState& out) {
  add_regulariser_drift(ExecSpace(), r, groups, s, v, out);
}

void add_langevin_noise(const ExecSpace& space, const Regularisation& r,
                        const std::vector<GroupSpec>& groups, ParticleState& s, index_t step,
                        double time, double dt) {
  const double lambda = r.temperature_at(time);
  if (!(lambda > 0) || !(dt > 0)) return;
  const double amplitude = std::sqrt(2 * lambda * dt);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    Matrix theta = s.theta[g];
    const RowMap rows = groups[g].rows();
    const int dim = int(theta.extent(1));
    // One Philox key per (seed, step, group); the counter holds the particle's global id and the
    // coordinate pair.
    const CounterRng rng(mix64(r.noise_seed + mix64((std::uint64_t(step) << 8) | std::uint64_t(g))),
                         rng_langevin_noise);
    Kokkos::parallel_for(
        "mfsim::Regularisation::noise",
        Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(theta.extent(0))),
        KOKKOS_LAMBDA(index_t k) {
          const std::uint64_t id = std::uint64_t(rows.global_row(k));
          for (int c = 0; c < dim; c += 2) {
            double z0, z1;
            rng.normal2(id, std::uint32_t(c / 2), z0, z1);
            theta(k, c) += real(amplitude * z0);
            if (c + 1 < dim) theta(k, c + 1) += real(amplitude * z1);
          }
        });
  }
}

void add_langevin_noise(const Regularisation& r, const std::vector<GroupSpec>& groups,
                        ParticleState& s, index_t step, double time, double dt) {
  add_langevin_noise(ExecSpace(), r, groups, s, step, time, dt);
}

}  // namespace mfsim
