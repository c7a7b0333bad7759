#pragma once
// The population flow's observables (MATH.md §2.8, models/population.hpp):
//   population_risk                R = ½E[(f − f*)²], exact (the loss of the flow)
//   population_teacher_term        −β ∫V dρ
//   population_interaction         ½β² ∬U dρ dρ   (R = teacher_energy + these two; the constant
//                                  ½E[f*²] is /parameters/population_teacher_energy)
//   teacher_max_cosine [k]         max_k cos(w_k, w*_j) for each teacher neuron j
#include "mfsim/flow/observer.hpp"

namespace mfsim {

class PopulationObserver final : public Observer {
 public:
  explicit PopulationObserver(index_t every) : every_(every) {}
  void observe(const FlowPoint& p, ObservableSink& sink) override;
  std::string name() const override { return "population"; }
  index_t every() const override { return every_; }

 private:
  index_t every_;
};

// max over this rank's and every other rank's particles of cos(w_k, w*_j), one per teacher row
// (rows (w*_j, a*_j) of Dataset::teacher); 0 for a zero w_k.
std::vector<double> teacher_max_cosines(const ExecSpace& space, ConstMatrix theta,
                                        ConstMatrix teacher, const Communicator& comm);

}  // namespace mfsim
