#pragma once
// Host references of the networks with c outputs, written from the equations without the kernels:
// the two-layer unit a σ(w·z) with a ∈ R^c (model A, MATH.md §1.5, and the ResNet's head) with its
// potential and velocities, the losses, and the ResNet of MATH.md (B1), (B3), §3.9 with its
// backpropagation, potentials (B7)/(B8) and velocity sums (B11)–(B12); and the data sets of c
// outputs the tests share. Sums run in long double; σ and its derivatives are the library's
// activations (tested on their own against closed forms in test_activation.cpp), evaluated in
// `real`. Also the small ResNet the tests share and their per-column comparison of parameter
// blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "helpers.hpp"
#include "mfsim/core/activation.hpp"
#include "mfsim/data/dataset.hpp"
#include "mfsim/models/loss.hpp"
#include "mfsim/models/resnet.hpp"

namespace mfsim::test {

using Layers = std::vector<std::vector<double>>;  // [layer][i·d + coordinate]

// The small ResNet of the tests: L = 3 layers of M = 4 blocks, K = 6 head particles, α and β and
// the initial standard deviations away from 1 (so that a factor dropped or swapped shows), σ0 and
// σh with softplus sharpness 1.5; the caller sets other sizes where it needs them.
inline ResNetSpec small_resnet_spec(ActivationKind block = ActivationKind::tanh,
                                    ActivationKind head = ActivationKind::tanh, int outputs = 1,
                                    LossKind loss = LossKind::square) {
  ResNetSpec s;
  s.depth = 3;
  s.width = 4;
  s.head_width = 6;
  s.alpha = 1.3;
  s.beta = 1.7;
  s.activation = {block, real(1.5)};
  s.head_activation = {head, real(1.5)};
  s.std_u = 0.9;
  s.std_w = 0.8;
  s.std_b = 0.5;
  s.std_a = 1.2;
  s.std_v = 0.7;
  s.outputs = outputs;
  s.loss = loss;
  return s;
}

// Largest |a_j − b_j| over the columns [first, first + count) of rows of width `width`, relative
// to the largest |b_j| there, which must exceed `floor` for the comparison to mean something.
inline double relative_block_error(const std::vector<double>& a, const std::vector<double>& b,
                                   int width, int first, int count, double floor) {
  double err = 0, scale = 0;
  for (std::size_t row = 0; row < a.size() / width; ++row)
    for (int q = first; q < first + count; ++q) {
      err = std::fmax(err, std::fabs(a[row * width + q] - b[row * width + q]));
      scale = std::fmax(scale, std::fabs(b[row * width + q]));
    }
  EXPECT_GT(scale, floor) << "columns " << first << ".." << first + count - 1;
  return err / scale;
}

// n samples in R^d with c outputs: class labels 0 … c−1 for cross-entropy, c targets a sample
// (normal) for the other losses; inputs normal with variance 1/d.
inline Dataset vector_data(int n, int d, int c, LossKind loss, unsigned seed = 5) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal;
  Dataset data;
  data.x_train = Matrix("x", n, d);
  std::vector<double> x(std::size_t(n) * d), y;
  for (double& v : x) v = normal(gen) / std::sqrt(double(d));
  set(data.x_train, x);
  if (loss == LossKind::cross_entropy) {
    for (int i = 0; i < n; ++i) y.push_back(double(i % c));
    data.classes = c;
  } else {
    for (int i = 0; i < n * c; ++i) y.push_back(normal(gen));
    data.targets = c;
  }
  data.y_train = Vector("y", y.size());
  auto h = Kokkos::create_mirror_view(data.y_train);
  for (std::size_t i = 0; i < y.size(); ++i) h(i) = real(y[i]);
  Kokkos::deep_copy(data.y_train, h);
  data.x_test = Matrix("x_test", 0, d);
  data.y_test = Vector("y_test", 0);
  return data;
}

// (1/n) Σ_i ℓ(f_i, y_i) of n = f.size()/c samples of c outputs (f_i at f[i·c …]): |f − y|²/2,
// log(1 + e^{−y f}), or cross-entropy written as log Σ_j e^{f_j} − f_y (O(1) outputs here).
inline double host_loss(LossKind kind, const std::vector<double>& f, const std::vector<double>& y,
                        int c) {
  const int n = int(f.size()) / c;
  long double s = 0;
  for (int i = 0; i < n; ++i) {
    if (kind == LossKind::square) {
      for (int j = 0; j < c; ++j) s += 0.5 * std::pow(f[i * c + j] - y[i * c + j], 2);
    } else if (kind == LossKind::logistic) {
      s += std::log1p(std::exp(-y[i] * f[i]));
    } else {
      long double sum = 0;
      for (int j = 0; j < c; ++j) sum += std::exp((long double)f[i * c + j]);
      s += std::log(sum) - f[i * c + int(y[i])];
    }
  }
  return double(s / n);
}

