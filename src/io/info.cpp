#include "mfsim/io/info.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

#include "mfsim/core/error.hpp"
#include "mfsim/io/h5md_reader.hpp"

namespace mfsim {
namespace {
// A numeric parameter: a file whose attribute holds text instead is refused, naming it.
double number_parameter(const H5mdReader& r, const std::string& name) {
  const std::string text = r.parameter(name);
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0')
    throw InputError(r.path() + ": /parameters attribute " + name + " is not a number");
  return value;
}
}  // namespace

namespace {
// A data file (mfsim data import, or /data/train/{x,y} made by hand): its sizes and how it was
// made, instead of a run's backend and model.
void print_data_file_info(const H5mdReader& r, const Console& console) {
  const Dataset d = r.read_data();
  console.result(fmt::format("{}: a data file: {} training samples, {} test samples, dimension {}",
                             r.path(), d.n_train(), d.n_test(), d.dim()));
  // The import_* attributes (docs/data.md), in the order the import writes its steps.
  static const char* const imported[] = {
      "import_source",         "import_source_fnv1a64", "import_labels",
      "import_labels_fnv1a64", "import_rows",           "import_features",
      "import_n_train",        "import_n_test",         "import_test_fraction",
      "import_seed",           "import_standardize",    "import_normalize_to_sphere",
      "import_binary_labels"};
  bool any = false;
  for (const char* name : imported) {
    if (!r.has_parameter(name)) continue;
    console.result(fmt::format("  {:<28} {}", name, r.parameter(name)));
    any = true;
  }
  if (!any) console.result("  (no import_* attributes: not made by mfsim data import)");
}
}  // namespace

void print_info(const std::string& path, const Console& console) {
  const H5mdReader r(path);
  if (!r.has_parameter("model") && r.particle_groups().empty() && r.has_data()) {
    print_data_file_info(r, console);
    return;
  }
  auto parameter = [&](const char* name) {
    return r.has_parameter(name) ? r.parameter(name) : std::string("?");
  };
  console.result(fmt::format("{}: mfsim {}, backend {} ({} threads), {} precision, {} rank(s)",
                             path, parameter("mfsim_version"), parameter("backend"),
                             parameter("threads"), parameter("precision"), parameter("ranks")));
  if (r.has_parameter("kernel_isa"))
    console.result(fmt::format("kernels: {}", parameter("kernel_isa")));
  console.result(fmt::format("model: {}", parameter("model")));
  if (r.has_data()) {
    const Dataset d = r.read_data();
    console.result(fmt::format("data: {} training samples, {} test samples, dimension {}",
                               d.n_train(), d.n_test(), d.dim()));
  }
  for (const auto& g : r.particle_groups()) {
    const index_t frames = r.frames(g);
    if (frames == 0) {
      console.result(fmt::format("particles/{}: no frames", g));
      continue;
    }
    const ParticleFrame first = r.read_frame(g, 0), last = r.read_frame(g, -1);
    std::string columns;
    for (const auto& c : last.columns) columns += (columns.empty() ? "" : " ") + c;
    console.result(fmt::format(
        "particles/{}: {} particles x {} coordinates ({}), {} frames, steps {}..{}, t "
        "{:.6g}..{:.6g}"
        "{}",
        g, last.value.extent(0), last.value.extent(1), columns, frames, first.step, last.step,
        first.time, last.time, last.log_density.extent(0) > 0 ? ", with log-density" : ""));
  }
  const auto names = r.observables();
  const auto has = [&](const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  // An estimate's companions (<name>_stderr, <name>_reliable) are printed on its line.
  const auto companion = [&](const std::string& name) {
    for (const std::string suffix : {"_stderr", "_reliable"})
      if (name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
          has(name.substr(0, name.size() - suffix.size())))
        return true;
    return false;
  };
  const auto last = [&](const std::string& name) {
    const ObservableSeries s = r.read_observable(name);
    return s.value.empty() ? std::nan("") : s.value.back();
  };
  if (!names.empty()) console.result("observables (last row):");
  for (const auto& name : names) {
    if (companion(name)) continue;
    const ObservableSeries s = r.read_observable(name);
    if (s.step.empty()) {
      console.result(fmt::format("  {:<28} (empty)", name));
      continue;
    }
    const std::size_t width = s.value.size() / s.step.size();
    std::string value;
    if (width == 1) {
      value = fmt::format("{:.6g}", s.value.back());
      if (has(name + "_stderr")) value += fmt::format(" ± {:.2g}", last(name + "_stderr"));
      if (has(name + "_reliable") && !(last(name + "_reliable") > 0.5))
        value += " UNRELIABLE (its error may exceed max(0.1 nats, 5 %): docs/diagnostics.md)";
    } else {
      value = fmt::format("[{} values]", width);
    }
    console.result(fmt::format("  {:<28} {:>6} rows  step {:>8}  t {:<10.6g} {}", name,
                               s.step.size(), s.step.back(), s.time.back(), value));
  }
  // The NTK reference beside the particle Gram: λ_min(G)/β² → λ₀ as the width grows (MATH.md §2.6).
  if (r.has_parameter("ntk_lambda0") && r.has_parameter("ntk_gram_scale")) {
    std::string gram = "no gram_lambda_min rows";
    const bool have_gram = std::find(names.begin(), names.end(), "gram_lambda_min") != names.end();
    if (have_gram) {
      const ObservableSeries s = r.read_observable("gram_lambda_min");
      if (!s.step.empty())
        gram = fmt::format("lambda_min(G)/beta^2 = {:.6g} at step {} (t = {:.6g})",
                           s.value.front() / number_parameter(r, "ntk_gram_scale"), s.step.front(),
                           s.time.front());
    }
    console.result(fmt::format("NTK reference: lambda0 = lambda_min(K) = {:.6g}; {}",
                               number_parameter(r, "ntk_lambda0"), gram));
  }
}

}  // namespace mfsim
