// The KL calibration harness: every KL estimator of mfsim on laws whose KL to ρ₀ = N(0, I_D) is
// known (detail/kl_calibration_laws.hpp), over a grid of dimension D, sample size m, law and
// training time; writes each estimate's error, standard error and reliability flag as a markdown
// table, and a summary per estimator (docs/diagnostics.md, "Which KL to trust").
//
//   kl_calibration [--dims 2,4,7,10,16] [--sizes 512,2048,8192,32768,65536] [--max-work W]
//                  [--k 5] [--out table.md] [--csv raw.csv]
//
// The estimators, as the observers compute them on m particles:
//   transport        mean of the exact per-point log-density ratio (what kl_transport computes
//                    from the log-densities its particles carry), ± its sampling error
//   knn              Kozachenko–Leonenko against the known N(0, I)
//   knn_corrected    knn minus knn on a fresh N(0, I) sample of the same m (bias_t0)
//   two_sample_init  Wang–Kulkarni–Verdú against the law's own m initial points, each point's
//                    own left out (mfsim's two-sample estimator before the fresh draws)
//   two_sample       Wang–Kulkarni–Verdú against 10·m fresh draws of N(0, I), streamed
//   knn_ellipsoid    the geometric kNN estimate of Lord–Sun–Bollt less its value at ρ₀
//                    (knn_ellipsoid.hpp), k = 2D + 1
// A cell is skipped when m²·D·(2 + 10) exceeds --max-work (the brute-force searches' cost).
#include <Kokkos_Core.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "detail/kl_calibration_laws.hpp"
#include "mfsim/diagnostics/kl_knn.hpp"
#include "mfsim/diagnostics/kl_reliability.hpp"
#include "mfsim/diagnostics/knn_ellipsoid.hpp"

namespace {

using namespace mfsim;
namespace cal = mfsim::calibration;

std::vector<long> parse_list(const std::string& text) {
  std::vector<long> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stol(item));
  return out;
}

Matrix to_device(const std::vector<double>& values, index_t rows, int dim, index_t stride = 1) {
  Matrix m("calibration::x", rows, dim);
  auto h = Kokkos::create_mirror_view(m);
  for (index_t i = 0; i < rows; ++i)
    for (int j = 0; j < dim; ++j) h(i, j) = real(values[std::size_t(i * stride * dim + j)]);
  Kokkos::deep_copy(m, h);
  return m;
}

struct Result {
  std::string estimator;
  double value, standard_error;
  bool reliable;
  double half = NAN;  // the halving check's value, where the estimator has one
};

struct Cell {
  cal::Law law;
  long m;
  bool antithetic;
  cal::Truth truth;
  std::vector<Result> results;
};

