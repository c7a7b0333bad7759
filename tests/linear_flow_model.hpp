#pragma once
// A test-only model with a linear velocity field v(θ) = −Aθ + b per group (Ψ = ½θᵀAθ − b·θ, so
// ΔΨ = tr A): Gaussian laws stay Gaussian, which gives closed forms for KL and path lengths
// (MATH.md §6 V4b). Its groups are free-form, so it also stands in for a multi-group model (the
// ResNet) in tests of observable naming; each Gram part adds a fixed matrix.
#include <string>
#include <vector>

#include "mfsim/core/random.hpp"
#include "mfsim/models/gram_model.hpp"
#include "mfsim/models/model.hpp"

namespace mfsim::test {

struct LinearGroup {
  GroupSpec spec;         // name, columns, global_count, init_std, label, slices, ...
  std::vector<double> a;  // D×D row-major
  std::vector<double> b;  // D (empty: 0)
};

class LinearFlowModel final : public Model, public GramModel {
 public:
  // `gram_parts`: name and the matrix (n×n row-major, n = data.n_train()) each part adds.
  LinearFlowModel(std::vector<LinearGroup> groups, const Dataset& data = {},
                  std::vector<std::pair<std::string, std::vector<double>>> gram_parts = {})
      : Model(data, self_communicator()), parts_(std::move(gram_parts)) {
    for (auto& g : groups) {
      shard_group(g.spec, 0, 1);  // one process: every row
      const int d = g.spec.dim();
      if (g.b.empty()) g.b.assign(std::size_t(d), 0.0);
      Matrix a("linear::A", d, d);
      Vector b("linear::b", d);
      auto ah = Kokkos::create_mirror_view(a);
      auto bh = Kokkos::create_mirror_view(b);
      double trace = 0;
      for (int i = 0; i < d; ++i) {
        bh(i) = real(g.b[std::size_t(i)]);
        trace += g.a[std::size_t(i * d + i)];
        for (int j = 0; j < d; ++j) ah(i, j) = real(g.a[std::size_t(i * d + j)]);
      }
      Kokkos::deep_copy(a, ah);
      Kokkos::deep_copy(b, bh);
      specs_.push_back(g.spec);
      a_.push_back(a);
      b_.push_back(b);
      trace_.push_back(trace);
    }
  }

  std::string kind() const override { return "linear_flow"; }
  const std::vector<GroupSpec>& groups() const override { return specs_; }

  void initialize(ParticleState& s, std::uint64_t seed, bool) const override {
    for (std::size_t g = 0; g < specs_.size(); ++g) {
      auto host = Kokkos::create_mirror_view(s.theta[g]);
      const CounterRng rng(seed, rng_particles + std::uint32_t(g) * 100);
      for (index_t k = 0; k < specs_[g].local_count; ++k)
        for (int j = 0; j < specs_[g].dim(); ++j)
          host(k, j) = real(specs_[g].init_std[std::size_t(j)] * rng.normal(std::uint64_t(k), j));
      Kokkos::deep_copy(s.theta[g], host);
    }
  }

  using Model::make_evaluation;
  std::unique_ptr<Evaluation> make_evaluation(const ExecSpace&, index_t minibatch) const override {
    return std::make_unique<Evaluation>(data(), minibatch);
  }

  using Model::evaluate;
  real evaluate(const ExecSpace& space, const ParticleState& s, Evaluation& e,
                ParticleState& dsdt) const override {
    Kokkos::deep_copy(space, e.residual, real(0));  // no data
    e.loss = 1;
    for (std::size_t g = 0; g < specs_.size(); ++g) {
      ConstMatrix th = s.theta[g], a = a_[g];
      ConstVector b = b_[g];
      Matrix v = dsdt.theta[g];
      const int d = specs_[g].dim();
      Kokkos::parallel_for(
          "test::Linear::velocity", Kokkos::RangePolicy<ExecSpace>(space, 0, index_t(th.extent(0))),
          KOKKOS_LAMBDA(index_t k) {
            for (int i = 0; i < d; ++i) {
              real sum = b(i);
              for (int j = 0; j < d; ++j) sum -= a(i, j) * th(k, j);
              v(k, i) = sum;
            }
          });
      if (dsdt.tracks_log_density()) Kokkos::deep_copy(space, dsdt.log_density[g], real(trace_[g]));
    }
    return 1;  // no data, no loss; any positive value keeps run_flow's loss_tol = 0 from stopping
  }

  using Model::predict;
  void predict(const ExecSpace& space, const ParticleState&, ConstMatrix, Vector f,
               Workspace&) const override {
    Kokkos::deep_copy(space, f, real(0));
  }
  std::map<std::string, std::string> scalings(double) const override { return {}; }
  std::map<std::string, Activation> activations() const override { return {}; }

  std::vector<std::string> gram_parts() const override {
    std::vector<std::string> names;
    for (const auto& p : parts_) names.push_back(p.first);
    return names;
  }
  using GramModel::accumulate_gram;
  void accumulate_gram(const ExecSpace& space, const ParticleState&, const Evaluation&, int part,
                       Matrix gram, Workspace&) const override {
    space.fence();  // the host reads G
    auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gram);
    const auto& m = parts_[std::size_t(part)].second;
    for (std::size_t i = 0; i < host.extent(0); ++i)
      for (std::size_t j = 0; j < host.extent(1); ++j)
        host(i, j) += real(m[i * host.extent(1) + j]);
    Kokkos::deep_copy(gram, host);
  }

 private:
  std::vector<GroupSpec> specs_;
  std::vector<Matrix> a_;
  std::vector<Vector> b_;
  std::vector<double> trace_;
  std::vector<std::pair<std::string, std::vector<double>>> parts_;
};

// A group spec with `count` particles in R^{stds.size()}.
inline GroupSpec linear_group_spec(const std::string& name, index_t count,
                                   const std::vector<double>& stds, const std::string& label = "",
                                   int slices = 1) {
  GroupSpec g;
  g.name = name;
  for (std::size_t j = 0; j < stds.size(); ++j) g.columns.push_back("x" + std::to_string(j));
  g.global_count = count;
  g.init_std = stds;
  g.label = label;
  g.slices = slices;
  shard_group(g, 0, 1);
  return g;
}

}  // namespace mfsim::test
