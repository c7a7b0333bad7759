#include "mfsim/app/model_factory.hpp"

#include "mfsim/models/resnet.hpp"
#include "mfsim/models/two_layer.hpp"

namespace mfsim {

std::unique_ptr<Model> make_model(const ModelConfig& config, const Dataset& data,
                                  const Communicator& comm) {
  if (config.kind() == ModelKind::resnet)
    return std::make_unique<ResNetModel>(config.resnet(), data, comm);
  return std::make_unique<TwoLayerModel>(config.two_layer(), data, comm);
}

}  // namespace mfsim
