#pragma once
// Building blocks of the sample × particle pair kernels (GEMM-like tiles in team scratch).
//
// A pair kernel never forms the n × m matrix of pre-activations: a team holds a tile of particles
// (or samples) in scratch, packed into panels, and sweeps the other side in chunks — staged in
// scratch, or packed once in memory when it never changes (the training samples) — while each
// thread computes a small block of pre-activations in registers with `accumulate_outer`, applies σ
// once per pair, and reduces. The block's `lanes` run side by side: on CPUs a multiple of the SIMD
// width that the compiler vectorises (every loop over lanes has a compile-time trip count), on GPUs
// 1 — there the threads of a team are the lanes. Each output is owned by one thread and summed in a
// fixed order, so results are bitwise reproducible run to run on a given backend.
#include <array>
#include <string>

#include "detail/isa_clones.hpp"
#include "mfsim/core/types.hpp"
#include "mfsim/core/workspace.hpp"

// Marks a loop over lanes for the host compiler to vectorise (OpenMP SIMD: -fopenmp-simd, no
// OpenMP runtime). Without it GCC vectorises the outer loop of a register block instead, with
// gathers. Empty in device compilation passes.
// MFSIM_LANES_OR(flag): the same, with an or-reduction over the lanes into `flag` (an "any lane"
// test that stays in vector registers).
#if defined(__CUDA_ARCH__) || defined(__HIP_DEVICE_COMPILE__) || defined(__SYCL_DEVICE_ONLY__)
#define MFSIM_LANES
#define MFSIM_LANES_OR(flag)
#else
#define MFSIM_LANES _Pragma("omp simd")
#define MFSIM_PRAGMA(text) _Pragma(#text)
#define MFSIM_LANES_OR(flag) MFSIM_PRAGMA(omp simd reduction(| : flag))
#endif

