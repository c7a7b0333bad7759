#include "mfsim/flow/run.hpp"

#include <chrono>
#include <cmath>
#include <optional>
#include <string>

#include <fmt/format.h>
#include <Kokkos_Core.hpp>

#include "mfsim/core/collective_error.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/core/profiling.hpp"

namespace mfsim {

std::string stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::steps:
      return "steps";
    case StopReason::t_end:
      return "t_end";
    case StopReason::loss_tol:
      break;
  }
  return "loss_tol";
}

namespace {
bool on_cadence(index_t step, index_t every) {
  return every > 0 && step % every == 0;
}

// Splits run_flow's wall time into consecutive laps: each lap() fences Kokkos, so that the
// kernels launched in a phase are charged to it, and returns the seconds since the previous lap.
class LapClock {
 public:
  double lap() {
    Kokkos::fence();
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - mark_).count();
    mark_ = now;
    return seconds;
  }

 private:
  std::chrono::steady_clock::time_point mark_ = std::chrono::steady_clock::now();
};
}  // namespace

RunSummary run_flow(const Model& model, ParticleState& state, const RunSettings& settings,
                    const std::vector<Observer*>& observers, RunOutput& output,
                    ProgressReporter* progress) {
  const auto start = std::chrono::steady_clock::now();
  const ProfilingRegion run_region("mfsim::run_flow");
  // The observers' region names, made once: the loop builds no string per step.
  std::vector<std::string> observer_regions;
  for (const Observer* o : observers) observer_regions.push_back("mfsim::observe::" + o->name());
  Integrator integrator(settings.integrator, state);
  ParticleState velocity = allocate_like(state, "run::velocity");
  ParticleState previous = allocate_like(state, "run::previous");
  // One evaluation for the whole run: the observers read it at the start of a step, before the
  // integrator's later stages refill it.
  const std::unique_ptr<Evaluation> evaluation = model.make_evaluation();
  // The regularisers' drift is added to the model's velocity in every stage; the observers see
  // the model's velocity v = −∇Ψ alone (FlowPoint), the integrator the total drift k1.
  const Regularisation& regularisation = settings.regularisation;
  const auto& groups = model.groups();
  const bool drift = regularisation.has_drift();
  // Stochastic gradients: every stage of a step evaluates that step's minibatch (`stepping`); the
  // full batch is evaluated only at the steps that observe or snapshot. Without minibatches both
  // are the one evaluation and its velocity.
  const bool minibatches = settings.minibatch.active(model.data().n_train());
  const std::unique_ptr<Evaluation> batch_evaluation =
      minibatches ? model.make_evaluation(settings.minibatch.size) : nullptr;
  std::optional<MinibatchSampler> sampler;
  if (minibatches) sampler.emplace(settings.minibatch, model.data());
  Evaluation& stepping = minibatches ? *batch_evaluation : *evaluation;
  ParticleState step_velocity =
      minibatches ? allocate_like(state, "run::minibatch_velocity") : velocity;
  ParticleState k1 = drift ? allocate_like(state, "run::drift") : step_velocity;
  const VelocityField field = [&](const ParticleState& s, ParticleState& dsdt) {
    const real loss = model.evaluate(s, stepping, dsdt);
    if (drift) add_regulariser_drift(regularisation, groups, s, dsdt, dsdt);
    return loss;
  };
  const Communicator& comm = model.comm();
  const bool time_limited = settings.t_end > 0;
  const double origin = settings.start_time - double(settings.first_step) * settings.dt;

  RunSummary summary;
  index_t step = settings.first_step;
  double time = settings.start_time;
  double previous_time = time;
  index_t last_snapshot = -1;
  LapClock clock;
  for (index_t done = 0;; ++done) {
    clock.lap();  // the previous iteration's tail (progress) is in summary.seconds only
    const bool budget_spent =
        done >= settings.steps || (time_limited && time >= settings.t_end * (1 - 1e-12));
    // The full batch is evaluated where something observes or snapshots (always, without
    // minibatches).
    bool full = !minibatches || done == 0 || budget_spent ||
                on_cadence(step, settings.observe_every) ||
                on_cadence(step, settings.snapshot_every);
    for (const Observer* o : observers) full = full || on_cadence(step, o->every());
    double loss = 0, step_loss = 0;
    if (full) {
      const ProfilingRegion region("mfsim::evaluate");
      loss = double(model.evaluate(state, *evaluation, velocity));
    }
    // The full evaluation is the step's own velocity without minibatches, unless no step follows.
    const double full_seconds = clock.lap();
    const bool steps_on_minibatch = minibatches && !budget_spent;
    if (steps_on_minibatch) {
      const ProfilingRegion region("mfsim::evaluate_minibatch");
      sampler->draw(step, stepping);
      step_loss = double(model.evaluate(state, stepping, step_velocity));
    }
    const bool finite_loss =
        (!full || std::isfinite(loss)) && (!steps_on_minibatch || std::isfinite(step_loss));
    const bool finite_state = comm.allreduce_max(all_finite(state) ? 0.0 : 1.0) == 0.0;
    if (!finite_loss || !finite_state) {
      std::string what = !finite_state ? "a particle coordinate"
                         : full        ? "the training loss"
                                       : "the minibatch loss";
      what += fmt::format(" became non-finite at step {} (t = {:.6g})", step, time);
      if (done > 0) {
        // The last finite state gets its observables row and its frame when its step was off
        // their cadences, so that the file ends on it.
        const double previous_loss = double(model.evaluate(previous, *evaluation, velocity));
        const FlowPoint point{step - 1, previous_time, 0.0,         previous,
                              velocity, previous_loss, *evaluation, model};
        for (Observer* o : observers) {
          const index_t every = o->every() > 0 ? o->every() : settings.observe_every;
          if (done > 1 && !on_cadence(step - 1, every)) o->observe(point, output);
        }
        if (last_snapshot != step - 1) output.append_particles(step - 1, previous_time, previous);
        what += fmt::format("; the last finite state (step {}) is saved", step - 1);
      }
      // Every rank sees it (the check above is a reduction): raise it as an agreed error.
      raise_if_any_failed(
          comm, std::make_exception_ptr(NonFiniteError(what + "; try a smaller flow.dt")));
    }
    if (done == 0) summary.initial_loss = loss;
    const double check_seconds = clock.lap();

    StopReason reason = StopReason::steps;
    bool last = done >= settings.steps;
    if (time_limited && time >= settings.t_end * (1 - 1e-12))
      last = true, reason = StopReason::t_end;
    if (full && loss <= settings.loss_tol) last = true, reason = StopReason::loss_tol;
    if (done >= settings.steps) reason = StopReason::steps;
    (minibatches || last ? summary.observe_seconds : summary.step_seconds) += full_seconds;
    if (!last) summary.step_seconds += check_seconds;

    double dt = settings.dt;
    if (time_limited && time + dt > settings.t_end) dt = settings.t_end - time;
    if (full) {
      const FlowPoint point{step, time, last ? 0.0 : dt, state, velocity, loss, *evaluation, model};
      for (Observer* o : observers) o->on_step(point);
      for (std::size_t k = 0; k < observers.size(); ++k) {
        Observer* o = observers[k];
        const index_t every = o->every() > 0 ? o->every() : settings.observe_every;
        if (done == 0 || last || on_cadence(step, every)) {
          const ProfilingRegion region(observer_regions[k]);
          o->observe(point, output);
        }
      }
    }
    if (done == 0 || last || on_cadence(step, settings.observe_every)) ++summary.observations;
    summary.observe_seconds += clock.lap();
    {
      const ProfilingRegion region("mfsim::output");
      if (done == 0 || last || on_cadence(step, settings.snapshot_every)) {
        output.append_particles(step, time, state);
        last_snapshot = step;
        ++summary.snapshots;
      }
      output.flush();
    }
    summary.write_seconds += clock.lap();
    if (progress) progress->update(done, step, time, full ? loss : step_loss, last);
    if (last) {
      summary.step = step;
      summary.steps_run = done;
      summary.time = time;
      summary.loss = loss;
      summary.reason = reason;
      break;
    }
    deep_copy(previous, state);
    previous_time = time;
    {
      const ProfilingRegion region("mfsim::integrate");
      if (drift) add_regulariser_drift(regularisation, groups, state, step_velocity, k1);
      integrator.finish_step(state, k1, real(dt), field);
      // Euler–Maruyama: the Brownian increment of the step, at the temperature of its start.
      if (regularisation.noisy()) add_langevin_noise(regularisation, groups, state, step, time, dt);
    }
    summary.step_seconds += clock.lap();
    ++step;
    // Flow time from the absolute step count, not by summation, so that it does not drift, and so
    // that a restart from step j (time j·dt) computes bitwise the times of the uninterrupted run:
    // time-dependent terms (a temperature schedule) then match too. origin is 0 for a fresh run.
    time =
        (time_limited && dt < settings.dt) ? settings.t_end : origin + double(step) * settings.dt;
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace mfsim
