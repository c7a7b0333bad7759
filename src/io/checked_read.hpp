#pragma once
// Reads from a user's file with their shape, type and values checked first: a dataset of the
// wrong shape must never be read past its end, a string where numbers belong or a NaN in the
// particles must never reach the flow. Every failure is an InputError of one line naming the
// file, the object and what was expected (exit code 2).
#include <new>
#include <string>
#include <vector>

#include "hdf5.hpp"
#include "mfsim/core/error.hpp"

namespace mfsim::checked {

// The object's name in messages: "FILE: /OBJECT".
std::string where(const std::string& file, const std::string& object);

// Opens the dataset `object` (an absolute path in the file) and checks that it holds numbers
// (integers or floats) in `rank` dimensions (any_rank: one or more); returns its dims through
// `dims`.
constexpr std::size_t any_rank = std::size_t(-1);
h5::Handle open_numeric(hid_t file_id, const std::string& file, const std::string& object,
                        std::size_t rank, std::vector<hsize_t>& dims);

// Refuses a read of `values` doubles that this machine could not allocate (a dataset declaring
// an absurd size), before allocating anything.
void require_allocatable(long double values, const std::string& file, const std::string& object);

// Refuses a NaN or an Inf, naming the first one's position.
void require_finite(const std::vector<double>& values, const std::string& file,
                    const std::string& object);

// Runs `read` and turns an HDF5 or allocation failure into an InputError naming the object: the
// checks above leave only a damaged file to fail here.
template <class Read>
auto read(const std::string& file, const std::string& object, Read&& read_values) {
  try {
    return read_values();
  } catch (const std::bad_alloc&) {
    throw InputError(where(file, object) + ": too large to read into memory");
  } catch (const InputError&) {
    throw;
  } catch (const std::exception&) {
    throw InputError(where(file, object) + ": cannot be read (damaged file?)");
  }
}

}  // namespace mfsim::checked
