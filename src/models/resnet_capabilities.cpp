// Model B's diagnostic capabilities (MATH.md §3.6, §3.8): the Gram parts G₁ (blocks) and G₂ (head),
// the infinite-width kernel of the head, and the weighted path norm. The model itself (its
// passes, velocities and initialisation) is resnet.cpp.
#include <cmath>
#include <string>

#include "detail/gram_kernel.hpp"
#include "detail/resnet_kernels.hpp"
#include "detail/two_layer_kernels.hpp"
#include "detail/two_layer_vector_kernels.hpp"
#include "mfsim/core/host_copy.hpp"
#include "mfsim/models/ntk.hpp"
#include "mfsim/models/resnet.hpp"

namespace mfsim {
namespace {

// out(c) = Σ_{m ∈ rows} weight(m) |theta(m, col + c)| for every c < out.extent(0): one team per
// output column reduces over the rows (a handful of columns, many rows), on `space`.
template <class Weight>
void weighted_abs_column_sums(const ExecSpace& space, const std::string& label,
                              const Weight& weight, ConstMatrix theta, Shard rows, int col,
                              Vector out) {
  using Policy = Kokkos::TeamPolicy<ExecSpace>;
  const index_t first = rows.begin, count = rows.size();
  Kokkos::parallel_for(
      label, Policy(space, int(out.extent(0)), Kokkos::AUTO),
      KOKKOS_LAMBDA(const Policy::member_type& team) {
        const int c = team.league_rank();
        real sum = 0;
        Kokkos::parallel_reduce(
            Kokkos::TeamThreadRange(team, count),
            [&](index_t j, real& acc) {
              acc += weight(first + j) * math::fabs(theta(first + j, col + c));
            },
            sum);
        Kokkos::single(Kokkos::PerTeam(team), [&]() { out(c) = sum; });
      });
}

std::vector<double> host_sum(const ExecSpace& space, const Communicator& comm, ConstVector v) {
  std::vector<double> out = to_host_doubles(space, v);
  comm.allreduce_sum(out.data(), int(out.size()));
  return out;
}

// out(l, i·c + j, ·) = z(l, i, ·) for every output j < c: each state once per output row.
void repeat_rows(const ExecSpace& space, const LayerView& z, int c, const LayerView& out) {
  const index_t rows = index_t(out.extent(1)), d = index_t(out.extent(2));
  Kokkos::parallel_for(
      "mfsim::ResNet::repeat_rows",
      Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(out.extent(0)) * rows),
      KOKKOS_LAMBDA(index_t idx) {
        const index_t l = idx / rows, row = idx % rows;
        for (index_t q = 0; q < d; ++q) out(l, row, q) = z(l, row / c, q);
      });
}

// unit(i·c + j, ·) = e_j: the weights that make a weighted backward pass give ∂f_j/∂z on row i·c +
// j.
void unit_rows(const ExecSpace& space, const Matrix& unit) {
  const int c = int(unit.extent(1));
  Kokkos::parallel_for(
      "mfsim::ResNet::unit_rows", Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(unit.extent(0))),
      KOKKOS_LAMBDA(index_t row) {
        for (int j = 0; j < c; ++j) unit(row, j) = j == int(row % c) ? real(1) : real(0);
      });
}

}  // namespace

std::pair<LayerView, LayerView> ResNetModel::output_sensitivities(const ExecSpace& space,
                                                                  const ParticleState& s,
                                                                  const ResNetEvaluation& e,
                                                                  Workspace& scratch) const {
  const index_t L = spec_.depth, rows = e.samples() * spec_.outputs;
  const int d = data().dim();
  const LayerView states = scratch.view<LayerView>("output_states", L + 1, rows, d);
  const LayerView sensitivities = scratch.view<LayerView>("output_sensitivities", L + 1, rows, d);
  const Matrix unit = scratch.view<Matrix>("output_units", rows, spec_.outputs);
  repeat_rows(space, e.states, spec_.outputs, states);
  unit_rows(space, unit);
  const LayerView panels = detail::transpose_layers(space, s.theta[blocks], L,
                                                    local_layer(0).size(), scratch, "gram_panels");
  backward_pass(space, s, panels, states, unit, sensitivities, scratch);
  return {states, sensitivities};
}

