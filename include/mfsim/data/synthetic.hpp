#pragma once
// Seeded synthetic data: inputs on the sphere or Gaussian; targets from a teacher network or random
// ±1 labels; optional label noise on the training targets.
#include <cmath>
#include <cstdint>
#include <vector>

#include "mfsim/core/activation.hpp"
#include "mfsim/data/dataset.hpp"

namespace mfsim {

enum class InputDistribution { sphere, gaussian };
enum class TargetKind { teacher, random_labels };

struct SyntheticDataSpec {
  int dim = 5;
  index_t n_train = 100;
  index_t n_test = 1000;
  InputDistribution inputs = InputDistribution::sphere;
  TargetKind target = TargetKind::teacher;
  // Teacher y = σ*(w*·x) for width 1 (Liu–Dadi–Cevher), y = T^{-1/2} Σ_j a*_j σ*(w*_j·x) for
  // width T > 1; w*_j ~ N(0, I_d), a*_j ~ N(0, 1).
  int teacher_width = 1;
  Activation teacher_activation{ActivationKind::relu, 1};
  // inputs = gaussian: x ~ N(0, diag(covariance_diagonal)), N(0, I_d) when empty.
  std::vector<double> covariance_diagonal;
  double noise = 0;  // std of Gaussian noise added to the training targets only
  std::uint64_t seed = 1;
  // Classification (model.loss = "logistic"): every target becomes its sign, ±1 (+1 at 0), after
  // the noise, so that the noise flips labels near the teacher's boundary.
  bool sign_labels = false;
};

Dataset make_synthetic_dataset(const SyntheticDataSpec& spec);

// The teacher of the spec's seed: rows (w*_j, a*_j), [teacher_width][dim + 1], and the factor of
// its output (1 for width 1, T^{-1/2} otherwise).
Matrix synthetic_teacher(const SyntheticDataSpec& spec);
// `count` inputs of the spec's law on a stream of their own (rng_probe_inputs): the population
// flow's probe set, [count][dim], a pure function of the seed like the data set.
Matrix synthetic_probe(const SyntheticDataSpec& spec, index_t count);
inline double teacher_output_scale(int width) {
  return width == 1 ? 1.0 : 1.0 / std::sqrt(double(width));
}

// Fresh samples of the same law (inputs, teacher, training label noise) on streams of their own,
// for online SGD: draw(id, x, y) fills the rows of x, y with samples id, id + 1, ... — a pure
// function of the seed and the ids, like the data set itself.
// The kernels run on the instance `space` (the teacher's in the constructor, the samples' in
// draw); without it, the default instance.
class SyntheticSampler {
 public:
  SyntheticSampler(const ExecSpace& space, const SyntheticDataSpec& spec);
  explicit SyntheticSampler(const SyntheticDataSpec& spec) : SyntheticSampler(ExecSpace(), spec) {}
  void draw(const ExecSpace& space, std::uint64_t first_id, Matrix x, Vector y) const;
  void draw(std::uint64_t first_id, Matrix x, Vector y) const { draw(ExecSpace(), first_id, x, y); }

 private:
  SyntheticDataSpec spec_;
  Matrix teacher_;
  Vector input_scales_;  // √ of the covariance diagonal (none: unit)
};

}  // namespace mfsim
