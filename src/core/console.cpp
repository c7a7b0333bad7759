#include "mfsim/core/console.hpp"

#include <unistd.h>

#include <iostream>
#include <string>

#include "mfsim/core/communicator.hpp"

namespace mfsim {
namespace {

void write_at_once(std::ostream& stream, std::string_view text, bool end_line) {
  std::string message(text);
  if (end_line) message += '\n';
  stream.write(message.data(), std::streamsize(message.size()));
  stream.flush();
}

}  // namespace

Console::Console(std::ostream& results, std::ostream& notes, bool notes_on_terminal)
    : results_(&results), notes_(&notes), notes_on_terminal_(notes_on_terminal) {}

Console Console::standard() {
  return Console(std::cout, std::cerr, isatty(STDERR_FILENO) != 0);
}

Console Console::on_root(const Communicator& comm) const {
  Console root = *this;
  root.silent_ = silent_ || !comm.is_root();
  return root;
}

void Console::result(std::string_view lines) const {
  if (!silent_) write_at_once(*results_, lines, true);
}

void Console::result_text(std::string_view text) const {
  if (!silent_) write_at_once(*results_, text, false);
}

void Console::note(std::string_view line) const {
  if (!silent_) write_at_once(*notes_, line, true);
}

void Console::rewrite_note(std::string_view line, bool last) const {
  if (silent_) return;
  write_at_once(*notes_, "\r\033[K" + std::string(line), last);
}

}  // namespace mfsim
