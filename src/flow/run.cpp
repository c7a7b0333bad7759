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

namespace {

// Splits run_flow's wall time into consecutive laps, returning the seconds since the previous
// lap. Timing phases (RunSettings::time_phases), each lap first waits for the run's instance (the
// steps', the observers' and the output's), so that the kernels launched in a phase are charged
// to it; otherwise it waits for nothing, and a lap is the host's time in the phase (on an
// asynchronous backend, the time to launch its kernels).
class LapClock {
 public:
  LapClock(bool fence, const ExecSpace& space) : fence_(fence), space_(space) {}
  double lap() {
    if (fence_) space_.fence();
    const auto now = std::chrono::steady_clock::now();
    const double seconds = std::chrono::duration<double>(now - mark_).count();
    mark_ = now;
    return seconds;
  }

 private:
  bool fence_;
  ExecSpace space_;
  std::chrono::steady_clock::time_point mark_ = std::chrono::steady_clock::now();
};

RunSchedule schedule_of(const RunSettings& settings, const std::vector<Observer*>& observers,
                        bool minibatches) {
  RunSchedule schedule;
  schedule.steps = settings.steps;
  schedule.dt = settings.dt;
  schedule.t_end = settings.t_end;
  schedule.loss_tol = settings.loss_tol;
  schedule.observe_every = settings.observe_every;
  schedule.snapshot_every = settings.snapshot_every;
  for (const Observer* o : observers)
    schedule.observer_every.push_back(o->every() > 0 ? o->every() : settings.observe_every);
  schedule.minibatches = minibatches;
  schedule.time_origin = settings.start_time - double(settings.first_step) * settings.dt;
  return schedule;
}

// The buffers and evaluations of a run, allocated once before its first step (and zeroed on the
// run's instance).
struct RunBuffers {
  RunBuffers(const Model& model, const ParticleState& state, const RunSettings& settings)
      : minibatches(settings.minibatch.active(model.data().n_train())),
        drift(settings.regularisation.has_drift()),
        integrator(settings.space, settings.integrator, state),
        velocity(allocate_like(settings.space, state, "run::velocity")),
        previous(allocate_like(settings.space, state, "run::previous")),
        evaluation(model.make_evaluation(settings.space, 0)),
        batch_evaluation(
            minibatches ? model.make_evaluation(settings.space, settings.minibatch.size) : nullptr),
        step_velocity(minibatches ? allocate_like(settings.space, state, "run::minibatch_velocity")
                                  : velocity),
        k1(drift ? allocate_like(settings.space, state, "run::drift") : step_velocity) {
    if (minibatches) sampler.emplace(settings.space, settings.minibatch, model.data());
  }
  const bool minibatches, drift;
  Integrator integrator;
  ParticleState velocity;  // the model's velocity v = −∇Ψ of the full batch (what observers see)
  ParticleState previous;  // the state before the last step (saved if the step blows up)
  // One full-batch evaluation for the whole run: the observers read it at the start of a step,
  // before the integrator's later stages refill it.
  std::unique_ptr<Evaluation> evaluation;
  // Stochastic gradients: every stage of a step evaluates that step's minibatch; without
  // minibatches the stepping evaluation and velocity are the full batch's.
  std::unique_ptr<Evaluation> batch_evaluation;
  std::optional<MinibatchSampler> sampler;
  ParticleState step_velocity;
  ParticleState k1;  // the step's total drift: the velocity plus the regularisers'
  Evaluation& stepping() { return minibatches ? *batch_evaluation : *evaluation; }
};

// A loss or a particle became non-finite at `at`: the last finite state (`previous`) gets the
// observation rows and the frame its cadences skipped, so that the file ends on it, is copied
// back into `state`, and every rank raises the agreed NonFiniteError.
[[noreturn]] void stop_non_finite(const ExecSpace& space, const Model& model, ParticleState& state,
                                  const RunSchedule& schedule, const RunPosition& at,
                                  double previous_time, bool state_finite, bool full, RunBuffers& b,
                                  index_t last_snapshot, const std::vector<Observer*>& observers,
                                  RunOutput& output) {
  std::string what = !state_finite ? "a particle coordinate"
                     : full        ? "the training loss"
                                   : "the minibatch loss";
  what += fmt::format(" became non-finite at step {} (t = {:.6g})", at.step, at.time);
  if (at.done > 0) {
    const double previous_loss =
        double(model.evaluate(space, b.previous, *b.evaluation, b.velocity));
    const FlowPoint point{at.step - 1,   previous_time, 0.0,   b.previous, b.velocity,
                          previous_loss, *b.evaluation, model, space};
    const RunPosition before{at.done - 1, at.step - 1, previous_time, false};
    const StepPlan skipped = plan_step(schedule, before);
    for (std::size_t k = 0; k < observers.size(); ++k)
      if (at.done > 1 && !skipped.observes(k)) observers[k]->observe(point, output);
    if (last_snapshot != at.step - 1)
      output.append_particles(space, at.step - 1, previous_time, b.previous);
    output.flush();
    what += fmt::format("; the last finite state (step {}) is saved", at.step - 1);
    deep_copy(space, state, b.previous);
    space.fence();
  }
  // Every rank sees it (the check is a reduction): raise it as an agreed error.
  raise_if_any_failed(model.comm(), std::make_exception_ptr(NonFiniteError(
                                        what + "; try a smaller flow.dt",
                                        at.done > 0 ? at.step - 1 : -1, previous_time)));
  throw NonFiniteError(what);  // not reached: raise_if_any_failed throws the error it is given
}

}  // namespace

