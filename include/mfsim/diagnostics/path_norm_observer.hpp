#pragma once
// Path norms of the groups of two-layer units (GroupSpec::path_norm_scale = β > 0; MATH.md §2.7),
// in the mean-field convention (width-free):
//   path_norm_<label>_l1   P₁ = β · mean_k |a_k| ‖w̃_k‖₁,   w̃_k = (w_k, b_k) the input weights
//   path_norm_<label>_l2   P₂ = β · mean_k |a_k| ‖w̃_k‖₂
//   rademacher_<label>_bound   2 P₁ sqrt(2 log(2d') / n): the empirical Rademacher complexity of
//       the ℓ1-path-norm ball of radius P₁ (E, Ma & Wu 2019; docs/corrections.md), d' = dim w̃
//       (d + 1 with a bias), n = n_train. Valid for ReLU with ‖x̃‖_∞ ≤ 1 (true on the sphere).
// (The label is empty for model A: path_norm_l1, path_norm_l2, rademacher_bound.)
// Then whatever a PathNormModel adds (the ResNet's path_norm_weighted, and with a layer axis
// path_norm_blocks_l1_layers [L]).
#include "mfsim/flow/observer.hpp"

namespace mfsim {

class PathNormObserver final : public Observer {
 public:
  explicit PathNormObserver(index_t every) : every_(every) {}
  void observe(const FlowPoint& p, ObservableSink& sink) override;
  std::string name() const override { return "path_norm"; }
  index_t every() const override { return every_; }

 private:
  index_t every_;
  Workspace scratch_;  // the model's path-norm sums
};

// P₁ and P₂ of a group of two-layer units (`theta`: this rank's particles of `group`), summed over
// every rank of `comm`.
struct PathNorms {
  double l1, l2;
};
PathNorms path_norms(const ExecSpace& space, const GroupSpec& group, ConstMatrix theta,
                     const Communicator& comm);
inline PathNorms path_norms(const GroupSpec& group, ConstMatrix theta, const Communicator& comm) {
  return path_norms(ExecSpace(), group, theta, comm);
}

// The width-free Rademacher bound 2 R sqrt(2 log(2d') / n) of the ℓ1-path-norm ball of radius R.
double path_norm_rademacher_bound(double radius, int input_dim, index_t samples);

}  // namespace mfsim
