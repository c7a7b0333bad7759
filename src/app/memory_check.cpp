#include "mfsim/app/memory_check.hpp"

#include <fmt/format.h>

#include "mfsim/core/error.hpp"
#include "mfsim/core/memory.hpp"

namespace mfsim {

void check_memory(const Config& c) {
  const std::uint64_t memory = physical_memory_bytes();
  if (memory == 0) return;
  // long double: the products of absurd sizes (2^63 × d) must not wrap around.
  using ld = long double;
  const int dim = c.data.synthetic.dim;
  const ld d = ld(dim);
  const ld particle_values = c.model.coordinates(dim);
  std::string particle_key = "model.width";
  if (c.model.kind() == ModelKind::resnet) {
    const ResNetSpec& r = c.model.resnet();
    if (r.head_coordinates(dim) > r.block_coordinates(dim))
      particle_key = "model.head_width";
    else if (r.depth > r.width)
      particle_key = "model.depth";
  }
  // A data file brings its own sizes (checked when it is read).
  ld data_values = 0;
  std::string data_key = "data.n_train";
  if (c.data.kind != DataKind::file) {
    data_values = (ld(c.data.synthetic.n_train) + ld(c.data.synthetic.n_test)) * (d + 1);
    if (c.data.synthetic.n_test > c.data.synthetic.n_train) data_key = "data.n_test";
  }
  const ld bytes = (3 * particle_values + data_values) * ld(sizeof(double));
  if (bytes <= ld(memory)) return;
  const std::string& key = 3 * particle_values >= data_values ? particle_key : data_key;
  throw InputError(
      fmt::format("{}: the run would need at least {} of memory, more than this "
                  "machine has ({})",
                  key, format_bytes(bytes), format_bytes(ld(memory))));
}

}  // namespace mfsim
