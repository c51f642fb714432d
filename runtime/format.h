// Human-readable figures for the CLI.
#pragma once

#include <cstdint>
#include <string>

namespace bulkhead::runtime {

// 850 ns, 12.3 µs, 4.56 ms, 1.20 s
std::string FormatNs(uint64_t ns);
// 1.5 KiB, 3.2 MiB
std::string FormatBytes(uint64_t bytes);

}  // namespace bulkhead::runtime
