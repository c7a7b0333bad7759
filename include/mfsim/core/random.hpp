#pragma once
// Counter-based random numbers (Philox-4x32-10, Salmon et al. SC'11).
//
// A draw is a pure function of (seed, stream, id, index): no generator state, so a particle's
// initial coordinates depend only on the seed and its global id, never on the backend, the thread
// count or how particles are split over MPI ranks.
#include <cstdint>

#include "mfsim/core/math.hpp"
#include "mfsim/core/types.hpp"

namespace mfsim {

// Independent streams under one seed. Numbers are part of the file-format contract: changing one
// changes every dataset or initialisation drawn from it.
enum RngStream : std::uint32_t {
  rng_particles = 1,  // model A particles, model B blocks
  rng_train_inputs = 2,
  rng_test_inputs = 3,
  rng_teacher = 4,
  rng_train_labels = 5,  // random labels and label noise of the training set
  rng_test_labels = 6,
  rng_head_particles = 7,    // model B head
  rng_reference = 8,         // fresh samples of the initial law (two-sample estimators)
  rng_langevin_noise = 9,    // the Brownian increments of mean-field Langevin dynamics
  rng_gibbs_reference = 10,  // the importance samples of the Gibbs gap's partition function
  rng_import_split = 11,     // mfsim data import: the shuffle of the train/test split
  rng_minibatch = 12,        // the training samples of each SGD step
  rng_online_inputs = 13,    // online SGD: fresh inputs
  rng_online_labels = 14,    // online SGD: their targets' label noise and random labels
  rng_probe_inputs = 15,     // the population flow's probe set of the Gram diagnostics
};

struct Philox4x32 {
  std::uint32_t v[4];

  KOKKOS_INLINE_FUNCTION static Philox4x32 apply(Philox4x32 ctr, std::uint32_t k0,
                                                 std::uint32_t k1) {
    for (int round = 0; round < 10; ++round) {
      const std::uint64_t p0 = std::uint64_t(0xD2511F53u) * ctr.v[0];
      const std::uint64_t p1 = std::uint64_t(0xCD9E8D57u) * ctr.v[2];
      const std::uint32_t hi0 = std::uint32_t(p0 >> 32), lo0 = std::uint32_t(p0);
      const std::uint32_t hi1 = std::uint32_t(p1 >> 32), lo1 = std::uint32_t(p1);
      ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ k0, lo1, hi0 ^ ctr.v[3] ^ k1, lo0}};
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    return ctr;
  }
};

class CounterRng {
 public:
  KOKKOS_INLINE_FUNCTION CounterRng(std::uint64_t seed, std::uint32_t stream)
      : k0_(std::uint32_t(seed)), k1_(std::uint32_t(seed >> 32)), stream_(stream) {}

  // Two independent uniforms in (0, 1), 53 random bits each.
  KOKKOS_INLINE_FUNCTION void uniform2(std::uint64_t id, std::uint32_t index, double& u0,
                                       double& u1) const {
    const Philox4x32 out = Philox4x32::apply(
        Philox4x32{{index, stream_, std::uint32_t(id), std::uint32_t(id >> 32)}}, k0_, k1_);
    const std::uint64_t a = (std::uint64_t(out.v[0]) << 32) | out.v[1];
    const std::uint64_t b = (std::uint64_t(out.v[2]) << 32) | out.v[3];
    constexpr double scale = 1.0 / 9007199254740992.0;  // 2^-53
    u0 = (double(a >> 11) + 0.5) * scale;
    u1 = (double(b >> 11) + 0.5) * scale;
  }

  // Two independent standard normals (Box–Muller).
  KOKKOS_INLINE_FUNCTION void normal2(std::uint64_t id, std::uint32_t index, double& z0,
                                      double& z1) const {
    double u0, u1;
    uniform2(id, index, u0, u1);
    const double r = math::sqrt(-2.0 * math::log(u0));
    const double angle = 2.0 * math::pi * u1;
    z0 = r * math::cos(angle);
    z1 = r * math::sin(angle);
  }

  // The j-th standard normal of item `id`: coordinates 2i and 2i+1 share one Philox call.
  KOKKOS_INLINE_FUNCTION double normal(std::uint64_t id, std::uint32_t j) const {
    double z0, z1;
    normal2(id, j / 2, z0, z1);
    return (j % 2 == 0) ? z0 : z1;
  }

 private:
  std::uint32_t k0_, k1_, stream_;
};

// Antithetic initialisation: particles 2p and 2p+1 take the draws of key p and opposite output
// weights (sign −1 for the odd one), so that their contributions to f cancel at t = 0. Without
// pairing, item `id` draws from key `id` with sign +1.
struct AntitheticDraw {
  std::uint64_t key;
  real sign;
};
KOKKOS_INLINE_FUNCTION AntitheticDraw antithetic_draw(index_t id, bool antithetic) {
  if (!antithetic) return {std::uint64_t(id), real(1)};
  return {std::uint64_t(id / 2), id % 2 == 1 ? real(-1) : real(1)};
}

}  // namespace mfsim
