#pragma once
// The run loop: at each point, carry out its StepPlan (step_plan.hpp): evaluate v at the current
// state, check, observe, snapshot, commit the output, step (adding the regularisers' drift, and
// the Langevin noise after the step); until the step budget, the end time, the loss tolerance or a
// stop request ends the run.
#include <memory>
#include <string>
#include <vector>

#include "mfsim/flow/integrator.hpp"
#include "mfsim/flow/minibatch.hpp"
#include "mfsim/flow/observer.hpp"
#include "mfsim/flow/regularisation.hpp"
#include "mfsim/flow/step_plan.hpp"

namespace mfsim {

struct RunSettings {
  IntegratorKind integrator = IntegratorKind::euler;
  double dt = 0.01;
  index_t steps = 1000;  // steps taken by this run (a restart continues the step count)
  double t_end = 0;      // stop when the flow time reaches t_end (0: no time limit)
  double loss_tol = 0;   // stop when the training loss is at or below loss_tol
  index_t observe_every = 10;
  index_t snapshot_every = 100;
  index_t first_step = 0;  // step number and time of the initial state (restart)
  double start_time = 0;
  // Weight decay, path-norm penalty and Langevin noise (none by default: the plain gradient flow).
  Regularisation regularisation;
  // Stochastic gradients (none by default): each step's velocity on a minibatch. The observers
  // and the loss (hence loss_tol) see full-batch evaluations, made only at the steps that observe
  // or snapshot.
  MinibatchSettings minibatch;
  // Polled at the start of every point: true makes that point the last one (observed, snapshotted
  // and committed), with StopReason::signal. None: the run ends by its own rules only.
  bool (*stop_requested)() = nullptr;
  // Fence Kokkos at every phase boundary, so that RunSummary's split charges each kernel to the
  // phase that launched it (five fences a step). Off, the loop fences only where a result is read
  // on the host, and the split is the host's time in each phase.
  bool time_phases = false;
  // The Kokkos execution-space instance of the steps (a partition of the host's threads, a CUDA
  // stream): every kernel, copy and reduction of the evaluations, the finiteness check, the copy
  // of the previous state, the integrator, the regularisers and the minibatches runs on it, and
  // the loop waits for it only where a result is read on the host (a loss, the finiteness check).
  // The observers get it in FlowPoint::space and the output in append_particles: every observer
  // (the entropy observers and the Gibbs gap too) and the snapshots run on it, so an
  // observation needs no wait of its own. What a run finds was set up on the default instance
  // (models, data, observers' constructors): the caller waits for it (ExecSpace().fence()) before a
  // run on another one.
  ExecSpace space = ExecSpace();
};

// Where the run loop writes particles and observables (the H5MD writer).
class RunOutput : public ObservableSink {
 public:
  // Copies `s`, which kernels on the execution-space instance `space` wrote, on that instance
  // (without it, the default instance), and has read it when it returns (the loop may overwrite
  // it next).
  virtual void append_particles(const ExecSpace& space, index_t step, double time,
                                const ParticleState& s) = 0;
  void append_particles(index_t step, double time, const ParticleState& s) {
    append_particles(ExecSpace(), step, time, s);
  }
  // Makes everything appended so far durable, as a whole (called once at every point of the run,
  // after its rows and frame).
  virtual void flush() {}
};

// Reports progress (stderr); the default does nothing.
class ProgressReporter {
 public:
  virtual ~ProgressReporter() = default;
  virtual void update(index_t /*steps_done*/, index_t /*step*/, double /*time*/, double /*loss*/,
                      bool /*final*/) {}
};

struct RunSummary {
  index_t step = 0;       // step number of the final state
  index_t steps_run = 0;  // steps taken by this run
  double time = 0;
  double loss = 0;
  double initial_loss = 0;
  StopReason reason = StopReason::steps;
  index_t observations = 0, snapshots = 0;
  double seconds = 0;  // the whole of run_flow
  // Its parts (each read after fences when RunSettings::time_phases, so that queued
  // kernels count where they were launched): the steps alone (evaluating the velocity that a step
  // uses, the finiteness check, integrating), the observers (their evaluations included: the final
  // state's, and the full batch's under minibatches) and the snapshots with the flushes. The rest
  // (setup, progress lines) is in `seconds` only, so their sum is at most `seconds`.
  double step_seconds = 0, observe_seconds = 0, write_seconds = 0;
  double seconds_per_step() const { return steps_run > 0 ? step_seconds / double(steps_run) : 0; }
};

// A run of the flow, in two parts: the constructor allocates every buffer the loop needs (the
// velocity, the previous state, the integrator's stages, the minibatch evaluations), so that a
// program can allocate them before it creates its output; run() then runs the loop, once.
class FlowRun {
 public:
  FlowRun(const Model& model, ParticleState& state, const RunSettings& settings);
  ~FlowRun();
  FlowRun(const FlowRun&) = delete;
  FlowRun& operator=(const FlowRun&) = delete;

  // The initial state as the run's first point will see it (collective): whether its particles
  // are finite, and its full-batch training loss. Evaluated into the run's own buffers, which the
  // first point fills again: it changes nothing that the run computes. A program asks before it
  // creates its output, to refuse an initial state that is not finite as bad input.
  struct Start {
    bool finite_particles = true;
    double loss = 0;
  };
  Start start() const;

  // Runs the flow from the state, which ends holding the final state. Throws NonFiniteError,
  // after writing the last finite state as a snapshot, if the loss or a particle stops being
  // finite.
  RunSummary run(const std::vector<Observer*>& observers, RunOutput& output,
                 ProgressReporter* progress = nullptr);

 private:
  struct Buffers;  // src/flow/run.cpp
  const Model& model_;
  ParticleState& state_;
  RunSettings settings_;
  std::unique_ptr<Buffers> buffers_;
};

// FlowRun(model, state, settings).run(observers, output, progress).
RunSummary run_flow(const Model& model, ParticleState& state, const RunSettings& settings,
                    const std::vector<Observer*>& observers, RunOutput& output,
                    ProgressReporter* progress = nullptr);

}  // namespace mfsim
