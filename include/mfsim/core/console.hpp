#pragma once
// The one channel for what mfsim prints. Two streams: results (stdout: a summary, "wrote ...",
// `mfsim info`, the resolved config) and notes (stderr: progress, notes, warnings, errors), so
// that a script can take the results and leave the rest. Each message is whole lines, handed to
// its stream in one write and flushed: no line waits in a buffer or is cut by another process
// writing to the same stream (the ranks of an MPI job share stderr).
#include <iosfwd>
#include <string_view>

namespace mfsim {

class Communicator;

class Console {
 public:
  // `notes_on_terminal`: the notes stream is a terminal, where a progress line may rewrite itself.
  Console(std::ostream& results, std::ostream& notes, bool notes_on_terminal = false);

  // stdout and stderr (a terminal if stderr is one).
  static Console standard();

  // This console on the group's rank 0, a silent one on the other ranks: for the messages that
  // one rank prints for the whole job.
  Console on_root(const Communicator& comm) const;

  // One or more lines of results; a line break is added at the end.
  void result(std::string_view lines) const;
  // Text as it is, without an added line break (a document that ends as it ends: a config).
  void result_text(std::string_view text) const;
  // A line of progress, a note, a warning or an error; a line break is added at the end.
  void note(std::string_view line) const;

  bool notes_on_terminal() const { return notes_on_terminal_; }
  // On a terminal: `line` over the current line (carriage return, erase to its end), left open
  // for the next one unless `last`.
  void rewrite_note(std::string_view line, bool last) const;

  // The streams, for code that prints to a stream of its own (the observers' notes); null where
  // this console is silent.
  std::ostream* results_stream() const { return silent_ ? nullptr : results_; }
  std::ostream* notes_stream() const { return silent_ ? nullptr : notes_; }

 private:
  std::ostream* results_;
  std::ostream* notes_;
  bool notes_on_terminal_;
  bool silent_ = false;
};

}  // namespace mfsim
