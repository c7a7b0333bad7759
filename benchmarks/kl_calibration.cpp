// The KL calibration harness: every KL estimator of mfsim on laws whose KL to ρ₀ = N(0, I_D) is
// known (detail/kl_calibration_laws.hpp), over a grid of dimension D, sample size m, law and
// training time, and on the particles of real runs of both models against the KL of their law
// from many transported tracers (app/kl_calibration_flows.hpp); writes each estimate's error,
// standard error and reliability flag as markdown tables, and a summary per estimator
// (docs/diagnostics.md, "Which KL to trust").
//
//   kl_calibration [--dims 2,4,7,10,16] [--sizes 512,2048,8192,32768,65536] [--max-work W]
//                  [--k 5] [--flows full|quick|none] [--source REPO] [--out table.md]
//                  [--csv raw.csv]
//
// The estimators are diagnostics/kl_calibration_estimates.hpp's, as the observers compute them.
// A law cell is skipped when m²·D·(2 + 10) exceeds --max-work (the brute-force searches' cost).
// The flows are read from REPO/simulations/configs (--source: the repository, default ".").
// Exit status 1 when a value flagged reliable missed its tolerance.
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

#include "app/kl_calibration_flows.hpp"
#include "diagnostics/kl_calibration_estimates.hpp"
#include "mfsim/io/config.hpp"

namespace {

using namespace mfsim;
namespace cal = mfsim::calibration;

std::vector<long> parse_list(const std::string& text) {
  std::vector<long> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stol(item));
  return out;
}

using cal::Result;

std::string law_name(const cal::Law& law) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%s t=%g", law.family.c_str(), law.time);
  return buffer;
}

struct Cell {
  std::string name;
  int dim;
  long m;
  bool antithetic;
  cal::Truth truth;
  std::vector<Result> results;
};

// The estimators on m points of the law; with `antithetic`, the sample comes in antithetic pairs
// and the kNN estimators see one member of each pair (m/2 points), as the observer does.
Cell run_cell(const cal::Law& law, long m, int k, bool antithetic, const cal::Truth& truth,
              Workspace& scratch) {
  const std::uint64_t seed =
      1000 + std::uint64_t(m) + (antithetic ? 0 : 7 * std::uint64_t(law.dim));
  const cal::Sample s = cal::sample(law, m, seed, antithetic);
  return {law_name(law) + (antithetic ? " antithetic" : ""),
          law.dim,
          m,
          antithetic,
          truth,
          cal::estimate_all(s, law.dim, k, antithetic, 99 + std::uint64_t(m), scratch)};
}

// Per estimator: the absolute errors, and how many values were flagged reliable and, of those,
// outside the tolerance.
struct Tally {
  std::vector<double> errors;
  int reliable = 0, reliable_bad = 0;
};

// The table: error = estimate − truth per estimator, '*' where flagged unreliable; the
// non-antithetic cells (every cell with `all`) counted in `tally`.
std::string table(const std::vector<Cell>& cells, std::map<std::string, Tally>& tally, bool all) {
  std::ostringstream md;
  md << "| law | D | m | KL | transport | knn | knn_corrected | two_sample_init | two_sample | "
        "knn_ellipsoid |\n"
     << "|---|---|---|---|---|---|---|---|---|---|\n";
  for (const Cell& c : cells) {
    char head[200];
    if (c.truth.standard_error > 0)
      std::snprintf(head, sizeof head, "| %s | %d | %ld | %.3f ± %.3f |", c.name.c_str(), c.dim,
                    c.m, c.truth.kl, c.truth.standard_error);
    else
      std::snprintf(head, sizeof head, "| %s | %d | %ld | %.3f |", c.name.c_str(), c.dim, c.m,
                    c.truth.kl);
    md << head;
    for (const Result& r : c.results) {
      if (r.estimator == "knn_all_of_pairs") continue;
      const double error = r.value - c.truth.kl;
      const bool within = std::fabs(error) <= kl_tolerance(c.truth.kl) + 3 * c.truth.standard_error;
      char entry[64];
      std::snprintf(entry, sizeof entry, " %+.3f ± %.3f%s |", error, r.standard_error,
                    r.reliable ? "" : " *");
      md << entry;
      if (all || !c.antithetic) {
        Tally& t = tally[r.estimator];
        t.errors.push_back(std::fabs(error));
        if (r.reliable) ++t.reliable, t.reliable_bad += within ? 0 : 1;
      }
    }
    md << "\n";
  }
  return md.str();
}

std::string summary(std::map<std::string, Tally>& tally) {
  std::ostringstream md;
  md << "| estimator | cells | median abs. error | max abs. error | flagged reliable | reliable "
        "but "
        "outside max(0.1, 5 %) |\n|---|---|---|---|---|---|\n";
  for (auto& [name, t] : tally) {
    std::sort(t.errors.begin(), t.errors.end());
    char row[200];
    std::snprintf(row, sizeof row, "| %s | %zu | %.3f | %.3f | %d | %d |\n", name.c_str(),
                  t.errors.size(), t.errors[t.errors.size() / 2], t.errors.back(), t.reliable,
                  t.reliable_bad);
    md << row;
  }
  return md.str();
}

// The deterministic flows whose tracer laws are calibrated: mfsim's example configs at small
// sizes, each at every width of `widths` (model.width; the ResNet's head too).
struct FlowCase {
  std::string config, label;
  std::vector<std::string> overrides;
  std::vector<long> widths;
  std::vector<double> times;
  index_t tracers;
};