// σ(u), σ'(u), σ''(u) of the library's activation `a`.
inline void activation_values(const Activation& a, double u, double& s, double& ds, double& dds) {
  with_activation(a, [&](auto f) {
    real rs, rds, rdds;
    f.eval(real(u), rs, rds, rdds);
    s = rs, ds = rds, dds = rdds;
  });
}
inline double sigma(const Activation& a, double u) {
  double s, ds, dds;
  activation_values(a, u, s, ds, dds);
  return s;
}
inline double dsigma(const Activation& a, double u) {
  double s, ds, dds;
  activation_values(a, u, s, ds, dds);
  return ds;
}

// The two-layer unit with c outputs on inputs z (n rows of `width`): particle rows
// θ_k = (a_k ∈ R^c, w_k ∈ R^width) (a bias is a last input coordinate equal to 1).
struct HostUnit {
  int width, c;
  Activation act;

  int D() const { return c + width; }
  long double pre(const double* th, const std::vector<double>& z, int i) const {
    long double p = 0;
    for (int q = 0; q < width; ++q) p += (long double)th[c + q] * z[std::size_t(i) * width + q];
    return p;
  }
  // f(z_i)_j = scale Σ_k a_kj σ(w_k·z_i) at entry i·c + j.
  std::vector<double> outputs(const std::vector<double>& theta, const std::vector<double>& z,
                              double scale) const {
    const int n = int(z.size()) / width, m = int(theta.size()) / D();
    std::vector<long double> f(std::size_t(n) * c, 0.0L);
    for (int k = 0; k < m; ++k)
      for (int i = 0; i < n; ++i) {
        const long double s = sigma(act, double(pre(&theta[std::size_t(k) * D()], z, i)));
        for (int j = 0; j < c; ++j)
          f[std::size_t(i) * c + j] += theta[std::size_t(k) * D() + j] * s;
      }
    return scaled(f, scale);
  }
  // The potential at particle θ, the residuals frozen: coeff Σ_i (r_i·a) σ(w·z_i) (MATH.md §1.5,
  // the head's (B8)), r_i ∈ R^c at r[i·c …].
  double potential(const double* th, const std::vector<double>& z, const std::vector<double>& r,
                   double coeff) const {
    const int n = int(z.size()) / width;
    long double s = 0;
    for (int i = 0; i < n; ++i) {
      long double ra = 0;
      for (int j = 0; j < c; ++j) ra += (long double)r[std::size_t(i) * c + j] * th[j];
      s += ra * sigma(act, double(pre(th, z, i)));
    }
    return double(coeff * s);
  }
  // The velocity of every particle and its Laplacian (MATH.md §1.5), rows of D() + 1:
  // v_a = −coeff Σ_i r_i σ, v_w = −coeff Σ_i (r_i·a) σ' z_i, ΔΨ = coeff Σ_i (r_i·a) σ'' |z_i|²,
  // r_i ∈ R^c at r[i·c …].
  std::vector<double> velocities(const std::vector<double>& theta, const std::vector<double>& z,
                                 const std::vector<double>& r, double coeff) const {
    const int n = int(z.size()) / width, m = int(theta.size()) / D();
    std::vector<double> out(std::size_t(m) * (D() + 1));
    for (int k = 0; k < m; ++k) {
      const double* th = &theta[std::size_t(k) * D()];
      std::vector<long double> sums(std::size_t(D() + 1), 0.0L);
      for (int i = 0; i < n; ++i) {
        double s, ds, dds;
        activation_values(act, double(pre(th, z, i)), s, ds, dds);
        long double ra = 0, z2 = 0;
        for (int j = 0; j < c; ++j) ra += (long double)r[std::size_t(i) * c + j] * th[j];
        for (int j = 0; j < c; ++j) sums[j] += r[std::size_t(i) * c + j] * (long double)s;
        for (int q = 0; q < width; ++q) {
          const long double zq = z[std::size_t(i) * width + q];
          sums[c + q] += ra * ds * zq;
          z2 += zq * zq;
        }
        sums[D()] += ra * dds * z2;
      }
      for (int j = 0; j < D(); ++j) out[std::size_t(k) * (D() + 1) + j] = double(-coeff * sums[j]);
      out[std::size_t(k) * (D() + 1) + D()] = double(coeff * sums[D()]);
    }
    return out;
  }

