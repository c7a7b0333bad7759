#pragma once
// What this machine can hold: sizes that cannot be allocated are refused up front with a line
// naming what asked for them, instead of a hang or a multi-line allocator failure later.
#include <cstdint>
#include <string>

namespace mfsim {

// Physical memory of the machine in bytes (0 if unknown: then nothing is refused).
std::uint64_t physical_memory_bytes();

// "1.5 GiB", "12 MiB", "3.2e+06 TiB": a byte count for a message.
std::string format_bytes(long double bytes);

}  // namespace mfsim
