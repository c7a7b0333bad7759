#include "mfsim/app/model_factory.hpp"

#include "mfsim/models/population.hpp"
#include "mfsim/models/resnet.hpp"
#include "mfsim/models/two_layer.hpp"

namespace mfsim {

std::unique_ptr<Model> make_model(const ModelConfig& config, const Dataset& data,
                                  const Communicator& comm) {
  if (config.kind() == ModelKind::resnet)
    return std::make_unique<ResNetModel>(config.resnet(), data, comm);
  return std::make_unique<TwoLayerModel>(config.two_layer(), data, comm);
}

std::unique_ptr<Model> make_model(const ModelConfig& config, DataKind data_kind,
                                  const Dataset& data, const Communicator& comm) {
  if (data_kind == DataKind::population)
    return std::make_unique<PopulationModel>(config.two_layer(), data, comm);
  return make_model(config, data, comm);
}

}  // namespace mfsim