void ResNetModel::accumulate_block_gram(const ExecSpace& space, const ParticleState& s, int layer,
                                        const LayerView& states, const LayerView& sensitivities,
                                        Matrix gram, Workspace& scratch) const {
  const real scale = real(spec_.alpha / std::sqrt(double(spec_.depth) * double(spec_.width)));
  const Shard rows = local_layer(layer);
  if (rows.size() == 0) return;
  const auto slice = [](const LayerView& v, index_t l) {
    return ConstMatrix(Kokkos::subview(v, l, Kokkos::ALL, Kokkos::ALL));
  };
  with_activation(spec_.activation, [&](auto act) {
    detail::accumulate_block_gram(space, s.theta[blocks], rows.begin, rows.size(),
                                  slice(states, layer), slice(sensitivities, layer + 1), scale, act,
                                  gram, scratch);
  });
}

void ResNetModel::accumulate_gram(const ExecSpace& space, const ParticleState& s,
                                  const Evaluation& evaluation, int part, Matrix gram,
                                  Workspace& scratch) const {
  const auto& e = static_cast<const ResNetEvaluation&>(evaluation);
  const int c = spec_.outputs;
  if (part == 0) {
    // Layer by layer in the factored form (resnet_kernels.hpp): two rank-M updates per layer, on
    // rows i·c + j with c > 1 (the sensitivities of every output computed once for all layers).
    if (c == 1) {
      for (index_t l = 0; l < spec_.depth; ++l)
        accumulate_gram_layer(space, s, evaluation, part, int(l), gram, scratch);
      return;
    }
    const auto [states, sensitivities] = output_sensitivities(space, s, e, scratch);
    for (index_t l = 0; l < spec_.depth; ++l)
      accumulate_block_gram(space, s, int(l), states, sensitivities, gram, scratch);
  } else {
    const real scale = real(spec_.beta / std::sqrt(double(spec_.head_width)));
    const ConstMatrix z_last = e.state(spec_.depth);
    with_activation(spec_.head_activation, [&](auto act) {
      if (c == 1)
        detail::accumulate_two_layer_gram(space, s.theta[head], z_last, scale, false, act, gram,
                                          scratch);
      else
        mfsim::accumulate_gram(space,
                               detail::TwoLayerVectorFeatures<decltype(act)>{s.theta[head], z_last,
                                                                             scale, false, act, c},
                               index_t(s.theta[head].extent(0)), gram, scratch);
    });
  }
}

void ResNetModel::accumulate_gram_layer(const ExecSpace& space, const ParticleState& s,
                                        const Evaluation& evaluation, int part, int layer,
                                        Matrix gram, Workspace& scratch) const {
  if (part != 0) return;
  const auto& e = static_cast<const ResNetEvaluation&>(evaluation);
  if (spec_.outputs > 1) {
    // The sensitivities of every output, recomputed for this layer alone (gram_layers only).
    const auto [states, sensitivities] = output_sensitivities(space, s, e, scratch);
    accumulate_block_gram(space, s, layer, states, sensitivities, gram, scratch);
    return;
  }
  const real scale = real(spec_.alpha / std::sqrt(double(spec_.depth) * double(spec_.width)));
  const Shard rows = local_layer(layer);
  if (rows.size() == 0) return;
  with_activation(spec_.activation, [&](auto act) {
    detail::accumulate_block_gram(space, s.theta[blocks], rows.begin, rows.size(), e.state(layer),
                                  e.sensitivity(layer + 1), scale, act, gram, scratch);
  });
}

double ResNetModel::infinite_width_gram(const ExecSpace& space, Matrix kernel) const {
  const TwoLayerKernelSpec k{spec_.head_activation, spec_.std_a, spec_.std_v, 0.0, false};
  two_layer_kernel(space, k, data().x_train, kernel);
  return spec_.beta * spec_.beta;
}

