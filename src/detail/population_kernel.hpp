#pragma once
// The pair kernel of the population-risk flow (MATH.md §2.8, (P2)): for every particle
// θ_k = (a_k, w_k) of this rank, the sums over a list of sources (c_j, w_j) — the teacher's
// neurons and every student particle, with their coefficients —
//   v_a(k) = Σ_j c_j K(w_k·Σw_k, w_k·Σw_j, w_j·Σw_j),
//   v_w(k) = a_k Σ_j c_j [2 K_1 Σw_k + K_2 Σw_j],
// Σ = diag(variance) the inputs' covariance, K the teacher's kernel for the teacher's rows and the
// students' for the others,
// tiled: a team owns a tile of particles and sweeps the sources in chunks staged in team scratch,
// so that each pair's kernel is evaluated once and nothing of size m × m exists. The teacher's
// and the students' parts of v_a are also returned apart (the two terms of the risk). Each output
// is summed by one thread in source order: bitwise reproducible on a given backend.
#include <type_traits>

#include "detail/pair_tiles.hpp"
#include "mfsim/core/gaussian_kernels.hpp"

namespace mfsim::detail {

namespace population {
constexpr int tile = 64;   // particles per team
constexpr int chunk = 64;  // sources staged per step
template <class Space>
using TeamPolicy = Kokkos::TeamPolicy<Space, Kokkos::Schedule<Kokkos::Dynamic>>;
template <class Space>
using ScratchMatrix = tiles::ScratchViewOn<Space, real**>;
}  // namespace population

// The kernel of a pair: the teacher's for its rows, the students' for the others. One stateless
// kernel for both (erf, relu against a teacher of the same activation) is called unconditionally,
// so that those flows compile to the same code whatever the teacher.
template <class Kernel, class TeacherKernel>
KOKKOS_INLINE_FUNCTION KernelValue pair_kernel(const Kernel& kernel,
                                               const TeacherKernel& teacher_kernel,
                                               bool from_teacher, real q11, real q12, real q22) {
  if constexpr (std::is_same_v<Kernel, TeacherKernel> && std::is_empty_v<Kernel>) {
    (void)teacher_kernel;
    (void)from_teacher;
    return kernel(q11, q12, q22);
  } else {
    return from_teacher ? teacher_kernel(q11, q12, q22) : kernel(q11, q12, q22);
  }
}

// sources(j, ·) = (c_j, w_j): rows [0, n_teacher) are the teacher's neurons. v, teacher_part and
// student_part are this rank's rows. On the instance `space`: the library's ExecSpace, or (the
// tests) any space of its kind that reads MemSpace.
template <class Space, class Kernel, class TeacherKernel>
void population_velocity(const Space& space, ConstMatrix theta, ConstMatrix sources,
                         index_t n_teacher, ConstVector variance, Matrix v, Vector teacher_part,
                         Vector student_part, Kernel kernel, TeacherKernel teacher_kernel) {
  static_assert(tiles::fits_tiles<Space>);
  using namespace population;
  using Policy = TeamPolicy<Space>;
  using Scratch = ScratchMatrix<Space>;
  const int d = int(theta.extent(1)) - 1;
  const index_t m = index_t(theta.extent(0)), ns = index_t(sources.extent(0));
  const std::size_t bytes = Scratch::shmem_size(chunk, d + 2) + Scratch::shmem_size(tile, d) +
                            Scratch::shmem_size(tile, 4);
  const int level = tiles::scratch_level(bytes);
  Kokkos::parallel_for(
      "mfsim::Population::velocity",
      Policy(space, int((m + tile - 1) / tile), tiles::team_size)
          .set_scratch_size(level, Kokkos::PerTeam(bytes)),
      KOKKOS_LAMBDA(const typename Policy::member_type& team) {
        const index_t k0 = index_t(team.league_rank()) * tile;
        const int np = int(tiles::min_of<index_t>(tile, m - k0));
        Scratch src(team.team_scratch(level), chunk, d + 2);  // c, Σw, w·Σw
        Scratch acc(team.team_scratch(level), tile, d);       // Σ c_j K_2 Σw_j
        Scratch sums(team.team_scratch(level), tile, 4);  // |w_k|², teacher, students, Σ c K_1
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, np), [&](int p) {
          real q = 0;
          for (int c = 0; c < d; ++c) {
            q += theta(k0 + p, 1 + c) * (variance(c) * theta(k0 + p, 1 + c));
            acc(p, c) = 0;
          }
          sums(p, 0) = q;
          sums(p, 1) = sums(p, 2) = sums(p, 3) = 0;
        });
        for (index_t j0 = 0; j0 < ns; j0 += chunk) {
          const int nc = int(tiles::min_of<index_t>(chunk, ns - j0));
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, nc), [&](int j) {
            real q = 0;
            src(j, 0) = sources(j0 + j, 0);
            for (int c = 0; c < d; ++c) {
              const real w = sources(j0 + j, 1 + c), sw = variance(c) * w;
              src(j, 1 + c) = sw;
              q += w * sw;
            }
            src(j, d + 1) = q;
          });
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, np), [&](int p) {
            const index_t k = k0 + p;
            const real q11 = sums(p, 0);
            real teacher = sums(p, 1), students = sums(p, 2), d11 = sums(p, 3);
            for (int j = 0; j < nc; ++j) {
              real q12 = 0;
              for (int c = 0; c < d; ++c) q12 += theta(k, 1 + c) * src(j, 1 + c);
              const bool from_teacher = j0 + j < n_teacher;
              const KernelValue kv =
                  pair_kernel(kernel, teacher_kernel, from_teacher, q11, q12, src(j, d + 1));
              const real cj = src(j, 0);
              if (from_teacher)
                teacher += cj * kv.k;
              else
                students += cj * kv.k;
              d11 += cj * kv.d11;
              const real g = cj * kv.d12;
              for (int c = 0; c < d; ++c) acc(p, c) += g * src(j, 1 + c);
            }
            sums(p, 1) = teacher, sums(p, 2) = students, sums(p, 3) = d11;
          });
        }
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, np), [&](int p) {
          const index_t k = k0 + p;
          const real a = theta(k, 0), two_d11 = 2 * sums(p, 3);
          v(k, 0) = sums(p, 1) + sums(p, 2);
          for (int c = 0; c < d; ++c)
            v(k, 1 + c) = a * (two_d11 * (variance(c) * theta(k, 1 + c)) + acc(p, c));
          teacher_part(k) = sums(p, 1);
          student_part(k) = sums(p, 2);
        });
      });
}

}  // namespace mfsim::detail
