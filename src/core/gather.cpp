#include "mfsim/core/gather.hpp"

#include <algorithm>
#include <stdexcept>

namespace mfsim {

std::vector<double> gather_slices(const Communicator& comm, const std::vector<double>& local,
                                  std::int64_t row_size, std::int64_t global_rows, int slices) {
  std::vector<double> stacked(comm.is_root() ? std::size_t(global_rows * row_size) : 0);
  if (slices == 1) {  // contiguous shards in rank order: the stacked rows are in global order
    comm.gather(local.data(), std::int64_t(local.size()), stacked.data());
    return stacked;
  }
  // Every rank's row count first: rank 0 places each rank's part of a slice after the parts of
  // the lower ranks.
  const int size = comm.size();
  const double my_rows = double(std::int64_t(local.size()) / std::max<std::int64_t>(row_size, 1));
  std::vector<double> rows(comm.is_root() ? std::size_t(size) : 0);
  comm.gather(&my_rows, 1, rows.data());
  comm.gather(local.data(), std::int64_t(local.size()), stacked.data());
  if (!comm.is_root()) return stacked;
  std::vector<double> out(stacked.size());
  const std::int64_t per_slice = global_rows / slices;
  std::int64_t source = 0, offset = 0;  // rank r's first value in `stacked`, first row in a slice
  for (int r = 0; r < size; ++r) {
    const std::int64_t local_per_slice = std::int64_t(rows[std::size_t(r)]) / slices;
    for (std::int64_t s = 0; s < slices; ++s) {
      const std::int64_t values = local_per_slice * row_size;
      std::copy(stacked.begin() + source, stacked.begin() + source + values,
                out.begin() + (s * per_slice + offset) * row_size);
      source += values;
    }
    offset += local_per_slice;
  }
  if (offset != per_slice)
    throw std::logic_error("gather_slices: the ranks' rows do not tile the slices");
  return out;
}

ConstMatrix gather_rows(const Communicator& comm, ConstMatrix local, index_t global_rows,
                        int slices) {
  if (comm.size() == 1) return local;  // one rank holds every row, in global order
  const std::size_t cols = local.extent(1);
  const std::vector<double> all = gather_slices(comm, to_host_doubles(local), std::int64_t(cols),
                                                std::int64_t(global_rows), slices);
  if (!comm.is_root()) return Matrix();
  Matrix out("mfsim::gather_rows", global_rows, cols);
  auto out_host = Kokkos::create_mirror_view(out);
  for (std::size_t i = 0; i < all.size(); ++i) out_host.data()[i] = real(all[i]);
  Kokkos::deep_copy(out, out_host);
  return out;
}

}  // namespace mfsim