 private:
  static std::vector<double> scaled(const std::vector<long double>& v, double scale) {
    std::vector<double> out(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) out[i] = double(scale * v[i]);
    return out;
  }
};

// The ResNet of model B with c outputs: blocks are rows (u, w, b) of length 2d + 1 in layer-major
// order, head particles rows (a_1 … a_c, v) of length c + d.
struct HostResNet {
  std::vector<double> x, y;
  int n, d, c;
  index_t L, M, K;
  double alpha, beta;
  Activation block_act, head_act;
  LossKind loss_kind;

  HostResNet(const Dataset& data, const ResNetSpec& spec)
      : x(host(data.x_train)),
        y(host(data.y_train)),
        n(int(data.n_train())),
        d(data.dim()),
        c(spec.outputs),
        L(spec.depth),
        M(spec.width),
        K(spec.head_width),
        alpha(spec.alpha),
        beta(spec.beta),
        block_act(spec.activation),
        head_act(spec.head_activation),
        loss_kind(spec.loss) {}

  int DB() const { return 2 * d + 1; }
  int DH() const { return c + d; }
  HostUnit head() const { return {d, c, head_act}; }

  // w·z_i + b for the block θ = (u, w, b).
  double block_pre(const double* th, const std::vector<double>& z, int i) const {
    long double pre = th[2 * d];
    for (int q = 0; q < d; ++q) pre += (long double)th[d + q] * z[std::size_t(i) * d + q];
    return double(pre);
  }

