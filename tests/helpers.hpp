#pragma once
// Shared test utilities: host copies, small problems, tolerances per precision.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "mfsim/core/communicator.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/core/types.hpp"
#include "mfsim/data/synthetic.hpp"
#include "mfsim/io/config.hpp"
#include "mfsim/models/model.hpp"
#include "mfsim/models/particle_state.hpp"
#include "mfsim/models/resnet.hpp"

namespace mfsim::test {

// Relative tolerance that a double build meets at `double_tol`; float builds get the
// corresponding single-precision slack.
inline double tol(double double_tol, double float_tol) {
  return sizeof(real) == sizeof(double) ? double_tol : float_tol;
}
inline bool is_double() {
  return sizeof(real) == sizeof(double);
}

inline std::vector<double> host(ConstMatrix m) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), m);
  std::vector<double> out(h.extent(0) * h.extent(1));
  for (std::size_t i = 0; i < h.extent(0); ++i)
    for (std::size_t j = 0; j < h.extent(1); ++j) out[i * h.extent(1) + j] = h(i, j);
  return out;
}

inline std::vector<double> host(ConstVector v) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), v);
  return std::vector<double>(h.data(), h.data() + h.extent(0));
}

inline void set(Matrix m, const std::vector<double>& values) {
  auto h = Kokkos::create_mirror_view(m);
  for (std::size_t i = 0; i < h.extent(0); ++i)
    for (std::size_t j = 0; j < h.extent(1); ++j) h(i, j) = real(values[i * h.extent(1) + j]);
  Kokkos::deep_copy(m, h);
}

inline SyntheticDataSpec small_data(int dim = 3, index_t n_train = 12, index_t n_test = 5) {
  SyntheticDataSpec s;
  s.dim = dim;
  s.n_train = n_train;
  s.n_test = n_test;
  s.seed = 7;
  return s;
}

inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::fmax(m, std::fabs(a[i] - b[i]));
  return m;
}

inline double max_abs(const std::vector<double>& a) {
  double m = 0;
  for (double v : a) m = std::fmax(m, std::fabs(v));
  return m;
}

// Relative difference of two arrays: max |a − b| / max |b|.
inline double relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  return max_abs_diff(a, b) / std::fmax(max_abs(b), 1e-300);
}

// −flow_scale ∂loss/∂θ_j at every coordinate j of θ, by central differences of step h: the
// reference for a velocity −flow_scale ∇L. `loss` takes the perturbed copy of θ.
template <class Loss>
std::vector<double> minus_scaled_gradient(std::vector<double> theta, const Loss& loss,
                                          double flow_scale, double h) {
  std::vector<double> fd(theta.size());
  for (std::size_t j = 0; j < theta.size(); ++j) {
    const double saved = theta[j];
    theta[j] = saved + h;
    const double plus = loss(theta);
    theta[j] = saved - h;
    const double minus = loss(theta);
    theta[j] = saved;
    fd[j] = -flow_scale * (plus - minus) / (2 * h);
  }
  return fd;
}

// Whether the row-major n × n matrix `a` equals its transpose bit for bit.
inline bool is_exactly_symmetric(const std::vector<double>& a, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (a[i * n + j] != a[j * n + i]) return false;
  return true;
}

// The model evaluated at s with a fresh evaluation: v ← v(s); the evaluation holds the loss and
// what the model's diagnostics read.
inline std::unique_ptr<Evaluation> evaluate(const Model& model, const ParticleState& s,
                                            ParticleState& v) {
  std::unique_ptr<Evaluation> e = model.make_evaluation();
  model.evaluate(s, *e, v);
  return e;
}

// The ResNet's view of an evaluation it made.
inline const ResNetEvaluation& resnet(const Evaluation& e) {
  return dynamic_cast<const ResNetEvaluation&>(e);
}

// A communicator that only pretends to be rank `r` of `p`: for sharding, and for a rank's local
// arithmetic, its reductions leave this rank's partial values as they are (no other rank adds
// to them; an all-gather of rows leaves the other ranks' rows as they are). Gathers and
// broadcasts, which need the other ranks, are refused.
class FakeShardComm : public Communicator {
 public:
  FakeShardComm(int r, int p) : r_(r), p_(p) {}
  int rank() const override { return r_; }
  int size() const override { return p_; }
  using Communicator::allreduce_sum;
  void allreduce_sum(const ExecSpace&, Vector) const override {}
  void allreduce_sum(const ExecSpace&, Matrix) const override {}
  void allreduce_sum(double*, int) const override {}
  void allgather_rows(const ExecSpace&, Matrix, index_t, index_t) const override {}
  double allreduce_max(double value) const override { return value; }
  void gather(const double*, std::int64_t, double*) const override { refuse(); }
  void broadcast(double*, int, int) const override { refuse(); }
  void broadcast(std::string&, int) const override { refuse(); }
  void abort(int) const override { refuse(); }

 private:
  [[noreturn]] static void refuse() {
    throw std::logic_error("FakeShardComm pretends a rank and cannot exchange data");
  }
  int r_, p_;
};

// The one-line InputError message of parsing config `text`, or "accepted".
inline std::string config_error(const std::string& text) {
  try {
    parse_config(text, {}, "test.toml");
  } catch (const InputError& e) {
    return e.what();
  }
  return "accepted";
}

// What a run of the binary returned: its exit code, stdout and stderr.
struct Result {
  int code;
  std::string out, err;
};

// The whole content of a file (binary-safe; empty if it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh, empty scratch directory (unique per test process, so ctest -j is safe).
inline std::string scratch_dir(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("mfsim_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

}  // namespace mfsim::test