std::map<std::string, double> ResNetModel::path_norms(const ExecSpace& space,
                                                      const ParticleState& s,
                                                      Workspace& scratch) const {
  const int d = data().dim();
  ConstMatrix head_theta = s.theta[head], blocks_theta = s.theta[blocks];
  const Vector sums = scratch.view<Vector>("path_sums", d + 1);
  Kokkos::deep_copy(space, sums, real(0));
  // The row vector r (length d + 1; the constant coordinate has no head weight) starts at c, with
  // |a_k|₂ for output weights a_k ∈ R^outputs (MATH.md §3.9).
  const auto head_rows = Shard{0, groups_[head].local_count};
  const int outputs = spec_.outputs;
  const auto abs_a = KOKKOS_LAMBDA(index_t k) {
    if (outputs == 1) return real(math::fabs(head_theta(k, 0)));
    real a2 = 0;
    for (int j = 0; j < outputs; ++j) a2 += head_theta(k, j) * head_theta(k, j);
    return real(math::sqrt(a2));
  };
  weighted_abs_column_sums(space, "mfsim::ResNet::head_path_weights", abs_a, head_theta, head_rows,
                           outputs, Kokkos::subview(sums, std::make_pair(0, d)));
  std::vector<double> r = host_sum(space, comm(), sums);
  r[std::size_t(d)] = 0;
  for (double& c : r) c *= spec_.beta / double(spec_.head_width);

  // r ← r A_l for l = L−1, …, 0: r A_l = r + c (α/(LM)) Σ_m (Σ_j r_j |u_{m,j}|) |(w_m, b_m)|.
  const Vector row = scratch.view<Vector>("path_row", d + 1);
  std::vector<real> row_values(std::size_t(d) + 1);
  const Kokkos::View<real*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged> row_host(row_values.data(),
                                                                                 row_values.size());
  const double coupling =
      spec_.path_norm_weight * spec_.alpha / (double(spec_.depth) * double(spec_.width));
  for (index_t l = spec_.depth - 1; l >= 0; --l) {
    for (int j = 0; j <= d; ++j) row_host(j) = real(r[std::size_t(j)]);
    Kokkos::deep_copy(space, row, row_host);
    const auto through_u = KOKKOS_LAMBDA(index_t m) {
      real t = 0;
      for (int j = 0; j < d; ++j) t += row(j) * math::fabs(blocks_theta(m, j));
      return t;
    };
    weighted_abs_column_sums(space, "mfsim::ResNet::layer_path_sums", through_u, blocks_theta,
                             local_layer(l), d, sums);
    // (Its host read also waits for the copy of row_values before they change.)
    const std::vector<double> layer_sums = host_sum(space, comm(), sums);
    for (int j = 0; j <= d; ++j) r[std::size_t(j)] += coupling * layer_sums[std::size_t(j)];
  }
  double norm = 0;
  for (double c : r) norm += std::fabs(c);
  return {{"path_norm_weighted", norm}};
}

std::map<std::string, std::vector<double>> ResNetModel::layer_path_norms(
    const ExecSpace& space, const ParticleState& s) const {
  const int d = data().dim();
  ConstMatrix theta = s.theta[blocks];
  std::vector<double> norms(std::size_t(spec_.depth), 0.0);
  for (index_t l = 0; l < spec_.depth; ++l) {
    const Shard rows = local_layer(l);
    double sum = 0;
    // Columns u_1..u_d, then w_1..w_d and b (the constructor's order).
    Kokkos::parallel_reduce(
        "mfsim::ResNet::layer_path_norm",
        Kokkos::RangePolicy<ExecSpace>(space, rows.begin, rows.end),
        KOKKOS_LAMBDA(index_t m, double& acc) {
          double u = 0, w = 0;
          for (int j = 0; j < d; ++j) u += math::fabs(double(theta(m, j)));
          for (int j = d; j <= 2 * d; ++j) w += math::fabs(double(theta(m, j)));
          acc += u * w;
        },
        sum);
    norms[std::size_t(l)] = sum;
  }
  comm().allreduce_sum(norms.data(), int(norms.size()));
  for (double& p : norms) p *= spec_.alpha / double(spec_.width);
  return {{"path_norm_blocks_l1_layers", norms}};
}

}  // namespace mfsim