std::vector<FlowCase> flow_cases(const std::string& which) {
  if (which == "none") return {};
  const std::string two_layer = "simulations/configs/two_layer_meanfield.toml",
                    resnet = "simulations/configs/resnet_meanfield.toml";
  if (which == "quick") return {{two_layer, "two-layer d=2", {"data.dim=2"}, {512}, {1, 4}, 4096}};
  // The quick start's flow at dt = 0.1 (RK4: the particles and the tracers share the scheme).
  return {
      {two_layer, "two-layer quick start", {"flow.dt=0.1"}, {512, 4096}, {2, 10, 50}, 8192},
      {two_layer,
       "two-layer quick start, no pairs",
       {"flow.dt=0.1", "init.antithetic=false"},
       {4096},
       {50},
       8192},
      {two_layer, "two-layer d=2", {"flow.dt=0.1", "data.dim=2"}, {512, 4096}, {2, 10, 30}, 8192},
      {resnet, "ResNet d=2 L=4", {"data.dim=2", "model.depth=4"}, {512, 4096}, {10, 40}, 16384},
  };
}

std::string flow_name(const cal::FlowLaw& law, long width) {
  char buffer[160];
  std::snprintf(buffer, sizeof buffer, "%s m=%ld t=%g", law.name.c_str(), width, law.time);
  return buffer;
}

}  // namespace

int main(int argc, char** argv) {
  Kokkos::ScopeGuard kokkos(argc, argv);
  std::vector<long> dims = {2, 4, 7, 10, 16}, sizes = {512, 2048, 8192, 32768, 65536};
  double max_work = 1e13;
  int k = 5;
  std::string out_path, csv_path, flows = "full", source = ".";
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
    else if (key == "--flows")
      flows = value;
    else if (key == "--source")
      source = value;
    else {
      std::cerr << "kl_calibration: unknown option " << key << "\n";
      return 2;
    }
  }
  const std::vector<std::pair<std::string, double>> laws = {
      {"gaussian", 0},      {"ou", 0.5},        {"ou", 2},       {"anisotropic", 0.25},
      {"anisotropic", 0.5}, {"anisotropic", 1}, {"planar", 0.5}, {"planar", 1}};
  std::vector<Cell> cells, flow_cells;
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
      // The same pairs with every point kept: the kNN estimate the observers made before.
      const cal::Sample pairs = cal::sample(law, m, 1000 + std::uint64_t(m), true);
      const Matrix x = cal::rows_of(pairs.x, m, int(dim));
      const Estimate knn_pairs = kl_knn_standard_normal(ExecSpace(), x, k, scratch);
      Cell one = run_cell(law, m, k, true, truth, scratch);
      one.results.insert(one.results.begin() + 1, Result{"knn_all_of_pairs", knn_pairs.value,
                                                         knn_pairs.standard_error, false});
      cells.push_back(one);
    }
  }
  // The transported tracer laws: the estimators on the particles of a real run against the
  // tracers' KL.
  for (const FlowCase& f : flow_cases(flows))
    for (long width : f.widths) {
      std::vector<std::string> overrides = f.overrides;
      overrides.push_back("model.width=" + std::to_string(width));
      if (f.config.find("resnet") != std::string::npos)
        overrides.push_back("model.head_width=" + std::to_string(width));
      const Config config = load_config(source + "/" + f.config, overrides);
      for (const cal::FlowLaw& law :
           cal::run_traced_flow(config, f.label, f.tracers, f.times, 20261207)) {
        flow_cells.push_back({flow_name(law, width), law.dim, width, law.antithetic, law.reference,
                              cal::estimate_all(law.particles, law.dim, k, law.antithetic,
                                                99 + std::uint64_t(width), scratch)});
        std::cerr << flow_cells.back().name << " done\n";
      }
    }

  std::ostringstream md;
  std::map<std::string, Tally> law_tally, flow_tally;
  md << table(cells, law_tally, false);
  md << "\nAntithetic pairs (m = 4096 points in pairs): the kNN estimate on every point against "
        "one member of each pair\n\n| law | D | KL | knn, all points | knn, one of each pair |\n"
        "|---|---|---|---|---|\n";
  for (const Cell& c : cells)
    if (c.antithetic) {
      char row[200];
      const std::string law = c.name.substr(0, c.name.rfind(" antithetic"));
      std::snprintf(row, sizeof row, "| %s | %d | %.3f | %+.3f | %+.3f |\n", law.c_str(), c.dim,
                    c.truth.kl, c.results[1].value - c.truth.kl, c.results[2].value - c.truth.kl);
      md << row;
    }
  md << "\nSummary over the non-antithetic cells\n\n" << summary(law_tally);
  if (!flow_cells.empty()) {
    md << "\nTransported tracer laws: the estimators on the m particles of a run against the KL "
          "of their law from T tracers (KL ± its sampling error; T = 8192 for the two-layer, "
          "16384 for the ResNet, 4096 with --flows quick; antithetic runs: kNN on one of each "
          "pair)\n\n"
       << table(flow_cells, flow_tally, true) << "\nSummary over the tracer laws\n\n"
       << summary(flow_tally);
  }
  std::cout << md.str();
  if (!out_path.empty()) std::ofstream(out_path) << md.str();
  if (!csv_path.empty()) {
    std::ofstream csv(csv_path);
    csv << "law,dim,m,antithetic,truth,truth_se,estimator,value,se,reliable,half\n";
    for (const auto* list : {&cells, &flow_cells})
      for (const Cell& c : *list)
        for (const Result& r : c.results)
          csv << c.name << "," << c.dim << "," << c.m << "," << c.antithetic << "," << c.truth.kl
              << "," << c.truth.standard_error << "," << r.estimator << "," << r.value << ","
              << r.standard_error << "," << r.reliable << "," << r.half << "\n";
  }
  int bad = 0;
  for (const auto* tally : {&law_tally, &flow_tally})
    for (const auto& [name, t] : *tally) bad += t.reliable_bad;
  return bad == 0 ? 0 : 1;
}