struct FlowRun::Buffers : RunBuffers {
  using RunBuffers::RunBuffers;
};

FlowRun::FlowRun(const Model& model, ParticleState& state, const RunSettings& settings)
    : model_(model),
      state_(state),
      settings_(settings),
      buffers_(std::make_unique<Buffers>(model, state, settings)) {}

FlowRun::~FlowRun() = default;

FlowRun::Start FlowRun::start() const {
  Start out;
  out.loss =
      double(model_.evaluate(settings_.space, state_, *buffers_->evaluation, buffers_->velocity));
  out.finite_particles =
      model_.comm().allreduce_max(all_finite(settings_.space, state_) ? 0.0 : 1.0) == 0.0;
  return out;
}

RunSummary run_flow(const Model& model, ParticleState& state, const RunSettings& settings,
                    const std::vector<Observer*>& observers, RunOutput& output,
                    ProgressReporter* progress) {
  return FlowRun(model, state, settings).run(observers, output, progress);
}

RunSummary FlowRun::run(const std::vector<Observer*>& observers, RunOutput& output,
                        ProgressReporter* progress) {
  const Model& model = model_;
  ParticleState& state = state_;
  const RunSettings& settings = settings_;
  const auto start = std::chrono::steady_clock::now();
  const ProfilingRegion run_region("mfsim::run_flow");
  // The observers' region names, made once: the loop builds no string per step.
  std::vector<std::string> observer_regions;
  for (const Observer* o : observers) observer_regions.push_back("mfsim::observe::" + o->name());
  RunBuffers& b = *buffers_;
  const RunSchedule schedule = schedule_of(settings, observers, b.minibatches);
  // The regularisers' drift is added to the model's velocity in every stage; the observers see
  // the model's velocity v = −∇Ψ alone (FlowPoint), the integrator the total drift k1.
  const Regularisation& regularisation = settings.regularisation;
  const auto& groups = model.groups();
  const VelocityField field = [&](const ExecSpace& on, const ParticleState& s,
                                  ParticleState& dsdt) {
    const real loss = model.evaluate(on, s, b.stepping(), dsdt);
    if (b.drift) add_regulariser_drift(on, regularisation, groups, s, dsdt, dsdt);
    return loss;
  };
  // Every kernel, copy and reduction of a step runs on `space`, and so do the observers and the
  // snapshots (RunSettings::space): the observations need no fence of their own.
  const ExecSpace& space = settings.space;

  RunSummary summary;
  RunPosition at{0, settings.first_step, settings.start_time, false};
  double previous_time = at.time;
  index_t last_snapshot = -1;
  LapClock clock(settings.time_phases, space);
  for (;; ++at.done) {
    clock.lap();  // the previous iteration's tail (progress) is in summary.seconds only
    at.stop_requested = settings.stop_requested && settings.stop_requested();
    StepPlan plan = plan_step(schedule, at);
    double loss = 0, step_loss = 0;
    if (plan.full_evaluation) {
      const ProfilingRegion region("mfsim::evaluate");
      loss = double(model.evaluate(space, state, *b.evaluation, b.velocity));
    }
    // The full evaluation is the step's own velocity without minibatches, unless no step follows.
    const double full_seconds = clock.lap();
    if (plan.minibatch_step) {
      const ProfilingRegion region("mfsim::evaluate_minibatch");
      b.sampler->draw(space, at.step, b.stepping());
      step_loss = double(model.evaluate(space, state, b.stepping(), b.step_velocity));
    }
    const bool finite_loss = (!plan.full_evaluation || std::isfinite(loss)) &&
                             (!plan.minibatch_step || std::isfinite(step_loss));
    const bool finite_state =
        model.comm().allreduce_max(all_finite(space, state) ? 0.0 : 1.0) == 0.0;
    if (!finite_loss || !finite_state)
      stop_non_finite(space, model, state, schedule, at, previous_time, finite_state,
                      plan.full_evaluation, b, last_snapshot, observers, output);
    if (at.done == 0) summary.initial_loss = loss;
    const double check_seconds = clock.lap();

    if (plan.full_evaluation) plan = with_loss(schedule, at, plan, loss);
    (b.minibatches || plan.last ? summary.observe_seconds : summary.step_seconds) += full_seconds;
    if (!plan.last) summary.step_seconds += check_seconds;

    if (plan.full_evaluation) {
      const FlowPoint point{at.step, at.time,       plan.dt, state, b.velocity,
                            loss,    *b.evaluation, model,   space};
      for (Observer* o : observers) o->on_step(point);
      for (std::size_t k = 0; k < observers.size(); ++k) {
        if (!plan.observes(k)) continue;
        const ProfilingRegion region(observer_regions[k]);
        observers[k]->observe(point, output);
      }
      // A stop asked for by an observer (a Python callback's False) or a signal that arrived
      // while observers observed this point: the point becomes the last, and the observers off
      // their cadence here observe it as a last point.
      if (plan.observers != 0 && !plan.last && settings.stop_requested &&
          settings.stop_requested()) {
        const StepPlan ended = with_stop(schedule, at, plan);
        FlowPoint last = point;
        last.dt = ended.dt;
        for (std::size_t k = 0; k < observers.size(); ++k) {
          if (!ended.observes(k) || plan.observes(k)) continue;
          const ProfilingRegion region(observer_regions[k]);
          observers[k]->observe(last, output);
        }
        plan = ended;
      }
    }
    if (plan.counts_as_observation) ++summary.observations;
    summary.observe_seconds += clock.lap();
    {
      const ProfilingRegion region("mfsim::output");
      if (plan.snapshot) {
        output.append_particles(space, at.step, at.time, state);
        last_snapshot = at.step;
        ++summary.snapshots;
      }
      output.flush();
    }
    summary.write_seconds += clock.lap();
    if (progress)
      progress->update(at.done, at.step, at.time, plan.full_evaluation ? loss : step_loss,
                       plan.last);
    if (plan.last) {
      summary.step = at.step;
      summary.steps_run = at.done;
      summary.time = at.time;
      summary.loss = loss;
      summary.reason = plan.reason;
      break;
    }
    deep_copy(space, b.previous, state);
    previous_time = at.time;
    {
      const ProfilingRegion region("mfsim::integrate");
      if (b.drift)
        add_regulariser_drift(space, regularisation, groups, state, b.step_velocity, b.k1);
      b.integrator.finish_step(space, state, b.k1, real(plan.dt), field);
      // Euler–Maruyama: the Brownian increment of the step, at the temperature of its start.
      if (regularisation.noisy())
        add_langevin_noise(space, regularisation, groups, state, at.step, at.time, plan.dt);
    }
    summary.step_seconds += clock.lap();
    ++at.step;
    at.time = time_after_step(schedule, at.step, plan.dt);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace mfsim
