#pragma once
// The laws of the KL calibration harness (docs/diagnostics.md, "Which KL to trust"): laws P on
// whitened coordinates whose KL(P || N(0, I_D)) is known, and samples of them with each point's
// exact log-density ratio log p(x) − log φ(x) (φ the N(0, I_D) density), as a particle carries it
// along its characteristic (kl_transport). Private to the library's tests and benchmarks.
//
// Every law is the push-forward of z ~ N(0, I_D) by a map T with a known Jacobian determinant:
// log p(T(z)) = log φ(z) − log |det DT(z)|.
//   gaussian      T = id: KL = 0 (the estimators' bias at t = 0).
//   ou            T(z) = s z, s² = e^{−2t} + ¼(1 − e^{−2t}): the Ornstein–Uhlenbeck law at time t
//                 of a cooling Langevin flow (or weight decay with noise) started at N(0, I).
//   anisotropic   T(z) = R diag(v_j^{t/2}) z + (t/2) e₁, v cycling through 25, 1, 0.04 and R a
//                 fixed rotation: the law of a linear flow (drift −Aθ) at time t, stretched along
//                 some directions and squeezed along others.
//   planar        four planar maps z ↦ z + u h(w·z + c) (Rezende–Mohamed 2015), h = tanh,
//                 u·w = −0.95·t, then a contraction by 0.7 and a shift: each squeezes the mass
//                 near a hyperplane by up to 20×, the concentration near lower-dimensional sets
//                 of trained laws (where the kNN estimators fail). KL by Monte Carlo over 2²⁰
//                 draws (its standard error is printed with it).
// With `antithetic`, rows 2j and 2j + 1 come from z and z with its first coordinate negated
// (model A's antithetic pairs (a, w, b), (−a, w, b)).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "mfsim/core/random.hpp"

