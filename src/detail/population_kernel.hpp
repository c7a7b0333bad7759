#pragma once
// The pair kernel of the population-risk flow (MATH.md §2.8, (P2)): for every particle
// θ_k = (a_k, w_k) of this rank, the sums over a list of sources (c_j, w_j) — the teacher's
// neurons and every student particle, with their coefficients —
//   v_a(k) = Σ_j c_j K(w_k·Σw_k, w_k·Σw_j, w_j·Σw_j),
//   v_w(k) = a_k Σ_j c_j [2 K_1 Σw_k + K_2 Σw_j],
// Σ = diag(variance) the inputs' covariance, K the teacher's kernel for the teacher's rows and the
// students' for the others. The teacher's and the students' parts of v_a are also returned apart
// (the two terms of the risk).
//
// Tiled as the two-layer velocity (detail/two_layer_kernels.hpp, detail/pair_tiles.hpp): a team
// owns a tile of particles (w packed by blocks of `lanes` in scratch, with their accumulators)
// and sweeps the sources in chunks staged in scratch in two packed layouts. A thread's block of
// `lanes` particles takes the products w_k·Σw_j of 6 sources at a time in a register block
// (tiles::accumulate_outer), evaluates the kernels there, once per pair, in lanes (the kernels'
// pair form, with the per-particle square roots prepared once), and adds Σ_j c_j K_2 Σw_j as a
// second register-block product over the chunk. Nothing of size m × m exists. Each output is
// summed in source order by one lane: bitwise reproducible on a given backend.
#include "detail/pair_tiles.hpp"
#include "mfsim/core/gaussian_kernels.hpp"

