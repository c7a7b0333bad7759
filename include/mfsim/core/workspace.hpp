#pragma once
// Device scratch buffers reused from call to call, by name. A request allocates only when its
// named buffer is smaller than asked (the first time, or when a size grows), so a step or an
// observation that asks for the same sizes again allocates nothing (tests/test_allocations.cpp):
// on a GPU every allocation is a cudaMalloc and a synchronisation.
//
// A view obtained from a workspace is valid until the next request of the same name; its
// entries are not initialised (every user writes what it reads).
#include <cstddef>
#include <map>
#include <string>

#include "mfsim/core/types.hpp"

namespace mfsim {

class Workspace {
 public:
  // A LayoutRight view of `extents` on the buffer `name` (ViewType: a view of `real`).
  template <class ViewType, class... Extents>
  ViewType view(const std::string& name, Extents... extents) {
    static_assert(std::is_same_v<typename ViewType::non_const_value_type, real>,
                  "workspace buffers hold reals");
    const std::size_t count = (std::size_t(1) * ... * std::size_t(extents));
    Buffer& buffer = buffers_[name];
    if (buffer.extent(0) < count) {
      buffer = Buffer();  // release first: the old and the new buffer never coexist
      buffer = uninitialized<Buffer>("mfsim::Workspace::" + name, count);
    }
    return ViewType(buffer.data(), std::size_t(extents)...);
  }

 private:
  using Buffer = Kokkos::View<real*, MemSpace>;
  std::map<std::string, Buffer> buffers_;
};

}  // namespace mfsim
