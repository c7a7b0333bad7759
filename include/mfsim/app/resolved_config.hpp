#pragma once
// The resolved config as the run used it. A data file decides the dimension and the sample
// counts whatever data.dim, data.n_train and data.n_test say (a restart's config need not repeat
// them): the resolved config stored in the output states the sizes actually used.
#include <string>

#include "mfsim/data/dataset.hpp"
#include "mfsim/io/config.hpp"

namespace mfsim {

// config.resolved, with data.dim, data.n_train and data.n_test set from `data` when
// data.kind = "file" or the data was given in memory (`data_given`); unchanged otherwise.
std::string resolved_as_run(const Config& config, const Dataset& data, bool data_given = false);

}  // namespace mfsim
