#include "mfsim/app/memory_check.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "mfsim/core/error.hpp"
#include "mfsim/core/memory.hpp"

namespace mfsim {
namespace {

// long double: the products of absurd sizes (2^63 × d) must not wrap around.
using ld = long double;

// An array the run will allocate, in doubles, and the key that sizes it.
struct Need {
  std::string key;
  ld values;
};

// The particles' arrays: the state, the full batch's velocity and the previous step; the
// integrator's stages; a minibatch's own velocity; the regularisers' drift; the population flow's
// gathered particles (every particle on every rank).
Need particle_arrays(const Config& c, int dim, bool minibatches) {
  std::string key = "model.width";
  if (c.model.kind() == ModelKind::resnet) {
    const ResNetSpec& r = c.model.resnet();
    if (r.head_coordinates(dim) > r.block_coordinates(dim))
      key = "model.head_width";
    else if (r.depth > r.width)
      key = "model.depth";
  }
  int copies = 3;
  if (c.flow.integrator == IntegratorKind::heun) copies += 2;
  if (c.flow.integrator == IntegratorKind::rk4) copies += 4;
  if (minibatches) ++copies;
  if (c.flow.regularisation.has_drift()) ++copies;
  if (c.data.kind == DataKind::population) ++copies;
  return {key, copies * c.model.coordinates(dim)};
}

// The sample counts and dimension the run's arrays are sized by: the data's once read, else the
// configured synthetic sizes (a data file's are not known before it is read).
struct Sizes {
  ld dim, n_train, n_test;
  bool samples_allocated;  // the data is read: its samples and labels exist already
};

// The Gram observer's arrays, in units of (n_train · c)² (MATH.md §1.5: one row a sample and
// output): the total and each part on the device, with gram_layers one layer's term, the host
// copy (and a host part where there are several parts or layers); and the eigensolver's two, its
// dense copy and Eigen's own (the tridiagonalisation, or Lanczos's shift-invert factorisation).
ld gram_matrices(const Config& c) {
  const bool layers = c.diagnostics.gram_layers && c.model.kind() == ModelKind::resnet;
  const ld parts = c.model.kind() == ModelKind::resnet ? 2 : 1;
  const ld device = 1 + parts + (layers ? 1 : 0);
  const ld host = 1 + (parts > 1 || layers ? 1 : 0);
  return device + host + 2;
}

// The arrays sized by the samples: the samples, the teacher, a minibatch's samples, the ResNet's
// layer states and sensitivities of every evaluation (full batch, test set, minibatch: (L + 1)·n·d
// each), the Gram matrix and its eigensolver, the Gibbs gap's sample points and model A's
// activation caches.
std::vector<Need> sample_arrays(const Config& c, const Sizes& z, bool minibatches) {
  std::vector<Need> needs;
  const SyntheticDataSpec& g = c.data.synthetic;
  const ld d = z.dim, n_train = z.n_train, n_test = z.n_test;
  const ld batch = minibatches ? ld(c.flow.minibatch.size) : 0;
  if (!z.samples_allocated) {
    needs.push_back(
        {n_test > n_train ? "data.n_test" : "data.n_train", (n_train + n_test) * (d + 1)});
    if (g.target == TargetKind::teacher)
      needs.push_back({"data.teacher_width", ld(g.teacher_width) * (d + 1)});
  }
  // A minibatch's samples and labels (drawn fresh each step when online) and its evaluation.
  if (minibatches) needs.push_back({"flow.batch_size", batch * (d + 2)});
  if (c.model.kind() == ModelKind::resnet) {
    const ld layers = ld(c.model.resnet().depth) + 1;
    needs.push_back({"model.depth", layers * (n_train + n_test + batch) * (2 * d + 1)});
  }
  // Model A's activation caches (n × m pre-activations of the full batch, and of a minibatch),
  // where they fit flow.activation_cache_bytes.
  if (c.model.kind() == ModelKind::two_layer && c.data.kind != DataKind::population) {
    const TwoLayerSpec& t = c.model.two_layer();
    const ld width = ld(t.width);
    ld cached = 0;
    if (t.caches_activations(n_train, width, int(d))) cached += n_train * width;
    if (minibatches && t.caches_activations(batch, width, int(d))) cached += batch * width;
    if (cached > 0) needs.push_back({"flow.activation_cache_bytes", cached});
  }
  // Model B's: π and q·u of every block pair, 2 L n M reals (M rounded up to 64-byte blocks), of
  // the full batch and of a minibatch.
  if (c.model.kind() == ModelKind::resnet) {
    const ResNetSpec& b = c.model.resnet();
    const ld rows = 2 * ld(b.depth) * std::ceil(ld(b.width) / ResNetSpec::cache_block) *
                    ResNetSpec::cache_block;
    ld cached = 0;
    if (b.caches_activations(n_train, ld(b.width), int(d))) cached += n_train * rows;
    if (minibatches && b.caches_activations(batch, ld(b.width), int(d))) cached += batch * rows;
    if (cached > 0) needs.push_back({"flow.activation_cache_bytes", cached});
  }
  const DiagnosticsSettings& s = c.diagnostics;
  // The population flow's Gram matrix is on its probe set (drawn with the data, in Dataset).
  const bool probe = c.data.kind == DataKind::population && s.probe_samples > 0;
  const ld rows = (probe ? ld(s.probe_samples) : n_train) * ld(c.model.outputs());
  if (probe && !z.samples_allocated)
    needs.push_back({"diagnostics.probe_samples", ld(s.probe_samples) * d});
  if (s.gram && rows <= ld(s.gram_max_samples)) {
    needs.push_back({"diagnostics.gram_max_samples", gram_matrices(c) * rows * rows});
    // Model B with c > 1: G₁'s states and sensitivities of every output row, (L + 1)·nc·d each.
    if (c.model.kind() == ModelKind::resnet && c.model.outputs() > 1)
      needs.push_back({"diagnostics.gram_max_samples",
                       (2 * (ld(c.model.resnet().depth) + 1) * d + ld(c.model.outputs())) * rows});
  }
  const Regularisation& r = c.flow.regularisation;
  if (s.gibbs_gap && s.free_energy && r.temperature > 0 && r.weight_decay > 0 &&
      c.model.kind() == ModelKind::two_layer) {
    const ld particle_dim = c.model.two_layer().particle_dim(int(z.dim));
    needs.push_back({"diagnostics.gibbs_samples", ld(s.gibbs_samples) * (2 * particle_dim + 1)});
  }
  return needs;
}

}  // namespace

void check_memory(const Config& c, const Dataset* data) {
  const std::uint64_t memory = physical_memory_bytes();
  if (memory == 0) return;
  // Before a data file is read, only the particles' arrays are known.
  const SyntheticDataSpec& g = c.data.synthetic;
  const bool sized = data || c.data.kind != DataKind::file;
  const Sizes sizes = data ? Sizes{ld(data->dim()), ld(data->n_train()), ld(data->n_test()), true}
                           : Sizes{ld(g.dim), ld(g.n_train), ld(g.n_test), false};
  const MinibatchSettings& b = c.flow.minibatch;
  // Whether the run steps on minibatches (MinibatchSettings::active, with the data's n_train;
  // before a data file is read its count is not known: any batch size may be active).
  const bool minibatches = b.size > 0 && (b.online || !sized || ld(b.size) < sizes.n_train);
  std::vector<Need> needs;
  if (sized) needs = sample_arrays(c, sizes, minibatches);
  needs.push_back(particle_arrays(c, int(sizes.dim), minibatches));
  ld values = 0;
  for (const Need& need : needs) values += need.values;
  const ld bytes = values * ld(sizeof(double));
  if (bytes <= ld(memory)) return;
  // The key to lower: the one that sizes the largest array.
  const Need& largest = *std::max_element(
      needs.begin(), needs.end(), [](const Need& a, const Need& b) { return a.values < b.values; });
  throw InputError(
      fmt::format("{}: the run would need at least {} of memory, more than this "
                  "machine has ({})",
                  largest.key, format_bytes(bytes), format_bytes(ld(memory))));
}

}  // namespace mfsim