// The estimators on m points of the law; with `antithetic`, the sample comes in antithetic pairs
// and the kNN estimators see one member of each pair (m/2 points), as the observer does.
Cell run_cell(const cal::Law& law, long m, int k, bool antithetic, const cal::Truth& truth,
              Workspace& scratch) {
  Cell cell{law, m, antithetic, truth, {}};
  const int dim = law.dim;
  const cal::Sample s = cal::sample(law, m, 1000 + std::uint64_t(m) + 7 * std::uint64_t(dim));
  double sum = 0, squares = 0;
  for (double r : s.log_ratio) sum += r, squares += r * r;
  const double mean = sum / double(m);
  const Estimate transport{mean, std::sqrt((squares / double(m) - mean * mean) / double(m - 1))};
  cell.results.push_back(
      {"transport", transport.value, transport.standard_error, kl_reliable(transport, 0)});

  const cal::Sample paired = antithetic ? cal::sample(law, m, 1000 + std::uint64_t(m), true) : s;
  const index_t stride = antithetic ? 2 : 1, n = index_t(m) / stride;
  const Matrix x = to_device(paired.x, n, dim, stride);
  const ExecSpace space;
  const ReferenceDraws draws{7, std::uint64_t(dim), 10 * n};
  const KnnKlEstimates e = knn_kl_estimates(space, x, k, draws, scratch);
  const double b0 = reference_bias(space, n, dim, k, {8, std::uint64_t(dim), n}, scratch);
  const double bound = knn_bias_bound(e.one_sample.value - e.one_sample_half, dim, b0);
  cell.results.push_back({"knn", e.one_sample.value, e.one_sample.standard_error,
                          kl_reliable(e.one_sample, bound), e.one_sample_half});

  const cal::Sample reference = cal::sample({"gaussian", dim, 0}, m, 99 + std::uint64_t(m));
  const Matrix y = to_device(reference.x, n, dim, stride);
  const Estimate bias = kl_knn_standard_normal(space, y, k, scratch);
  const Estimate corrected{e.one_sample.value - bias.value,
                           std::hypot(e.one_sample.standard_error, bias.standard_error)};
  cell.results.push_back({"knn_corrected", corrected.value, corrected.standard_error,
                          kl_reliable(corrected, bound + std::fabs(bias.value))});

  const Matrix z = to_device(paired.z, n, dim, stride);
  const Estimate initial = kl_knn_two_sample(space, x, z, k, true, scratch);
  cell.results.push_back({"two_sample_init", initial.value, initial.standard_error, false});

  cell.results.push_back(
      {"two_sample", e.two_sample.value, e.two_sample.standard_error,
       kl_reliable(e.two_sample,
                   two_sample_bias_bound(e.two_sample.value, e.one_sample.value, bound))});

  // The geometric (local-ellipsoid) estimate less its value at ρ₀, as kl_knn_ellipsoid.
  if (knn_ellipsoid_applies(n, dim)) {
    const EllipsoidReference ref =
        ellipsoid_reference(space, n, dim, {9, std::uint64_t(dim), n}, scratch);
    const EllipsoidKl ellipsoid = kl_knn_ellipsoid(space, x, ref, scratch);
    cell.results.push_back(
        {"knn_ellipsoid", ellipsoid.kl.value, ellipsoid.kl.standard_error,
         kl_reliable(ellipsoid.kl, ellipsoid_bias_bound(ellipsoid.kl.value, ellipsoid.half, dim,
                                                        e.one_sample.value, corrected.value)),
         ellipsoid.half});
  }
  return cell;
}