  // z_0 … z_L.
  Layers states(const std::vector<double>& blocks) const {
    Layers z(std::size_t(L + 1));
    z[0] = x;
    for (index_t l = 0; l < L; ++l) {
      std::vector<long double> next(z[l].begin(), z[l].end());
      for (index_t m = 0; m < M; ++m) {
        const double* th = &blocks[std::size_t((l * M + m) * DB())];
        for (int i = 0; i < n; ++i) {
          const long double s = sigma(block_act, block_pre(th, z[l], i));
          for (int q = 0; q < d; ++q)
            next[std::size_t(i) * d + q] += alpha / double(L * M) * th[q] * s;
        }
      }
      z[l + 1].assign(next.begin(), next.end());
    }
    return z;
  }
  // f(x_i)_j at entry i·c + j.
  std::vector<double> outputs(const std::vector<double>& blocks,
                              const std::vector<double>& head_theta) const {
    return head().outputs(head_theta, states(blocks)[L], beta / double(K));
  }
  double loss(const std::vector<double>& blocks, const std::vector<double>& head_theta) const {
    return host_loss(loss_kind, outputs(blocks, head_theta), y, c);
  }
  // r_i = ∇_f ℓ at entry i·c + j: f − y, −y/(1 + e^{y f}), or softmax(f) − e_y.
  std::vector<double> residuals(const std::vector<double>& f) const {
    std::vector<double> r(f.size());
    for (int i = 0; i < n; ++i) {
      if (loss_kind == LossKind::square) {
        for (int j = 0; j < c; ++j) r[i * c + j] = f[i * c + j] - y[i * c + j];
      } else if (loss_kind == LossKind::logistic) {
        r[i] = -y[i] / (1 + std::exp(y[i] * f[i]));
      } else {
        long double sum = 0;
        for (int j = 0; j < c; ++j) sum += std::exp((long double)f[i * c + j]);
        for (int j = 0; j < c; ++j)
          r[i * c + j] =
              double(std::exp((long double)f[i * c + j]) / sum) - (j == int(y[i]) ? 1.0 : 0.0);
      }
    }
    return r;
  }
  // The adjoints p_l^i = Σ_j w_ij ∂f_j(x_i)/∂z_l by backpropagation (MATH.md §3.5, §3.9), for the
  // weights w (n·c values): the sensitivities q_l = ∂f/∂z_l with w = 1 at c = 1, the adjoints of
  // the loss with w = r.
  Layers adjoints(const std::vector<double>& blocks, const std::vector<double>& head_theta,
                  const Layers& z, const std::vector<double>& w) const {
    std::vector<std::vector<long double>> p(std::size_t(L + 1),
                                            std::vector<long double>(std::size_t(n) * d, 0.0L));
    const HostUnit h = head();
    for (index_t k = 0; k < K; ++k) {
      const double* om = &head_theta[std::size_t(k * DH())];
      for (int i = 0; i < n; ++i) {
        long double wa = 0;
        for (int j = 0; j < c; ++j) wa += (long double)w[std::size_t(i) * c + j] * om[j];
        const long double g = beta / double(K) * wa * dsigma(head_act, double(h.pre(om, z[L], i)));
        for (int q = 0; q < d; ++q) p[L][std::size_t(i) * d + q] += g * om[c + q];
      }
    }
    for (index_t l = L - 1; l >= 0; --l) {
      p[l] = p[l + 1];
      for (index_t m = 0; m < M; ++m) {
        const double* th = &blocks[std::size_t((l * M + m) * DB())];
        for (int i = 0; i < n; ++i) {
          long double pu = 0;
          for (int q = 0; q < d; ++q) pu += p[l + 1][std::size_t(i) * d + q] * th[q];
          const long double g =
              alpha / double(L * M) * pu * dsigma(block_act, block_pre(th, z[l], i));
          for (int q = 0; q < d; ++q) p[l][std::size_t(i) * d + q] += g * th[d + q];
        }
      }
    }
    Layers out(std::size_t(L + 1));
    for (index_t l = 0; l <= L; ++l) out[l].assign(p[l].begin(), p[l].end());
    return out;
  }
  // Ψ^R (B7) at block parameters θ of layer l, the mean field frozen: (α/n) Σ_i (p_{l+1,i}·u)
  // σ0(π), p the adjoints of the loss (weights r).
  double block_potential(const double* th, index_t l, const Layers& z, const Layers& p) const {
    long double s = 0;
    for (int i = 0; i < n; ++i) {
      long double pu = 0;
      for (int q = 0; q < d; ++q) pu += (long double)p[l + 1][std::size_t(i) * d + q] * th[q];
      s += pu * sigma(block_act, block_pre(th, z[l], i));
    }
    return double(alpha / n * s);
  }
  // Ψ^H (B8) at head parameters ω: (β/n) Σ_i (r_i·a) σh(v·z_{L,i}).
  double head_potential(const double* om, const std::vector<double>& z_last,
                        const std::vector<double>& r) const {
    return head().potential(om, z_last, r, beta / n);
  }
  // (B11)–(B12) of every block, rows of 2d + 2 (the velocity, then the Laplacian):
  // v = −(α/n) Σ_i w_i (σ(π) q_{l+1,i}, (q_{l+1,i}·u) σ'(π) (z_{l,i}, 1)),
  // ΔΨ = (α/n) Σ_i w_i (q·u) σ''(π) (|z_{l,i}|² + 1), π = w·z_{l,i} + b, for per-sample weights
  // w: the residuals with the sensitivities q (c = 1), ones with the adjoints of the loss.
  std::vector<double> block_velocities(const std::vector<double>& blocks, const Layers& z,
                                       const Layers& q, const std::vector<double>& w) const {
    const int row = DB() + 1;
    std::vector<double> out(std::size_t(L * M) * row);
    const long double coeff = alpha / double(n);
    for (index_t l = 0; l < L; ++l)
      for (index_t m = 0; m < M; ++m) {
        const double* th = &blocks[std::size_t((l * M + m) * DB())];
        std::vector<long double> sums(std::size_t(row), 0.0L);
        for (int i = 0; i < n; ++i) {
          double s, ds, dds;
          activation_values(block_act, block_pre(th, z[l], i), s, ds, dds);
          long double qu = 0, z2 = 1;
          for (int q2 = 0; q2 < d; ++q2) {
            qu += (long double)q[l + 1][std::size_t(i) * d + q2] * th[q2];
            z2 += (long double)z[l][std::size_t(i) * d + q2] * z[l][std::size_t(i) * d + q2];
          }
          const long double wi = w[std::size_t(i)];
          for (int q2 = 0; q2 < d; ++q2) {
            sums[q2] += wi * s * q[l + 1][std::size_t(i) * d + q2];
            sums[d + q2] += wi * qu * ds * z[l][std::size_t(i) * d + q2];
          }
          sums[2 * d] += wi * qu * ds;
          sums[2 * d + 1] += wi * qu * dds * z2;
        }
        double* o = &out[std::size_t((l * M + m) * row)];
        for (int j = 0; j < DB(); ++j) o[j] = double(-coeff * sums[j]);
        o[DB()] = double(coeff * sums[DB()]);
      }
    return out;
  }
};

}  // namespace mfsim::test
