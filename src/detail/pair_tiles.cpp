#include "detail/pair_tiles.hpp"

namespace mfsim::tiles {
namespace {

using Rows = decltype(SamplePanels::rows);
using Cols = decltype(SamplePanels::cols);

struct PanelShape {
  int dz, coordinate_panels;
  index_t n, chunks;
  PanelShape(ConstMatrix x, bool append_one)
      : dz(int(x.extent(1)) + (append_one ? 1 : 0)),
        coordinate_panels((dz + block_rows - 1) / block_rows),
        n(index_t(x.extent(0))),
        chunks((n + sample_chunk - 1) / sample_chunk) {}
};

// Writes every entry of p.rows and p.cols (the zero padding included).
void fill_panels(ConstMatrix x, bool append_one, const SamplePanels& p, int coordinate_panels) {
  const int dim = int(x.extent(1));
  const auto rows = p.rows;
  const auto cols = p.cols;
  const index_t n = p.n;
  const index_t chunks = index_t(p.cols.extent(0));
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
}

}  // namespace

SamplePanels pack_samples(ConstMatrix x, bool append_one) {
  const PanelShape shape(x, append_one);
  SamplePanels p;
  p.dz = shape.dz;
  p.n = shape.n;
  p.rows = uninitialized<Rows>("mfsim::tiles::sample_rows",
                               shape.chunks * (sample_chunk / block_rows), p.dz, block_rows);
  p.cols = uninitialized<Cols>("mfsim::tiles::sample_cols", shape.chunks, shape.coordinate_panels,
                               sample_chunk, block_rows);
  fill_panels(x, append_one, p, shape.coordinate_panels);
  return p;
}

SamplePanels pack_samples(ConstMatrix x, bool append_one, Workspace& scratch,
                          const std::string& name) {
  const PanelShape shape(x, append_one);
  SamplePanels p;
  p.dz = shape.dz;
  p.n = shape.n;
  p.rows = scratch.view<Rows>(name + "_rows", shape.chunks * (sample_chunk / block_rows), p.dz,
                              block_rows);
  p.cols = scratch.view<Cols>(name + "_cols", shape.chunks, shape.coordinate_panels, sample_chunk,
                              block_rows);
  fill_panels(x, append_one, p, shape.coordinate_panels);
  return p;
}

}  // namespace mfsim::tiles
