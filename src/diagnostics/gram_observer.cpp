#include "mfsim/diagnostics/gram_observer.hpp"

#include <algorithm>
#include <cmath>
#include <ostream>
#include <string>

#include "mfsim/core/host_copy.hpp"
#include "mfsim/diagnostics/particle_speed.hpp"

namespace mfsim {

GramObserver::GramObserver(const Model& model, const GramModel& gram,
                           const DiagnosticsSettings& settings, std::ostream* log)
    : model_(gram),
      parts_(gram.gram_parts()),
      solver_(settings.gram_solver),
      log_(log),
      spectrum_(settings.gram_spectrum),
      matrix_(settings.gram_matrix),
      layers_(settings.gram_layers),
      every_(settings.gram_every) {
  // Rows (i, j), MATH.md §1.5.
  const index_t n = gram.gram_samples(model.data()) * model.outputs();
  gram_ = Matrix("mfsim::Gram::total", n, n);
  for (const auto& part : parts_) part_gram_.emplace_back("mfsim::Gram::" + part, n, n);
  host_gram_ = HostMatrix("mfsim::Gram::host_total", n, n);
  bool layered = false;
  for (std::size_t q = 0; q < parts_.size(); ++q) layered = layered || gram.gram_layers(int(q)) > 0;
  layers_ = layers_ && layered;
  if (parts_.size() > 1 || layers_) host_part_ = HostMatrix("mfsim::Gram::host_part", n, n);
  if (layers_) layer_gram_ = Matrix("mfsim::Gram::layer", n, n);
}

ExtremeEigenvalues GramObserver::extremes(const HostMatrix& host, const std::string& part,
                                          index_t step) {
  const ExtremeEigenvalues ev = extreme_eigenvalues(host, solver_);
  if (ev.dense_fallback && solver_ == EigenSolverKind::lanczos && log_ && !fallback_noted_) {
    fallback_noted_ = true;
    *log_ << "note: gram_solver = \"lanczos\" handed over to the dense solver at step " << step
          << " (" << (part.empty() ? std::string("G") : "G_" + part) << ", n = " << host.extent(0)
          << (host.extent(0) <= 3 ? ": too small for Lanczos" : ": Lanczos did not converge")
          << "); the values are the dense solver's\n";
  }
  return ev;
}

void GramObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  const Model& model = p.model;
  const index_t n = index_t(gram_.extent(0));
  const bool several = parts_.size() > 1;
  const ExecSpace& space = p.space;
  Kokkos::deep_copy(space, gram_, real(0));
  for (std::size_t q = 0; q < parts_.size(); ++q) {
    Matrix part = part_gram_[q];
    Kokkos::deep_copy(space, part, real(0));
    model_.accumulate_gram(space, p.state, p.evaluation, int(q), part, scratch_);
    model.comm().allreduce_sum(space, part);
    Matrix total = gram_;
    Kokkos::parallel_for(
        "mfsim::Gram::add_part", Kokkos::RangePolicy<ExecSpace>(space, 0, n * n),
        KOKKOS_LAMBDA(index_t e) { total(e / n, e % n) += part(e / n, e % n); });
    if (several) {
      copy_to_host(space, part, host_part_);
      const ExtremeEigenvalues ev = extremes(host_part_, parts_[q], p.step);
      sink.append_observable(observable_name("gram", parts_[q], "lambda_min"), p.step, p.time,
                             {ev.min});
    }
    const int layers = layers_ ? model_.gram_layers(int(q)) : 0;
    if (layers == 0) continue;
    std::vector<double> minima;
    for (int l = 0; l < layers; ++l) {
      Kokkos::deep_copy(space, layer_gram_, real(0));
      model_.accumulate_gram_layer(space, p.state, p.evaluation, int(q), l, layer_gram_, scratch_);
      model.comm().allreduce_sum(space, layer_gram_);
      copy_to_host(space, layer_gram_, host_part_);
      minima.push_back(extremes(host_part_, parts_[q], p.step).min);
    }
    sink.append_observable(observable_name("gram", parts_[q], "lambda_min_layers"), p.step, p.time,
                           minima, {minima.size()});
  }
  copy_to_host(space, gram_, host_gram_);

  ExtremeEigenvalues ev;
  if (spectrum_) {
    const std::vector<double> all = eigenvalues(host_gram_);
    ev = {all.front(), all.back()};
    sink.append_observable("gram_spectrum", p.step, p.time, all, {std::size_t(n)});
  } else {
    ev = extremes(host_gram_, "", p.step);
  }
  sink.append_observable("gram_lambda_min", p.step, p.time, {ev.min});
  sink.append_observable("gram_lambda_max", p.step, p.time, {ev.max});
  if (matrix_) {
    const std::vector<double> values(host_gram_.data(), host_gram_.data() + n * n);
    sink.append_observable("gram_matrix", p.step, p.time, values, {std::size_t(n), std::size_t(n)});
  }

  const double samples = double(model_.gram_samples(model.data()));
  if (energy_identity_) {
    // (A11): (1/n²) rᵀGr against the mean squared particle speed.
    const std::vector<double> r = to_host_doubles(space, p.evaluation.residual);
    double quadratic = 0;
    for (index_t i = 0; i < n; ++i) {
      double row = 0;
      for (index_t j = 0; j < n; ++j) row += host_gram_(i, j) * r[std::size_t(j)];
      quadratic += r[std::size_t(i)] * row;
    }
    quadratic /= samples * samples;
    const double speed = mean_square_speed(space, p.velocity, model.groups(), model.comm());
    const double scale = std::max(std::fabs(speed), std::fabs(quadratic));
    sink.append_observable("energy_identity_error", p.step, p.time,
                           {scale > 0 ? std::fabs(quadratic - speed) / scale : 0.0});
  }

  // (A12) with the trapezoid rule between observations.
  if (!loss_bound_) return;
  if (!started_) {
    started_ = true;
    initial_loss_ = continued_bound_ ? *continued_bound_ : p.loss;
  } else {
    integral_ += 0.5 * (p.time - last_time_) * (last_lambda_min_ + ev.min);
  }
  last_time_ = p.time;
  last_lambda_min_ = ev.min;
  sink.append_observable("loss_bound", p.step, p.time,
                         {initial_loss_ * std::exp(-2.0 / samples * integral_)});
}

}  // namespace mfsim
