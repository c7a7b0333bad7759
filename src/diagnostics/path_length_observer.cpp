#include "mfsim/diagnostics/path_length_observer.hpp"

#include <cmath>

#include "mfsim/diagnostics/particle_speed.hpp"

namespace mfsim {

void PathLengthObserver::on_step(const FlowPoint& p) {
  const double speed =
      std::sqrt(mean_square_speed(p.space, p.velocity, p.model.groups(), p.model.comm()));
  if (started_) length_ += 0.5 * (p.time - last_time_) * (last_speed_ + speed);
  started_ = true;
  last_time_ = p.time;
  last_speed_ = speed;
}

void PathLengthObserver::observe(const FlowPoint& p, ObservableSink& sink) {
  sink.append_observable("w2_path_length", p.step, p.time, {length_});
}

}  // namespace mfsim
