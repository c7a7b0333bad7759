#include "mfsim/core/collective_error.hpp"

#include <stdexcept>
#include <string>

#include "mfsim/core/error.hpp"

namespace mfsim {

namespace {

enum class ErrorKind : int { none = 0, input, non_finite, other };

ErrorKind classify(std::exception_ptr error, std::string& message) {
  if (!error) return ErrorKind::none;
  try {
    std::rethrow_exception(error);
  } catch (const InputError& e) {
    message = e.what();
    return ErrorKind::input;
  } catch (const NonFiniteError& e) {
    message = e.what();
    return ErrorKind::non_finite;
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "unknown error";
  }
  return ErrorKind::other;
}
}  // namespace

bool every_rank_holds(const std::exception& e, const Communicator& comm) {
  return comm.size() == 1 || dynamic_cast<const AgreedError*>(&e) != nullptr;
}

void raise_if_any_failed(const Communicator& comm, std::exception_ptr error) {
  std::string message;
  ErrorKind kind = classify(error, message);
  if (comm.size() == 1) {
    if (error) std::rethrow_exception(error);
    return;
  }
  // The lowest failing rank speaks for all: max of (size − rank) over the failing ranks.
  const int size = comm.size();
  const double top = comm.allreduce_max(kind == ErrorKind::none ? 0.0 : double(size - comm.rank()));
  if (top == 0) return;
  const int speaker = size - int(top);
  double code = double(int(kind));
  comm.broadcast(&code, 1, speaker);
  comm.broadcast(message, speaker);
  // Rank 0 prints it: say where it came from when that was another rank.
  if (speaker > 0)
    message += " (on rank " + std::to_string(speaker) + " of " + std::to_string(size) + ")";
  switch (ErrorKind(int(code))) {
    case ErrorKind::input:
      throw Agreed<InputError>(message);
    case ErrorKind::non_finite:
      throw Agreed<NonFiniteError>(message);
    default:
      throw Agreed<std::runtime_error>(message);
  }
}

}  // namespace mfsim