namespace mfsim::calibration {

struct Law {
  std::string family;
  int dim = 0;
  double time = 0;
};

struct Sample {
  std::vector<double> x;          // [m][D], row-major
  std::vector<double> log_ratio;  // [m]: log p(x_i) − log φ(x_i)
  std::vector<double> z;          // [m][D]: the N(0, I) points the rows were mapped from
};

namespace detail {

inline double ou_scale(double t) {
  return std::sqrt(std::exp(-2 * t) + 0.25 * (1 - std::exp(-2 * t)));
}

inline double anisotropic_variance(int j, double t) {
  static const double v[3] = {25.0, 1.0, 0.04};
  return std::pow(v[j % 3], t);
}

// A fixed rotation: the product of Givens rotations by 0.7 radians in the planes (j, j + 1).
inline void rotate(std::vector<double>& y) {
  const double c = std::cos(0.7), s = std::sin(0.7);
  for (std::size_t j = 0; j + 1 < y.size(); ++j) {
    const double a = y[j], b = y[j + 1];
    y[j] = c * a - s * b;
    y[j + 1] = s * a + c * b;
  }
}

struct Planar {
  std::vector<double> w, u;
  double c;
};

inline std::vector<Planar> planar_maps(int dim, double t) {
  std::vector<Planar> maps;
  const CounterRng rng(20261207, rng_reference);
  for (int l = 0; l < 4; ++l) {
    Planar p;
    double norm2 = 0;
    for (int j = 0; j < dim; ++j) {
      p.w.push_back(rng.normal(std::uint64_t(1000 + l), std::uint32_t(j)) * 1.5);
      norm2 += p.w.back() * p.w.back();
    }
    for (int j = 0; j < dim; ++j) p.u.push_back(-0.95 * t * p.w[std::size_t(j)] / norm2);
    p.c = 0.5 * rng.normal(std::uint64_t(2000 + l), 0);
    maps.push_back(p);
  }
  return maps;
}

inline double log_normal(const double* x, int dim) {
  double q = 0;
  for (int j = 0; j < dim; ++j) q += x[j] * x[j];
  return -0.5 * q - 0.5 * dim * std::log(2 * 3.14159265358979323846);
}

// y = T(z); returns log |det DT(z)|.
inline double map(const Law& law, const std::vector<Planar>& planar, const double* z, double* y) {
  const int dim = law.dim;
  std::vector<double> v(z, z + dim);
  double log_det = 0;
  if (law.family == "ou") {
    const double s = ou_scale(law.time);
    for (double& e : v) e *= s;
    log_det = dim * std::log(s);
  } else if (law.family == "anisotropic") {
    for (int j = 0; j < dim; ++j) {
      const double var = anisotropic_variance(j, law.time);
      v[std::size_t(j)] *= std::sqrt(var);
      log_det += 0.5 * std::log(var);
    }
    rotate(v);
    v[0] += 0.5 * law.time;
  } else if (law.family == "planar") {
    for (const Planar& p : planar) {
      double a = p.c, uw = 0;
      for (int j = 0; j < dim; ++j) a += p.w[std::size_t(j)] * v[std::size_t(j)];
      for (int j = 0; j < dim; ++j) uw += p.u[std::size_t(j)] * p.w[std::size_t(j)];
      const double h = std::tanh(a);
      for (int j = 0; j < dim; ++j) v[std::size_t(j)] += p.u[std::size_t(j)] * h;
      log_det += std::log(std::fabs(1 + (1 - h * h) * uw));
    }
    for (int j = 0; j < dim; ++j) v[std::size_t(j)] = 0.7 * v[std::size_t(j)] + (j == 0 ? 0.3 : 0);
    log_det += dim * std::log(0.7);
  }
  for (int j = 0; j < dim; ++j) y[j] = v[std::size_t(j)];
  return log_det;
}

}  // namespace detail

// m points of the law (seed: the draws of z).
inline Sample sample(const Law& law, std::int64_t m, std::uint64_t seed, bool antithetic = false) {
  const int dim = law.dim;
  const auto planar = detail::planar_maps(dim, law.time);
  const CounterRng rng(seed, rng_particles);
  Sample s;
  s.x.resize(std::size_t(m * dim));
  s.z.resize(std::size_t(m * dim));
  s.log_ratio.resize(std::size_t(m));
  for (std::int64_t i = 0; i < m; ++i) {
    double* z = &s.z[std::size_t(i * dim)];
    double* x = &s.x[std::size_t(i * dim)];
    const std::uint64_t key = antithetic ? std::uint64_t(i / 2) : std::uint64_t(i);
    for (int j = 0; j < dim; ++j) z[j] = rng.normal(key, std::uint32_t(j));
    if (antithetic && i % 2 == 1) z[0] = -z[0];
    const double log_det = detail::map(law, planar, z, x);
    s.log_ratio[std::size_t(i)] = detail::log_normal(z, dim) - log_det - detail::log_normal(x, dim);
  }
  return s;
}

// KL(P || N(0, I_D)) and its standard error (0 where it is a closed form).
struct Truth {
  double kl = 0, standard_error = 0;
};

inline Truth truth(const Law& law) {
  const int dim = law.dim;
  if (law.family == "gaussian") return {};
  if (law.family == "ou") {
    const double v = detail::ou_scale(law.time) * detail::ou_scale(law.time);
    return {0.5 * dim * (v - 1 - std::log(v)), 0};
  }
  if (law.family == "anisotropic") {
    double kl = 0.5 * 0.25 * law.time * law.time;  // the shift (t/2)e₁
    for (int j = 0; j < dim; ++j) {
      const double v = detail::anisotropic_variance(j, law.time);
      kl += 0.5 * (v - 1 - std::log(v));
    }
    return {kl, 0};
  }
  const std::int64_t draws = std::int64_t(1) << 20;
  const Sample s = sample(law, draws, 987654321);
  double sum = 0, squares = 0;
  for (double r : s.log_ratio) sum += r, squares += r * r;
  const double mean = sum / double(draws);
  return {mean, std::sqrt((squares / double(draws) - mean * mean) / double(draws - 1))};
}

}  // namespace mfsim::calibration
