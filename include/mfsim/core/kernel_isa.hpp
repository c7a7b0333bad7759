#pragma once
// Which instruction set the pair kernels run in on this machine, for the progress header and
// /parameters: a build without -march=native picks one of its kernel clones at load time
// (src/detail/isa_clones.hpp), so the same binary runs at different speeds, with different last
// bits, on different CPUs.

namespace mfsim {

// e.g. "x86-64-v4 (AVX-512), chosen at load time", "-march=native (AVX-512)", "CUDA device".
const char* kernel_instruction_set();

}  // namespace mfsim
