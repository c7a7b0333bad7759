#pragma once
// Text from a user's input (a config value, a CSV cell, a column name) as an error message shows
// it. Private to the library (src/io).
#include <string>

namespace mfsim {

// `text` with every control byte (a NUL, a line break, an escape) written as \xNN, so that it can
// neither cut the message (what() ends at a NUL) nor break its line nor drive the terminal.
inline std::string printable(const std::string& text) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f)
      out += std::string("\\x") + digits[u / 16] + digits[u % 16];
    else
      out += c;
  }
  return out;
}

}  // namespace mfsim
