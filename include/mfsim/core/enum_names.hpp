#pragma once
// An enum's names written once: parsing, naming and the list of choices a config key accepts all
// come from one table of (value, name) pairs.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "mfsim/core/error.hpp"

namespace mfsim {

template <class Enum>
class EnumNames {
 public:
  // `what` names the kind of value in errors: unknown <what> "x" (expected a, b or c).
  EnumNames(std::string what, std::vector<std::pair<Enum, std::string>> table)
      : what_(std::move(what)), table_(std::move(table)) {
    for (const auto& entry : table_) names_.push_back(entry.second);
  }

  // Throws InputError for a name not in the table.
  Enum parse(const std::string& name) const {
    for (const auto& [value, text] : table_)
      if (text == name) return value;
    std::string expected;
    for (std::size_t i = 0; i < names_.size(); ++i)
      expected += (i == 0 ? "" : i + 1 == names_.size() ? " or " : ", ") + names_[i];
    throw InputError("unknown " + what_ + " \"" + name + "\" (expected " + expected + ")");
  }

  const std::string& name(Enum value) const {
    for (const auto& entry : table_)
      if (entry.first == value) return entry.second;
    throw std::logic_error("EnumNames: a " + what_ + " without a name");
  }

  const std::vector<std::string>& names() const { return names_; }

 private:
  std::string what_;
  std::vector<std::pair<Enum, std::string>> table_;
  std::vector<std::string> names_;
};

}  // namespace mfsim