namespace mfsim::detail {

namespace population {
using tiles::block_rows;
using tiles::lanes;
constexpr int tile = tiles::blocks * lanes;       // particles per team
constexpr int chunk = tiles::sample_chunk;        // sources staged per step
constexpr int chunk_panels = chunk / block_rows;  // register blocks of sources per chunk
template <class Space>
using TeamPolicy = Kokkos::TeamPolicy<Space, Kokkos::Schedule<Kokkos::Dynamic>>;
template <class Space>
using ScratchPanels = tiles::ScratchViewOn<Space, real***>;
template <class Space>
using ScratchVector = tiles::ScratchViewOn<Space, real*>;

// The staged chunk of sources: rows(P, c, i) = Σw_{6P+i}[c] (the products w_k·Σw_j),
// cols(C, j, i) = Σw_j[6C+i] (the accumulation over j), coefficient c_j, q22 = w_j·Σw_j and the
// prepared p_j of the row's kernel; panels and coefficients zero beyond the chunk's sources and
// beyond d (a padding source adds 0).
template <class Space>
struct Chunk {
  ScratchPanels<Space> rows, cols;
  ScratchVector<Space> coefficient, q22, prepared;
  int count = 0;        // sources in this chunk
  index_t first = 0;    // index of its first source
  index_t teacher = 0;  // sources [0, teacher) are the teacher's
};

// A team's particles: w(b, c, l) = w_{lanes·b+l}[c] (zero beyond the tile's particles), their q11,
// prepared p (student's and teacher's kernel) and the accumulators.
template <class Space>
struct Particles {
  ScratchPanels<Space> w, acc;  // acc(b, c, l): Σ_j c_j K_2 Σw_j[c]
  ScratchVector<Space> q11, prepared, prepared_teacher, teacher, students, d11;
};
}  // namespace population

// The sums of one source row against the lanes of a particle block (one kernel for the row).
template <class Kernel>
KOKKOS_FORCEINLINE_FUNCTION void population_row(const Kernel& kernel, const real* q11,
                                                const real* prepared, const real* q12, real cj,
                                                real q22, real pj, real* value, real* d11,
                                                real* g) {
  MFSIM_LANES
  for (int l = 0; l < population::lanes; ++l) {
    const KernelValue kv = gaussian_kernels::pair_of(kernel, q11[l], prepared[l], q12[l], q22, pj);
    value[l] += cj * kv.k;
    d11[l] += cj * kv.d11;
    g[l] = cj * kv.d12;
  }
}

// Block b (`lanes` particles) of a team against one staged chunk. (A named function, not a
// lambda: CUDA forbids lambdas in the generic lambdas that pick the kernels.)
template <class Kernel, class TeacherKernel, class Space>
MFSIM_ISA_CLONES KOKKOS_INLINE_FUNCTION void population_block(
    const Kernel& kernel, const TeacherKernel& teacher_kernel, const population::Chunk<Space>& src,
    const population::Particles<Space>& part, int b) {
  using namespace population;
  const int d = int(part.w.extent(1));
  const int panels = (src.count + block_rows - 1) / block_rows;
  real q11[lanes], pk[lanes], pt[lanes], teacher[lanes], students[lanes], d11[lanes];
  MFSIM_LANES
  for (int l = 0; l < lanes; ++l) {
    const int p = b * lanes + l;
    q11[l] = part.q11(p), pk[l] = part.prepared(p), pt[l] = part.prepared_teacher(p);
    teacher[l] = part.teacher(p), students[l] = part.students(p), d11[l] = part.d11(p);
  }
  real g[chunk][lanes];  // c_j K_2(k, j): the weights of the Σw_j in the accumulators
  for (int sb = 0; sb < panels; ++sb) {
    real z[block_rows][lanes] = {};
    tiles::accumulate_outer(z, &src.rows(sb, 0, 0), &part.w(b, 0, 0), d);
    for (int i = 0; i < block_rows; ++i) {
      const int j = sb * block_rows + i;
      const real cj = src.coefficient(j), q22 = src.q22(j), pj = src.prepared(j);
      if (src.first + j < src.teacher)
        population_row(teacher_kernel, q11, pt, z[i], cj, q22, pj, teacher, d11, g[j]);
      else
        population_row(kernel, q11, pk, z[i], cj, q22, pj, students, d11, g[j]);
    }
  }
  MFSIM_LANES
  for (int l = 0; l < lanes; ++l) {
    const int p = b * lanes + l;
    part.teacher(p) = teacher[l], part.students(p) = students[l], part.d11(p) = d11[l];
  }
  // acc[c][l] += Σ_j Σw_j[c] g[j][l], by blocks of coordinates (zero rows pad d).
  const int depth = panels * block_rows;
  for (int cb = 0; cb < int(src.cols.extent(0)); ++cb) {
    real acc[block_rows][lanes];
    for (int i = 0; i < block_rows; ++i) MFSIM_LANES
    for (int l = 0; l < lanes; ++l) acc[i][l] = part.acc(b, cb * block_rows + i, l);
    tiles::accumulate_outer(acc, &src.cols(cb, 0, 0), &g[0][0], depth);
    for (int i = 0; i < block_rows; ++i) MFSIM_LANES
    for (int l = 0; l < lanes; ++l) part.acc(b, cb * block_rows + i, l) = acc[i][l];
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
  using Panels = ScratchPanels<Space>;
  using Values = ScratchVector<Space>;
  const int d = int(theta.extent(1)) - 1;
  const int coord_panels = (d + block_rows - 1) / block_rows, padded_d = coord_panels * block_rows;
  const index_t m = index_t(theta.extent(0)), ns = index_t(sources.extent(0));
  const std::size_t bytes =
      tiles::scratch_bytes({{tiles::blocks, d, lanes},
                            {tiles::blocks, padded_d, lanes},
                            {chunk_panels, d, block_rows},
                            {coord_panels, chunk, block_rows}},
                           {tile, tile, tile, tile, tile, tile, chunk, chunk, chunk});
  const int level = tiles::scratch_level(bytes);
  Kokkos::parallel_for(
      "mfsim::Population::velocity",
      Policy(space, int((m + tile - 1) / tile), tiles::team_size)
          .set_scratch_size(level, Kokkos::PerTeam(bytes)),
      KOKKOS_LAMBDA(const typename Policy::member_type& team) {
        const index_t k0 = index_t(team.league_rank()) * tile;
        const int np = int(tiles::min_of<index_t>(tile, m - k0));
        const auto& scratch = team.team_scratch(level);
        Particles<Space> part;
        part.w = Panels(scratch, tiles::blocks, d, lanes);
        part.acc = Panels(scratch, tiles::blocks, padded_d, lanes);
        part.q11 = Values(scratch, tile);
        part.prepared = Values(scratch, tile);
        part.prepared_teacher = Values(scratch, tile);
        part.teacher = Values(scratch, tile);
        part.students = Values(scratch, tile);
        part.d11 = Values(scratch, tile);
        Chunk<Space> src;
        src.rows = Panels(scratch, chunk_panels, d, block_rows);
        src.cols = Panels(scratch, coord_panels, chunk, block_rows);
        src.coefficient = Values(scratch, chunk);
        src.q22 = Values(scratch, chunk);
        src.prepared = Values(scratch, chunk);
        src.teacher = n_teacher;
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, tiles::blocks), [&](int b) {
          for (int l = 0; l < lanes; ++l) {
            const int p = b * lanes + l;
            const bool live = p < np;
            real q = 0;
            for (int c = 0; c < d; ++c) {
              const real w = live ? theta(k0 + p, 1 + c) : real(0);
              part.w(b, c, l) = w;
              q += w * (variance(c) * w);
            }
            for (int c = 0; c < padded_d; ++c) part.acc(b, c, l) = 0;
            part.q11(p) = q;
            part.prepared(p) = gaussian_kernels::prepare_of(kernel, q);
            part.prepared_teacher(p) = gaussian_kernels::prepare_of(teacher_kernel, q);
            part.teacher(p) = part.students(p) = part.d11(p) = 0;
          }
        });
        const int active_blocks = (np + lanes - 1) / lanes;
        for (index_t j0 = 0; j0 < ns; j0 += chunk) {
          src.first = j0;
          src.count = int(tiles::min_of<index_t>(chunk, ns - j0));
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, chunk), [&](int j) {
            const bool live = j < src.count;
            const int P = j / block_rows, i = j % block_rows;
            real q = 0;
            for (int c = 0; c < padded_d; ++c) {
              const real w = live && c < d ? sources(j0 + j, 1 + c) : real(0);
              const real sw = c < d ? variance(c) * w : real(0);
              if (c < d) src.rows(P, c, i) = sw;
              src.cols(c / block_rows, j, c % block_rows) = sw;
              q += w * sw;
            }
            src.coefficient(j) = live ? sources(j0 + j, 0) : real(0);
            src.q22(j) = q;
            src.prepared(j) = j0 + j < n_teacher ? gaussian_kernels::prepare_of(teacher_kernel, q)
                                                 : gaussian_kernels::prepare_of(kernel, q);
          });
          team.team_barrier();
          Kokkos::parallel_for(Kokkos::TeamThreadRange(team, active_blocks), [&](int b) {
            population_block(kernel, teacher_kernel, src, part, b);
          });
        }
        team.team_barrier();
        Kokkos::parallel_for(Kokkos::TeamThreadRange(team, np), [&](int p) {
          const index_t k = k0 + p;
          const int b = p / lanes, l = p % lanes;
          const real a = theta(k, 0), two_d11 = 2 * part.d11(p);
          v(k, 0) = part.teacher(p) + part.students(p);
          for (int c = 0; c < d; ++c)
            v(k, 1 + c) = a * (two_d11 * (variance(c) * part.w(b, c, l)) + part.acc(b, c, l));
          teacher_part(k) = part.teacher(p);
          student_part(k) = part.students(p);
        });
      });
}

}  // namespace mfsim::detail
