#pragma once
// The error agreement of a process group: an error that some ranks saw ends every rank the same
// way (same type, same message, same exit code).
#include <exception>

#include "mfsim/core/communicator.hpp"

namespace mfsim {

// Collective: every rank calls it at the same point with the error it caught since the last such
// point (or none). If any rank failed, every rank throws the error of the lowest failing rank,
// same type (InputError, NonFiniteError, else std::runtime_error) and same message, so that all
// ranks print the same line and exit with the same code; otherwise it returns.
void raise_if_any_failed(const Communicator& comm, std::exception_ptr error);

// What raise_if_any_failed throws with several ranks: the error type the failing rank saw, marked
// as held by every rank (which can then meet once more at a barrier before exiting).
class AgreedError {
 public:
  virtual ~AgreedError() = default;
};
template <class Error>
class Agreed : public Error, public AgreedError {
 public:
  using Error::Error;
};

// Whether `e` is held by every rank: it came from raise_if_any_failed, or there is one rank.
bool every_rank_holds(const std::exception& e, const Communicator& comm);

// Runs `work`, then raise_if_any_failed with what it threw: a stage that may fail on some ranks
// only (a file one rank cannot read) but must end every rank the same way. `work` must not call
// collectives itself, or a rank that throws early would leave the others waiting in them.
template <class Work>
void on_every_rank(const Communicator& comm, Work&& work) {
  std::exception_ptr error;
  try {
    work();
  } catch (...) {
    error = std::current_exception();
  }
  raise_if_any_failed(comm, error);
}

}  // namespace mfsim