namespace mfsim::tiles {

// A GPU: an execution space that cannot read host memory (CUDA, HIP, SYCL devices).
inline constexpr bool gpu = !Kokkos::SpaceAccessibility<ExecSpace, Kokkos::HostSpace>::accessible;
// Two 256-bit registers per row of a register block (one 512-bit register with AVX-512).
inline constexpr int lanes = gpu ? 1 : int(64 / sizeof(real));
// Blocks of `lanes` per team tile: the threads of a GPU team, a loop on a CPU (64 doubles: the
// particle panels and their accumulators stay in L1/L2 up to d = 256).
inline constexpr int blocks = gpu ? 64 : 8;
inline constexpr int team_size = gpu ? blocks : 1;

// The tile geometry above is ExecSpace's; a kernel templated on its execution space (so that
// the tests run it on every backend of the build, tests/execution_spaces.hpp) may run on a Space
// of the same kind only: a host space beside a host ExecSpace, a device beside a device one.
template <class Space>
inline constexpr bool fits_tiles =
    Kokkos::SpaceAccessibility<Space, Kokkos::HostSpace>::accessible == !gpu;

// A view in the team scratch of Space (ScratchView: of ExecSpace).
template <class Space, class DataType>
using ScratchViewOn =
    Kokkos::View<DataType, Kokkos::LayoutRight, typename Space::scratch_memory_space,
                 Kokkos::MemoryTraits<Kokkos::Unmanaged>>;
template <class DataType>
using ScratchView = ScratchViewOn<ExecSpace, DataType>;
using ScratchVector = ScratchView<real*>;
// A sequence of packed panels: panel(b, c, j) is entry j of row c of panel b, so that a register
// block reads two contiguous streams (the packing of GEMM libraries).
using ScratchPanels = ScratchView<real***>;

// Team scratch bytes of panel sequences {panels, rows, width} and vectors.
inline std::size_t scratch_bytes(std::initializer_list<std::array<int, 3>> panels,
                                 std::initializer_list<int> vectors) {
  std::size_t bytes = 0;
  for (const auto& p : panels) bytes += ScratchPanels::shmem_size(p[0], p[1], p[2]);
  for (int len : vectors) bytes += ScratchVector::shmem_size(len);
  return bytes;
}

// Level 0 (GPU shared memory) while the tile fits, else level 1 (global memory); same on CPUs.
inline int scratch_level(std::size_t bytes) {
  return bytes <= 48 * 1024 ? 0 : 1;
}

// acc[i][l] += Σ_c rows[c·R + i] · cols[c·L + l], c < depth: a register block of a product of two
// packed panels. The loads of `cols` are vectors, those of `rows` broadcasts, acc stays in
// registers. R = block_rows gives 12 independent accumulators with 8 double lanes on AVX2, enough
// to cover the FMA latency: the loop then runs at the core's peak (47 GFLOP/s measured on the
// Zen 3 of benchmarks/README.md, against 31 with R = 4).
inline constexpr int block_rows = 6;

template <int R, int L>
KOKKOS_FORCEINLINE_FUNCTION void accumulate_outer(real (&acc)[R][L], const real* rows,
                                                  const real* cols, int depth) {
  for (int c = 0; c < depth; ++c) {
    for (int i = 0; i < R; ++i) {
      const real u = rows[std::size_t(c) * R + i];
      MFSIM_LANES
      for (int l = 0; l < L; ++l) acc[i][l] += u * cols[std::size_t(c) * L + l];
    }
  }
}

inline constexpr int sample_chunk = 8 * block_rows;

template <class T>
KOKKOS_INLINE_FUNCTION T min_of(T a, T b) {
  return a < b ? a : b;
}

// Samples x̃ = (x, 1) (or x alone) packed once for the two products of a velocity kernel that
// sweeps them chunk by chunk: rows(P, c, j) = x̃_{6P+j}[c] (pre-activations, depth dz) and
// cols(C, P, s, j) = x̃_{48C+s}[6P+j] (accumulation over the 48 samples of chunk C), zero beyond
// n and beyond dz. A pack of several matrices of n samples (pack_layers: the states of every
// ResNet layer, so that one kernel serves all layers) holds them one after the other: matrix l
// starts at chunk l·chunks and at panel l·chunks·(sample_chunk / block_rows) of rows.
struct SamplePanels {
  Kokkos::View<real***, Kokkos::LayoutRight, MemSpace> rows;
  Kokkos::View<real****, Kokkos::LayoutRight, MemSpace> cols;
  int dz = 0;
  index_t n = 0;       // samples of each matrix
  index_t chunks = 0;  // chunks of each matrix
};

// Matrices x(l, ·, ·), l < x.extent(0), of n samples each: one pack (one kernel) for all of them.
using MatrixStack = Kokkos::View<const real***, Kokkos::LayoutStride, MemSpace>;

namespace packing {

using Rows = decltype(SamplePanels::rows);
using Cols = decltype(SamplePanels::cols);

struct PanelShape {
  int dz, coordinate_panels;
  index_t layers, n, chunks;
  PanelShape(MatrixStack x, bool append_one)
      : dz(int(x.extent(2)) + (append_one ? 1 : 0)),
        coordinate_panels((dz + block_rows - 1) / block_rows),
        layers(index_t(x.extent(0))),
        n(index_t(x.extent(1))),
        chunks((n + sample_chunk - 1) / sample_chunk) {}
  index_t row_panels() const { return layers * chunks * (sample_chunk / block_rows); }
};

// A matrix as a stack of one.
inline MatrixStack stack_of(ConstMatrix x) {
  const Kokkos::LayoutStride layout(1, 0, x.extent(0), x.stride(0), x.extent(1), x.stride(1));
  return MatrixStack(x.data(), layout);
}

// Writes every entry of rows and cols (the zero padding included), a chunk of 48 samples of one
// matrix per iteration, each panel in the order of its memory.
template <class Space>
SamplePanels fill_panels(const Space& space, MatrixStack x, bool append_one,
                         const PanelShape& shape, Rows rows, Cols cols) {
  const int dim = int(x.extent(2)), dz = shape.dz, coordinate_panels = shape.coordinate_panels;
  const index_t n = shape.n, chunks = shape.chunks;
  Kokkos::parallel_for(
      "mfsim::tiles::pack_samples", Kokkos::RangePolicy<Space>(space, 0, shape.layers * chunks),
      KOKKOS_LAMBDA(index_t lc) {
        const index_t l = lc / chunks, i0 = lc % chunks * sample_chunk;
        const auto value = [&](int s, int c) {
          const index_t i = i0 + s;
          return i >= n || c > dim ? real(0) : c == dim ? real(append_one ? 1 : 0) : x(l, i, c);
        };
        constexpr int row_panels = sample_chunk / block_rows;
        for (int p = 0; p < row_panels; ++p)
          for (int c = 0; c < dz; ++c)
            for (int j = 0; j < block_rows; ++j)
              rows(lc * row_panels + p, c, j) = value(p * block_rows + j, c);
        for (int cb = 0; cb < coordinate_panels; ++cb)
          for (int s = 0; s < sample_chunk; ++s)
            for (int j = 0; j < block_rows; ++j) cols(lc, cb, s, j) = value(s, cb * block_rows + j);
      });
  return {rows, cols, dz, n, chunks};
}

}  // namespace packing

// The packs of the samples x (rows: samples), in new views; the packing kernel runs on `space`
// (the library's ExecSpace, or in the tests any space that reads MemSpace).
template <class Space>
SamplePanels pack_samples(const Space& space, ConstMatrix x, bool append_one) {
  using namespace packing;
  const MatrixStack stack = stack_of(x);
  const PanelShape shape(stack, append_one);
  return fill_panels(
      space, stack, append_one, shape,
      uninitialized<Rows>("mfsim::tiles::sample_rows", shape.row_panels(), shape.dz, block_rows),
      uninitialized<Cols>("mfsim::tiles::sample_cols", shape.layers * shape.chunks,
                          shape.coordinate_panels, sample_chunk, block_rows));
}

// The packs of every matrix of the stack x, in the buffers `name`_rows and `name`_cols of
// `scratch`.
template <class Space>
SamplePanels pack_layers(const Space& space, MatrixStack x, bool append_one, Workspace& scratch,
                         const std::string& name) {
  using namespace packing;
  const PanelShape shape(x, append_one);
  return fill_panels(space, x, append_one, shape,
                     scratch.view<Rows>(name + "_rows", shape.row_panels(), shape.dz, block_rows),
                     scratch.view<Cols>(name + "_cols", shape.layers * shape.chunks,
                                        shape.coordinate_panels, sample_chunk, block_rows));
}

// The packs of the samples x in the buffers `name`_rows and `name`_cols of `scratch`.
template <class Space>
SamplePanels pack_samples(const Space& space, ConstMatrix x, bool append_one, Workspace& scratch,
                          const std::string& name) {
  return pack_layers(space, packing::stack_of(x), append_one, scratch, name);
}

}  // namespace mfsim::tiles
