#include "checked_read.hpp"

#include <cmath>

#include <fmt/format.h>

#include "mfsim/core/error.hpp"
#include "mfsim/core/memory.hpp"

namespace mfsim::checked {
namespace {

std::string shape_text(const std::vector<hsize_t>& dims) {
  std::string out;
  for (hsize_t d : dims) out += "[" + std::to_string(d) + "]";
  return dims.empty() ? "a scalar" : out;
}

std::string class_name(H5T_class_t c) {
  switch (c) {
    case H5T_STRING:
      return "strings";
    case H5T_COMPOUND:
      return "a compound type";
    case H5T_ENUM:
      return "an enum";
    case H5T_ARRAY:
      return "arrays";
    case H5T_VLEN:
      return "variable-length sequences";
    case H5T_REFERENCE:
      return "references";
    default:
      return "a non-numeric type";
  }
}

}  // namespace

std::string where(const std::string& file, const std::string& object) {
  return file + ": " + object;
}

h5::Handle open_numeric(hid_t file_id, const std::string& file, const std::string& object,
                        std::size_t rank, std::vector<hsize_t>& dims) {
  if (!h5::exists(file_id, object)) throw InputError(where(file, object) + ": missing");
  const hid_t id = H5Dopen2(file_id, object.c_str(), H5P_DEFAULT);
  if (id < 0) throw InputError(where(file, object) + ": not a dataset");
  h5::Handle ds(id);
  h5::Handle type(H5Dget_type(ds.get()));
  const H5T_class_t c = type ? H5Tget_class(type.get()) : H5T_NO_CLASS;
  if (c != H5T_INTEGER && c != H5T_FLOAT)
    throw InputError(where(file, object) + ": holds " + class_name(c) + ", expected numbers");
  dims = h5::dataset_dims(ds.get());
  if (rank == any_rank ? dims.empty() : dims.size() != rank)
    throw InputError(fmt::format("{}: has shape {}, expected {}", where(file, object),
                                 shape_text(dims),
                                 rank == any_rank ? std::string("one row per frame")
                                 : rank == 1      ? std::string("1 dimension")
                                                  : std::to_string(rank) + " dimensions"));
  return ds;
}

void require_allocatable(long double values, const std::string& file, const std::string& object) {
  const long double bytes = values * 8;
  const std::uint64_t memory = physical_memory_bytes();
  if (memory > 0 && bytes > (long double)memory)
    throw InputError(fmt::format(
        "{}: declares {} values ({}), more than this machine's memory ({})", where(file, object),
        double(values), format_bytes(bytes), format_bytes((long double)memory)));
}

void require_finite(const std::vector<double>& values, const std::string& file,
                    const std::string& object) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw InputError(fmt::format("{}: holds a non-finite value ({} at flat index {})",
                                   where(file, object), values[i], i));
}

}  // namespace mfsim::checked
