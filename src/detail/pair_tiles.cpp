#include "detail/pair_tiles.hpp"

namespace mfsim::tiles {
namespace {

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
MatrixStack stack_of(ConstMatrix x) {
  const Kokkos::LayoutStride layout(1, 0, x.extent(0), x.stride(0), x.extent(1), x.stride(1));
  return MatrixStack(x.data(), layout);
}

// Writes every entry of rows and cols (the zero padding included), a chunk of 48 samples of one
// matrix per iteration, each panel in the order of its memory.
SamplePanels fill_panels(const ExecSpace& space, MatrixStack x, bool append_one,
                         const PanelShape& shape, Rows rows, Cols cols) {
  const int dim = int(x.extent(2)), dz = shape.dz, coordinate_panels = shape.coordinate_panels;
  const index_t n = shape.n, chunks = shape.chunks;
  Kokkos::parallel_for(
      "mfsim::tiles::pack_samples", Kokkos::RangePolicy<ExecSpace>(space, 0, shape.layers * chunks),
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

}  // namespace

SamplePanels pack_samples(const ExecSpace& space, ConstMatrix x, bool append_one) {
  const MatrixStack stack = stack_of(x);
  const PanelShape shape(stack, append_one);
  return fill_panels(
      space, stack, append_one, shape,
      uninitialized<Rows>("mfsim::tiles::sample_rows", shape.row_panels(), shape.dz, block_rows),
      uninitialized<Cols>("mfsim::tiles::sample_cols", shape.layers * shape.chunks,
                          shape.coordinate_panels, sample_chunk, block_rows));
}

SamplePanels pack_samples(const ExecSpace& space, ConstMatrix x, bool append_one,
                          Workspace& scratch, const std::string& name) {
  return pack_layers(space, stack_of(x), append_one, scratch, name);
}

SamplePanels pack_layers(const ExecSpace& space, MatrixStack x, bool append_one, Workspace& scratch,
                         const std::string& name) {
  const PanelShape shape(x, append_one);
  return fill_panels(space, x, append_one, shape,
                     scratch.view<Rows>(name + "_rows", shape.row_panels(), shape.dz, block_rows),
                     scratch.view<Cols>(name + "_cols", shape.layers * shape.chunks,
                                        shape.coordinate_panels, sample_chunk, block_rows));
}

}  // namespace mfsim::tiles
