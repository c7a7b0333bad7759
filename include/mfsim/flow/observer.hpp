#pragma once
// Observers compute diagnostics of the flow and append them, as named time series, to a sink (the
// H5MD writer, or an in-memory sink in tests).
#include <string>
#include <vector>

#include "mfsim/models/model.hpp"

namespace mfsim {

class ObservableSink {
 public:
  virtual ~ObservableSink() = default;
  // Appends one row to /observables/<name>: `value` holds prod(shape) numbers (empty shape:
  // scalar).
  virtual void append_observable(const std::string& name, index_t step, double time,
                                 const std::vector<double>& value,
                                 const std::vector<std::size_t>& shape = {}) = 0;
};

// The flow at the start of a step: `velocity` = v(state), and `evaluation` what the model
// computed with it (residuals, and whatever its diagnostics read), all of `state`.
struct FlowPoint {
  index_t step;
  double time;
  double dt;  // the step about to be taken (0 at the last point)
  const ParticleState& state;
  const ParticleState& velocity;
  double loss;
  const Evaluation& evaluation;
  const Model& model;
  // The run's execution-space instance (RunSettings::space), for an observer's kernels: the
  // point's views were written on it, and the loop does not wait for it before an observation,
  // so an observer reads them on this instance (or waits for it first).
  ExecSpace space = ExecSpace();
};

class Observer {
 public:
  virtual ~Observer() = default;
  // At every full-batch evaluation (every step, unless the steps take minibatches: then at the
  // steps that observe or snapshot), before observe: running integrals (the W₂ path length).
  // Must be cheap.
  virtual void on_step(const FlowPoint& /*p*/) {}
  // At the observation cadence, and always at the first and last point of a run.
  virtual void observe(const FlowPoint& p, ObservableSink& sink) = 0;
  // The observation cadence in steps; 0: the run's (output.observe_every).
  virtual index_t every() const { return 0; }
  // Names the observer's Kokkos Tools region, "mfsim::observe::<name>" (docs/performance.md).
  virtual std::string name() const { return "observer"; }
};

// "<family>_<label>_<quantity>", or "<family>_<quantity>" for an empty label: kl_transport,
// kl_head_transport, gram_blocks_lambda_min (GroupSpec::label, Model::gram_parts).
std::string observable_name(const std::string& family, const std::string& label,
                            const std::string& quantity);

}  // namespace mfsim