std::string law_name(const cal::Law& law) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%s t=%g", law.family.c_str(), law.time);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  std::vector<long> dims = {2, 4, 7, 10, 16}, sizes = {512, 2048, 8192, 32768, 65536};
  double max_work = 1e13;
  int k = 5;
  std::string out_path, csv_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--dims")
      dims = parse_list(value);
    else if (key == "--sizes")
      sizes = parse_list(value);
    else if (key == "--max-work")
      max_work = std::stod(value);
    else if (key == "--k")
      k = std::stoi(value);
    else if (key == "--out")
      out_path = value;
    else if (key == "--csv")
      csv_path = value;
    else {
      std::cerr << "kl_calibration: unknown option " << key << "\n";
      return 2;
    }
  }
  const std::vector<std::pair<std::string, double>> laws = {
      {"gaussian", 0},      {"ou", 0.5},        {"ou", 2},       {"anisotropic", 0.25},
      {"anisotropic", 0.5}, {"anisotropic", 1}, {"planar", 0.5}, {"planar", 1}};
  std::vector<Cell> cells;
  Workspace scratch;
  for (long dim : dims) {
    for (const auto& [family, time] : laws) {
      const cal::Law law{family, int(dim), time};
      const cal::Truth truth = cal::truth(law);
      for (long m : sizes) {
        if (double(m) * double(m) * double(dim) * 12 > max_work) continue;
        cells.push_back(run_cell(law, m, k, false, truth, scratch));
        std::cerr << "D=" << dim << " " << law_name(law) << " m=" << m << " done\n";
      }
    }
    // Antithetic pairs at t = 0 and on a trained law: all m points against one of each pair.
    for (const auto& [family, time] : {std::pair<std::string, double>{"gaussian", 0},
                                       std::pair<std::string, double>{"planar", 1}}) {
      const cal::Law law{family, int(dim), time};
      const long m = 4096;
      if (double(m) * double(m) * double(dim) * 12 > max_work) continue;
      const cal::Truth truth = cal::truth(law);
      Cell all = run_cell(law, m, k, false, truth, scratch);
      // The same pairs with every point kept: the kNN estimate the observers made before.
      const cal::Sample pairs = cal::sample(law, m, 1000 + std::uint64_t(m), true);
      const Matrix x = to_device(pairs.x, m, int(dim));
      const Estimate knn_pairs = kl_knn_standard_normal(ExecSpace(), x, k, scratch);
      Cell one = run_cell(law, m, k, true, truth, scratch);
      one.results.insert(one.results.begin() + 1, Result{"knn_all_of_pairs", knn_pairs.value,
                                                         knn_pairs.standard_error, false});
      cells.push_back(one);
    }
  }

  // The table: error = estimate − truth per estimator, '*' where flagged unreliable.
  std::ostringstream md;
  md << "| law | D | m | KL | transport | knn | knn_corrected | two_sample_init | two_sample | "
        "knn_ellipsoid |\n"
     << "|---|---|---|---|---|---|---|---|---|---|\n";
  std::map<std::string, std::vector<double>> errors;
  std::map<std::string, int> reliable, reliable_bad, total;
  for (const Cell& c : cells) {
    char head[160];
    std::snprintf(head, sizeof head, "| %s%s | %d | %ld | %.3f |", law_name(c.law).c_str(),
                  c.antithetic ? " antithetic" : "", c.law.dim, c.m, c.truth.kl);
    md << head;
    for (const Result& r : c.results) {
      const double error = r.value - c.truth.kl;
      const bool within = std::fabs(error) <= kl_tolerance(c.truth.kl) + 3 * c.truth.standard_error;
      if (r.estimator == "knn_all_of_pairs") continue;
      char entry[64];
      std::snprintf(entry, sizeof entry, " %+.3f ± %.3f%s |", error, r.standard_error,
                    r.reliable ? "" : " *");
      md << entry;
      if (!c.antithetic) {
        errors[r.estimator].push_back(std::fabs(error));
        ++total[r.estimator];
        if (r.reliable) ++reliable[r.estimator], reliable_bad[r.estimator] += within ? 0 : 1;
      }
    }
    md << "\n";
  }
  md << "\nAntithetic pairs (m = 4096 points in pairs): the kNN estimate on every point against "
        "one member of each pair\n\n| law | D | KL | knn, all points | knn, one of each pair |\n"
        "|---|---|---|---|---|\n";
  for (const Cell& c : cells)
    if (c.antithetic) {
      char row[200];
      std::snprintf(row, sizeof row, "| %s | %d | %.3f | %+.3f | %+.3f |\n",
                    law_name(c.law).c_str(), c.law.dim, c.truth.kl, c.results[1].value - c.truth.kl,
                    c.results[2].value - c.truth.kl);
      md << row;
    }
  md << "\nSummary over the non-antithetic cells\n\n| estimator | cells | median abs. error | max "
        "abs. error | flagged reliable | reliable but outside max(0.1, 5 %) |\n"
        "|---|---|---|---|---|---|\n";
  for (auto& [name, list] : errors) {
    std::sort(list.begin(), list.end());
    char row[200];
    std::snprintf(row, sizeof row, "| %s | %d | %.3f | %.3f | %d | %d |\n", name.c_str(),
                  total[name], list[list.size() / 2], list.back(), reliable[name],
                  reliable_bad[name]);
    md << row;
  }
  std::cout << md.str();
  if (!out_path.empty()) std::ofstream(out_path) << md.str();
  if (!csv_path.empty()) {
    std::ofstream csv(csv_path);
    csv << "family,time,dim,m,antithetic,truth,truth_se,estimator,value,se,reliable,half\n";
    for (const Cell& c : cells)
      for (const Result& r : c.results)
        csv << c.law.family << "," << c.law.time << "," << c.law.dim << "," << c.m << ","
            << c.antithetic << "," << c.truth.kl << "," << c.truth.standard_error << ","
            << r.estimator << "," << r.value << "," << r.standard_error << "," << r.reliable << ","
            << r.half << "\n";
  }
  int bad = 0;
  for (const auto& [name, count] : reliable_bad) bad += count;
  return bad == 0 ? 0 : 1;
}
