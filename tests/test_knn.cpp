// Nearest-neighbour search against a host brute force (its kernel alone also on every execution
// space of the build: KnnKernel/<backend>), and the kNN KL estimators on Gaussian samples with a
// known KL (MATH.md §6 V4a).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "detail/knn_tiling.hpp"
#include "execution_spaces.hpp"
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
// reference tile), k = 1 and knn_max_k, with and without the query's own index left out. The
// search kernel alone, on each execution space (TypeParam) of the build.
template <class Space>
class KnnKernel : public ::testing::Test {};
TYPED_TEST_SUITE(KnnKernel, test::ExecutionSpaces);

TYPED_TEST(KnnKernel, KthDistanceWithTiesAcrossTileBoundaries) {
  const TypeParam space;
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
        Workspace scratch;
        detail::knn_search(space, q, r, k, skip, Matrix(), dist, scratch);
        space.fence();
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

// The standard-normal draws of a ReferenceDraws, generated here on the host from their
// definition (draw j of stream s: normal(s·2⁴⁰ + j, c)), all at once.
Matrix stored_draws(const ReferenceDraws& draws, int dim, index_t count) {
  Matrix y("draws", count, dim);
  auto h = Kokkos::create_mirror_view(y);
  const CounterRng rng(draws.seed, rng_reference);
  for (index_t j = 0; j < count; ++j)
    for (int c = 0; c < dim; ++c)
      h(j, c) = real(rng.normal((draws.stream << 40) + std::uint64_t(j), std::uint32_t(c)));
  Kokkos::deep_copy(y, h);
  return y;
}

// Merging references chunk by chunk gives each query the k-th distance of one search of their
// union, bit for bit (uneven chunks, k = 1 and knn_max_k).
TEST(Knn, MergingChunksMatchesOneSearch) {
  const Matrix x = gaussian_sample(130, {0.1, 0.2, 0.3}, {1.0, 2.0, 0.5}, 5);
  const Matrix y = gaussian_sample(700, {0.0, 0.0, 0.0}, {1.0, 1.0, 1.0}, 6);
  const ExecSpace space;
  for (int k : {1, 4, knn_max_k}) {
    Workspace scratch;
    NeighbourLists lists("lists", 130, k);
    reset_neighbour_lists(space, lists);
    for (const auto& [first, last] :
         std::vector<std::pair<index_t, index_t>>{{0, 3}, {3, 250}, {250, 251}, {251, 700}})
      merge_nearest_neighbours(space, x,
                               Kokkos::subview(y, Kokkos::make_pair(first, last), Kokkos::ALL),
                               lists, scratch);
    Vector whole("whole", 130);
    kth_neighbour_distance(x, y, k, false, whole);
    Vector kth("kth", 130);
    Kokkos::deep_copy(kth, Kokkos::subview(lists, Kokkos::ALL, k - 1));
    const auto got = test::host(kth);
    const auto want = test::host(whole);
    for (std::size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(real(std::sqrt(real(got[i]))), real(want[i])) << "query " << i << " k=" << k;
  }
}

// knn_kl_estimates gives the one-sample estimate and entropy of the plain calls, the two-sample
// estimate of the streamed draws (three chunks here) equals the one against all of them
// stored at once, and the halving checks equal the same estimators on each half's particles.
TEST(Knn, EstimatesWithHalvingChecksMatchTheDirectCalls) {
  const int k = 4, dim = 3;
  const index_t n = 301;
  const Matrix x = gaussian_sample(n, {0.1, 0.2, 0.3}, {1.0, 2.0, 0.5}, 5);
  const ReferenceDraws draws{11, 3, 10 * n};
  Workspace scratch;
  const KnnKlEstimates e = knn_kl_estimates(ExecSpace(), x, k, draws, scratch);
  const auto near = [](double a, double b) {
    EXPECT_NEAR(a, b, 1e-12 * (1 + std::fabs(b)));
  };
  near(e.one_sample.value, kl_knn_standard_normal(x, k).value);
  near(e.one_sample.standard_error, kl_knn_standard_normal(x, k).standard_error);
  near(e.entropy.value, entropy_knn(x, k, scratch).value);
  const Matrix y = stored_draws(draws, dim, draws.count);
  const Estimate two = kl_knn_two_sample(x, y, k, false);
  near(e.two_sample.value, two.value);
  near(e.two_sample.standard_error, two.standard_error);
  // The halves: rows [0, 150) and [150, 300).
  double one = 0, h = 0;
  for (index_t part = 0; part < 2; ++part) {
    const auto rows = Kokkos::make_pair(part * 150, (part + 1) * 150);
    Matrix xs("half", 150, dim);
    Kokkos::deep_copy(xs, Kokkos::subview(x, rows, Kokkos::ALL));
    one += kl_knn_standard_normal(xs, k).value / 2;
    h += entropy_knn(xs, k, scratch).value / 2;
  }
  near(e.one_sample_half, one);
  near(e.entropy_half, h);
  // Without draws: the one-sample estimates only.
  const KnnKlEstimates plain = knn_kl_estimates(ExecSpace(), x, k, {}, scratch);
  EXPECT_EQ(plain.one_sample.value, e.one_sample.value);
  EXPECT_EQ(plain.two_sample.value, 0.0);
}

// The standard error of the one-sample estimate is the right size: the spread of the estimate
// over independent samples is within a factor 2 of the mean standard error reported.
TEST(Knn, StandardErrorMatchesTheSpreadOverSamples) {
  const int seeds = 40;
  for (int dim : {2, 5}) {
    const std::vector<double> mean(std::size_t(dim), 0.2), sd(std::size_t(dim), 0.8);
    double sum = 0, squares = 0, reported = 0;
    for (int seed = 0; seed < seeds; ++seed) {
      const Estimate e = kl_knn_standard_normal(gaussian_sample(400, mean, sd, 300 + seed), 5);
      sum += e.value;
      squares += e.value * e.value;
      reported += e.standard_error / seeds;
    }
    const double spread = std::sqrt((squares - sum * sum / seeds) / (seeds - 1));
    EXPECT_GT(reported, 0.5 * spread) << "D = " << dim;
    EXPECT_LT(reported, 2.0 * spread) << "D = " << dim;
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
  EXPECT_EQ(kl_knn_standard_normal(space, x, 3, scratch).value, kl_knn_standard_normal(x, 3).value);
  EXPECT_EQ(kl_knn_two_sample(space, x, y, 3, false, scratch).value,
            kl_knn_two_sample(x, y, 3, false).value);
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
  EXPECT_EQ(kl_knn_two_sample(x, y, 4, true).value, 0.0);
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
        rms_one[s] += std::pow(kl_knn_standard_normal(x, k).value - exact, 2) / seeds;
        rms_two[s] += std::pow(kl_knn_two_sample(x, y, k, false).value - exact, 2) / seeds;
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
