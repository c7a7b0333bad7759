// The kernels' instruction set as reported in the progress header and /parameters.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "mfsim/core/kernel_isa.hpp"

namespace {

// MFSIM_EXPECTED_KERNEL_ISA (set by the isa_clones.* tests, which run this binary under qemu's
// emulation of an older CPU) names the clone the loader must have picked there.
TEST(KernelIsa, NamesTheInstructionSetTheKernelsRunIn) {
  const std::string isa = mfsim::kernel_instruction_set();
  EXPECT_FALSE(isa.empty());
  if (const char* expected = std::getenv("MFSIM_EXPECTED_KERNEL_ISA"))
    EXPECT_EQ(isa.rfind(expected, 0), 0u) << isa << " does not start with " << expected;
}

}  // namespace
