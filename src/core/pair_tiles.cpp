#include "mfsim/core/pair_tiles.hpp"

namespace mfsim::tiles {

SamplePanels pack_samples(ConstMatrix x, bool append_one) {
  SamplePanels p;
  const int dim = int(x.extent(1));
  p.dz = dim + (append_one ? 1 : 0);
  p.n = index_t(x.extent(0));
  const index_t chunks = (p.n + sample_chunk - 1) / sample_chunk;
  const int coordinate_panels = (p.dz + block_rows - 1) / block_rows;
  p.rows = decltype(p.rows)("mfsim::tiles::sample_rows", chunks * (sample_chunk / block_rows), p.dz,
                            block_rows);
  p.cols = decltype(p.cols)("mfsim::tiles::sample_cols", chunks, coordinate_panels, sample_chunk,
                            block_rows);
  auto rows = p.rows;
  auto cols = p.cols;
  const index_t n = p.n;
  Kokkos::parallel_for(
      "mfsim::tiles::pack_samples", Kokkos::RangePolicy<ExecSpace>(0, chunks * sample_chunk),
      KOKKOS_LAMBDA(index_t i) {
        for (int c = 0; c < coordinate_panels * block_rows; ++c) {
          const real xv = i >= n || c > dim ? real(0)
                          : c == dim        ? real(append_one ? 1 : 0)
                                            : x(i, c);
          if (c < dim + (append_one ? 1 : 0)) rows(i / block_rows, c, i % block_rows) = xv;
          cols(i / sample_chunk, c / block_rows, i % sample_chunk, c % block_rows) = xv;
        }
      });
  return p;
}

}  // namespace mfsim::tiles
