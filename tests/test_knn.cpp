// Nearest-neighbour search against a host brute force, and the kNN KL estimators on Gaussian
// samples with a known KL (MATH.md §6 V4a).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "detail/knn_tiling.hpp"
#include "helpers.hpp"
#include "mfsim/core/random.hpp"
#include "mfsim/diagnostics/kl_knn.hpp"
#include "mfsim/diagnostics/knn.hpp"

namespace mfsim {
namespace {

// N samples of N(μ, diag(s²)) (independent coordinates), drawn on the host.
Matrix gaussian_sample(index_t n, const std::vector<double>& mean, const std::vector<double>& sd,
                       std::uint64_t seed) {
  const int dim = int(mean.size());
  Matrix x("sample", n, dim);
  auto h = Kokkos::create_mirror_view(x);
  const CounterRng rng(seed, rng_reference);
  for (index_t i = 0; i < n; ++i)
    for (int j = 0; j < dim; ++j)
      h(i, j) = real(mean[std::size_t(j)] + sd[std::size_t(j)] * rng.normal(std::uint64_t(i), j));
  Kokkos::deep_copy(x, h);
  return x;
}

// KL(N(μ, diag s²) || N(0, I)) = ½ Σ_j (s_j² + μ_j² − 1 − log s_j²).
double gaussian_kl(const std::vector<double>& mean, const std::vector<double>& sd) {
  double kl = 0;
  for (std::size_t j = 0; j < mean.size(); ++j)
    kl += 0.5 * (sd[j] * sd[j] + mean[j] * mean[j] - 1 - std::log(sd[j] * sd[j]));
  return kl;
}

TEST(Knn, KthDistanceMatchesBruteForce) {
  for (const auto& [nq, nr, dim, k, skip] :
       std::vector<std::tuple<index_t, index_t, int, int, bool>>{{77, 77, 3, 1, true},
                                                                 {77, 77, 3, 5, true},
                                                                 {40, 300, 2, 4, false},
                                                                 {33, 33, 7, 32, true},
                                                                 {5, 1000, 1, 3, true},
                                                                 {64, 65, 600, 2, true}}) {
    const Matrix q = gaussian_sample(nq, std::vector<double>(std::size_t(dim), 0.0),
                                     std::vector<double>(std::size_t(dim), 1.0), 11);
    const Matrix r = nq == nr ? q
                              : gaussian_sample(nr, std::vector<double>(std::size_t(dim), 0.3),
                                                std::vector<double>(std::size_t(dim), 2.0), 12);
    Vector dist("dist", nq);
    kth_neighbour_distance(q, r, k, skip, dist);
    const auto qh = test::host(q), rh = test::host(r), got = test::host(dist);
    for (index_t i = 0; i < nq; ++i) {
      std::vector<double> all;
      for (index_t j = 0; j < nr; ++j) {
        if (skip && i == j) continue;
        double d2 = 0;
        for (int c = 0; c < dim; ++c) {
          const double diff = qh[std::size_t(i * dim + c)] - rh[std::size_t(j * dim + c)];
          d2 += diff * diff;
        }
        all.push_back(std::sqrt(d2));
      }
      std::nth_element(all.begin(), all.begin() + (k - 1), all.end());
      EXPECT_NEAR(got[std::size_t(i)], all[std::size_t(k - 1)],
                  test::tol(1e-12, 1e-5) * all[std::size_t(k - 1)])
          << "query " << i << " nq=" << nq << " nr=" << nr << " k=" << k;
    }
  }
  Vector dist("dist", 3);
  const Matrix few = gaussian_sample(3, {0.0}, {1.0}, 1);
  EXPECT_THROW(kth_neighbour_distance(few, few, 3, true, dist), std::invalid_argument);
  EXPECT_THROW(kth_neighbour_distance(few, few, 0, false, dist), std::invalid_argument);
}

// The k-th smallest of the squared distances from query i to the references (all but reference i
// with `skip`), by a plain host loop.
double brute_force_kth_squared(const std::vector<double>& q, const std::vector<double>& r, int dim,
                               index_t i, int k, bool skip) {
  std::vector<double> all;
  for (index_t j = 0; j < index_t(r.size()) / dim; ++j) {
    if (skip && i == j) continue;
    double d2 = 0;
    for (int c = 0; c < dim; ++c) {
      const double diff = q[std::size_t(i * dim + c)] - r[std::size_t(j * dim + c)];
      d2 += diff * diff;
    }
    all.push_back(d2);
  }
  std::nth_element(all.begin(), all.begin() + (k - 1), all.end());
  return all[std::size_t(k - 1)];
}

// Points on a coarse integer grid: many exactly tied distances and duplicated points, all squared
// distances exact in either precision, so the k-th distance must match the brute force exactly.
// Sizes straddle every tiling boundary (register block rows and lanes, a team's query panels, a
// reference tile), k = 1 and knn_max_k, with and without the query's own index left out.
TEST(Knn, KthDistanceWithTiesAcrossTileBoundaries) {
  const int lanes = knn_lanes, rows = knn_rows;
  const index_t team = index_t(knn_query_panels) * lanes, tile = index_t(knn_tile_panels) * rows;
  const std::vector<std::pair<index_t, index_t>> sizes = {{1, 40},
                                                          {rows - 1, lanes + 1},
                                                          {rows + 1, 2 * lanes - 1},
                                                          {lanes - 1, rows + 1},
                                                          {lanes + 1, 2 * rows - 1},
                                                          {team - 1, tile + 1},
                                                          {team + 1, tile - 1},
                                                          {2 * team + 5, 2 * tile + 3},
                                                          {97, 97},
                                                          {300, 300}};
  int cases = 0;
  for (const auto& [nq, nr] : sizes)
    for (int k : {1, 3, knn_max_k})
      for (bool skip : {false, true}) {
        if (nr - (skip ? 1 : 0) < k || (skip && nq > nr)) continue;
        const int dim = 3 + cases % 3;
        const CounterRng rng(7 + std::uint64_t(cases), rng_reference);
        const auto grid = [&](index_t id, int c) {  // 0, 1 or 2
          double u0, u1;
          rng.uniform2(std::uint64_t(id), std::uint32_t(c), u0, u1);
          return real(std::floor(3 * u0));
        };
        Matrix q("queries", nq, dim), r("references", nr, dim);
        auto rh = Kokkos::create_mirror_view(r);
        for (index_t j = 0; j < nr; ++j)
          for (int c = 0; c < dim; ++c) rh(j, c) = grid(j, c);
        Kokkos::deep_copy(r, rh);
        // Queries: the references themselves when the own index is left out, else other grid
        // points (duplicating some references).
        if (skip)
          Kokkos::deep_copy(q, Kokkos::subview(r, Kokkos::make_pair(index_t(0), nq), Kokkos::ALL));
        else {
          auto qh = Kokkos::create_mirror_view(q);
          for (index_t i = 0; i < nq; ++i)
            for (int c = 0; c < dim; ++c) qh(i, c) = grid(nr + i, c);
          Kokkos::deep_copy(q, qh);
        }
        Vector dist("dist", nq);
        kth_neighbour_distance(q, r, k, skip, dist);
        const auto qv = test::host(q), rv = test::host(r), got = test::host(dist);
        for (index_t i = 0; i < nq; ++i) {
          const double want = std::sqrt(brute_force_kth_squared(qv, rv, dim, i, k, skip));
          ASSERT_EQ(got[std::size_t(i)], real(want))
              << "query " << i << " nq=" << nq << " nr=" << nr << " k=" << k << " skip=" << skip;
        }
        ++cases;
      }
  EXPECT_GE(cases, 40);
}

// The observer's single search of x among itself gives both estimates exactly as the two
// separate calls do.
TEST(Knn, CombinedEstimatesMatchSeparateCalls) {
  const Matrix x = gaussian_sample(150, {0.1, 0.2, 0.3}, {1.0, 2.0, 0.5}, 5);
  const Matrix y = gaussian_sample(150, {0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}, 6);
  for (bool paired : {false, true}) {
    Workspace scratch;
    const KlKnnEstimates both = kl_knn_estimates(x, y, 4, paired, scratch);
    EXPECT_EQ(both.standard_normal, kl_knn_standard_normal(x, 4));
    EXPECT_EQ(both.two_sample, kl_knn_two_sample(x, y, 4, paired));
  }
}

// The execution-space-first overloads run the same kernels on the instance given: the same values
// as the default instance's, bit for bit, with the work fenced on that instance only.
TEST(Knn, ExplicitExecutionSpaceInstanceGivesTheDefaultsValues) {
  const Matrix x = gaussian_sample(90, {0.1, 0.2, 0.3}, {1.0, 2.0, 0.5}, 7);
  const Matrix y = gaussian_sample(70, {0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}, 8);
  const ExecSpace space;
  Workspace scratch, scratch_default;
  Vector on_space("on_space", 90), on_default("on_default", 90);
  kth_neighbour_distance(space, x, y, 3, false, on_space, scratch);
  space.fence();
  kth_neighbour_distance(x, y, 3, false, on_default);
  EXPECT_EQ(test::host(on_space), test::host(on_default));
  const KlKnnEstimates a = kl_knn_estimates(space, x, y, 3, false, scratch);
  const KlKnnEstimates b = kl_knn_estimates(x, y, 3, false, scratch_default);
  EXPECT_EQ(a.standard_normal, b.standard_normal);
  EXPECT_EQ(a.two_sample, b.two_sample);
  EXPECT_EQ(kl_knn_standard_normal(space, x, 3), b.standard_normal);
  EXPECT_EQ(kl_knn_two_sample(space, x, y, 3, false), b.two_sample);
}

TEST(Knn, Digamma) {
  const double euler_gamma = 0.57721566490153286;
  EXPECT_NEAR(digamma(1), -euler_gamma, 1e-14);
  EXPECT_NEAR(digamma(0.5), -euler_gamma - 2 * std::log(2.0), 1e-14);
  double harmonic = 0;
  for (int j = 1; j < 1000; ++j) harmonic += 1.0 / j;
  EXPECT_NEAR(digamma(1000), harmonic - euler_gamma, 1e-13);
}

TEST(Knn, TwoSampleEstimateIsZeroForIdenticalPairedSamples) {
  const Matrix x = gaussian_sample(200, {0.1, 0.2, 0.3}, {1.0, 2.0, 0.5}, 3);
  Matrix y("copy", 200, 3);
  Kokkos::deep_copy(y, x);
  EXPECT_EQ(kl_knn_two_sample(x, y, 4, true), 0.0);
}

// V4a: on Gaussians with a known KL in D = 1, 2, 5, the RMS error over seeds shrinks as N grows
// 32-fold, and is small at the larger N.
TEST(Knn, EstimatorsConvergeOnGaussians) {
  const int k = 5, seeds = 6;
  for (int dim : {1, 2, 5}) {
    std::vector<double> mean(static_cast<std::size_t>(dim)), sd(static_cast<std::size_t>(dim));
    // A law inside the reference's bulk, as ρ_t near ρ₀ is (wider laws put points where the
    // reference sample is sparse, and the two-sample estimator's bias decays slowly there).
    for (int j = 0; j < dim; ++j)
      mean[std::size_t(j)] = 0.4 - 0.15 * j, sd[std::size_t(j)] = 0.7 + 0.05 * j;
    const double exact = gaussian_kl(mean, sd);
    double rms_one[2] = {0, 0}, rms_two[2] = {0, 0};
    const index_t sizes[2] = {64, 2048};
    for (int s = 0; s < 2; ++s) {
      for (int seed = 0; seed < seeds; ++seed) {
        const Matrix x = gaussian_sample(sizes[s], mean, sd, 100 + seed);
        const Matrix y = gaussian_sample(sizes[s], std::vector<double>(std::size_t(dim), 0.0),
                                         std::vector<double>(std::size_t(dim), 1.0), 200 + seed);
        rms_one[s] += std::pow(kl_knn_standard_normal(x, k) - exact, 2) / seeds;
        rms_two[s] += std::pow(kl_knn_two_sample(x, y, k, false) - exact, 2) / seeds;
      }
      rms_one[s] = std::sqrt(rms_one[s]);
      rms_two[s] = std::sqrt(rms_two[s]);
    }
    SCOPED_TRACE("D = " + std::to_string(dim) + ", KL = " + std::to_string(exact));
    EXPECT_LT(rms_one[1], 0.6 * rms_one[0]) << rms_one[0] << " -> " << rms_one[1];
    EXPECT_LT(rms_two[1], 0.6 * rms_two[0]) << rms_two[0] << " -> " << rms_two[1];
    EXPECT_LT(rms_one[1], 0.03 * dim);
    EXPECT_LT(rms_two[1], 0.05 * dim);
  }
}

}  // namespace
}  // namespace mfsim
