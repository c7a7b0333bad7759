#pragma once
// The model a config asks for.
#include <memory>

#include "mfsim/io/config.hpp"
#include "mfsim/models/model.hpp"

namespace mfsim {

std::unique_ptr<Model> make_model(const ModelConfig& config, const Dataset& data,
                                  const Communicator& comm = self_communicator());
// The same where the data decides the loss: data.kind = "population" gives the population flow
// of model A (models/population.hpp).
std::unique_ptr<Model> make_model(const ModelConfig& config, DataKind data_kind,
                                  const Dataset& data,
                                  const Communicator& comm = self_communicator());

}  // namespace mfsim
