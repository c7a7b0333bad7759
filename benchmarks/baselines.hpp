#pragma once
// In-run baselines: what the same work costs when written the usual way. Single-thread BLAS
// (OpenBLAS, its thread count forced to 1) and a dense step with Eigen that materialises the
// n × m matrix of pre-activations, as a NumPy or PyTorch script does.
#include <cblas.h>

#include <Eigen/Dense>
#include <type_traits>
#include <vector>

#include "mfsim/core/types.hpp"

namespace mfsim::bench {

// C (n × m) = X (n × d) · Wᵀ (W: m × d), row-major: the pre-activations of a two-layer network.
inline void blas_gemm_xwt(int n, int m, int d, const double* x, const double* w, double* c) {
  openblas_set_num_threads(1);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, d, 1.0, x, d, w, d, 0.0, c, m);
}
inline void blas_gemm_xwt(int n, int m, int d, const float* x, const float* w, float* c) {
  openblas_set_num_threads(1);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, d, 1.0f, x, d, w, d, 0.0f, c, m);
}

// Upper triangle of C (n × n) = Φ Φᵀ (Φ: n × k), row-major: a Gram matrix.
inline void blas_syrk(int n, int k, const double* phi, double* c) {
  openblas_set_num_threads(1);
  cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, k, 1.0, phi, k, 0.0, c, n);
}
inline void blas_syrk(int n, int k, const float* phi, float* c) {
  openblas_set_num_threads(1);
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, n, k, 1.0f, phi, k, 0.0f, c, n);
}

inline const char* blas_gemm_name() {
  return std::is_same_v<real, double> ? "dgemm" : "sgemm";
}
inline const char* blas_syrk_name() {
  return std::is_same_v<real, double> ? "dsyrk" : "ssyrk";
}

// One explicit-Euler step of the two-layer mean-field flow (tanh, with bias), written with dense
// Eigen matrices: H = X Wᵀ + 1 bᵀ is formed (n × m), then tanh, residual, and the velocities by
// two more matrix products. Same mathematics as TwoLayerModel::velocity + Euler.
class DenseTwoLayerStep {
 public:
  using Mat = Eigen::Matrix<real, Eigen::Dynamic, Eigen::Dynamic>;
  using Vec = Eigen::Matrix<real, Eigen::Dynamic, 1>;

  DenseTwoLayerStep(int n, int m, int d, real beta) : beta_(beta) {
    x_ = Mat::Random(n, d) / real(std::sqrt(double(d)));
    y_ = Vec::Random(n);
    w_ = Mat::Random(m, d);
    a_ = Vec::Random(m);
    b_ = Vec::Random(m);
    h_.resize(n, m);
  }

  void step(real dt) {
    const auto n = x_.rows(), m = w_.rows();
    h_.noalias() = x_ * w_.transpose();
    h_.rowwise() += b_.transpose();
    h_ = h_.array().tanh();                            // S = σ(H)
    const Vec r = (beta_ / real(m)) * (h_ * a_) - y_;  // f − y
    const real c = beta_ / real(n);
    const Vec va = -c * (h_.transpose() * r);
    // G = diag(r) σ'(H) diag(a), in place of S.
    h_ = (real(1) - h_.array().square()).matrix();
    h_ = r.asDiagonal() * h_ * a_.asDiagonal();
    const Mat vw = -c * (h_.transpose() * x_);
    const Vec vb = -c * h_.colwise().sum().transpose();
    a_ += dt * va;
    w_ += dt * vw;
    b_ += dt * vb;
  }

  double bytes() const {  // the materialised n × m matrix
    return double(h_.size()) * sizeof(real);
  }

 private:
  real beta_;
  Mat x_, w_, h_;
  Vec y_, a_, b_;
};

}  // namespace mfsim::bench
