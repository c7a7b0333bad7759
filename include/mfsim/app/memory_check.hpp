#pragma once
// Sizes checked up front: a width or a sample count whose arrays could never be allocated is
// refused before anything is allocated (a View of 2^63 rows would hang or overflow), with one
// line naming the key and the memory the run would need.
#include "mfsim/data/dataset.hpp"
#include "mfsim/io/config.hpp"

namespace mfsim {

// Throws InputError when a lower bound of the memory the run needs exceeds this machine's physical
// memory, naming the key that sizes its largest array. Counted: the particles (state, velocity,
// previous step, integrator stages, minibatch velocity, drift), the synthetic samples and the
// teacher, a minibatch, the ResNet's layer states and sensitivities ((L + 1)·n·d per evaluation),
// the (n·c) × (n·c) Gram matrix with its copies and its eigensolver's, the Gibbs gap's sample
// points and model A's activation caches (the full batch's and a minibatch's n × m
// pre-activations, where flow.activation_cache_bytes has room). Sizes of a data file are known once
// it is read: without `data` such a run's particles alone are counted, and the check is run again
// with the data read (build_problem_on). Anything else that cannot be allocated is found when it
// is, still before the output is touched (run_simulation).
void check_memory(const Config& config, const Dataset* data = nullptr);

}  // namespace mfsim
