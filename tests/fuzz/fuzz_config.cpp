// libFuzzer target: the TOML config parser with --set overrides (io/config.cpp).
// Input: the config text, then overrides, separated by NUL bytes. Every malformed input must end
// in an InputError (exit code 2 in the binary); any other exception, a crash or a sanitizer
// report is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "mfsim/core/error.hpp"
#include "mfsim/io/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= input.size(); ++i)
    if (i == input.size() || input[i] == '\0') {
      parts.push_back(input.substr(start, i - start));
      start = i + 1;
    }
  const std::string text = parts.front();
  const std::vector<std::string> overrides(parts.begin() + 1, parts.end());
  try {
    mfsim::parse_config(text, overrides, "fuzz.toml");
  } catch (const mfsim::InputError&) {
    // The expected way to refuse.
  } catch (...) {
    std::abort();  // a failure that the binary would report as exit 1 ("anything else")
  }
  return 0;
}
