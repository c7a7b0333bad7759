#pragma once
// The MPI process group (MPI_COMM_WORLD), compiled only with -DMFSIM_ENABLE_MPI=ON. Device views
// are reduced through host copies (the Debian Kokkos is host-only; a GPU build would pass device
// pointers to a CUDA-aware MPI instead).
#include <memory>

#include "mfsim/core/communicator.hpp"

namespace mfsim {

// Initialises MPI for the lifetime of the object and finalises it at the end. Cheap without a
// launcher (OpenMPI's singleton start) but still a few hundred milliseconds, hence only in main.
class MpiSession {
 public:
  MpiSession(int& argc, char**& argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  const Communicator& world() const { return *world_; }

 private:
  std::unique_ptr<Communicator> world_;
};

}  // namespace mfsim
