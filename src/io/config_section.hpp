#pragma once
// Typed, validated access to one [section] of a TOML config. Every read records the resolved
// value; finish() rejects keys nobody read. Errors name the key: "model.width: ...".
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "mfsim/core/error.hpp"
#include "printable.hpp"

namespace mfsim::config_detail {

// A value quoted in an error message, cut at a readable length (a 10 MB string stays one short
// line), its control characters made visible.
inline std::string quoted(const std::string& value) {
  constexpr std::size_t keep = 64;
  if (value.size() <= keep) return "\"" + printable(value) + "\"";
  return "\"" + printable(value.substr(0, keep)) + "...\" (" + std::to_string(value.size()) +
         " characters)";
}

class Section {
 public:
  Section(const toml::table& root, const std::string& name, toml::table& resolved)
      : name_(name), resolved_(resolved) {
    if (const toml::node* node = root.get(name)) {
      table_ = node->as_table();
      if (!table_) throw InputError(name + ": must be a table ([" + name + "])");
    }
    resolved_.insert_or_assign(name, toml::table{});
    out_ = resolved_.get(name)->as_table();
  }

  bool has(const std::string& key) const { return table_ && table_->get(key); }

  std::string text(const std::string& key, const std::string& fallback) {
    const toml::node* node = find(key);
    std::string value = fallback;
    if (node) {
      if (!node->is_string()) error(key, "must be a string");
      value = node->as_string()->get();
    }
    out_->insert_or_assign(key, value);
    return value;
  }

  std::string choice(const std::string& key, const std::string& fallback,
                     const std::vector<std::string>& allowed) {
    const std::string value = text(key, fallback);
    for (const auto& a : allowed)
      if (a == value) return value;
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    error(key, "must be one of " + list + " (got " + quoted(value) + ")");
  }

  bool boolean(const std::string& key, bool fallback) {
    const toml::node* node = find(key);
    bool value = fallback;
    if (node) {
      if (!node->is_boolean()) error(key, "must be true or false");
      value = node->as_boolean()->get();
    }
    out_->insert_or_assign(key, value);
    return value;
  }

  std::int64_t integer(const std::string& key, std::int64_t fallback, std::int64_t min,
                       std::int64_t max = std::numeric_limits<std::int64_t>::max()) {
    const toml::node* node = find(key);
    std::int64_t value = fallback;
    if (node) {
      if (!node->is_integer()) error(key, "must be an integer");
      value = node->as_integer()->get();
    }
    if (value < min || value > max)
      error(key, "must be " + range_text(double(min), double(max), true) + " (got " +
                     std::to_string(value) + ")");
    out_->insert_or_assign(key, value);
    return value;
  }

  // A finite number in [min, max] (or (min, max] when `min_open`).
  double number(const std::string& key, double fallback, double min, double max = HUGE_VAL,
                bool min_open = false) {
    const toml::node* node = find(key);
    double value = fallback;
    if (node) {
      if (node->is_integer())
        value = double(node->as_integer()->get());
      else if (node->is_floating_point())
        value = node->as_floating_point()->get();
      else
        error(key, "must be a number");
    }
    if (!std::isfinite(value)) error(key, "must be a finite number");
    if (value < min || value > max || (min_open && value == min))
      error(key,
            "must be " + range_text(min, max, !min_open) + " (got " + number_text(value) + ")");
    out_->insert_or_assign(key, value);
    return value;
  }

  // An array of 1 to max_count finite numbers.
  std::vector<double> numbers(const std::string& key, std::size_t max_count) {
    const toml::node* node = find(key);
    std::vector<double> values;
    const toml::array* array = node ? node->as_array() : nullptr;
    if (!array) error(key, "must be an array of numbers");
    for (const auto& item : *array) {
      if (item.is_integer())
        values.push_back(double(item.as_integer()->get()));
      else if (item.is_floating_point())
        values.push_back(item.as_floating_point()->get());
      else
        error(key, "must be an array of numbers");
      if (!std::isfinite(values.back())) error(key, "must hold finite numbers");
    }
    if (values.empty() || values.size() > max_count)
      error(key, "must hold 1 to " + std::to_string(max_count) + " numbers (got " +
                     std::to_string(values.size()) + ")");
    toml::array out;
    for (double v : values) out.push_back(v);
    out_->insert_or_assign(key, out);
    return values;
  }

  std::vector<std::string> strings(const std::string& key, const std::vector<std::string>& fallback,
                                   const std::vector<std::string>& allowed) {
    const toml::node* node = find(key);
    std::vector<std::string> values = fallback;
    if (node) {
      const toml::array* array = node->as_array();
      if (!array) error(key, "must be an array of strings");
      values.clear();
      for (const auto& item : *array) {
        if (!item.is_string()) error(key, "must be an array of strings");
        values.push_back(item.as_string()->get());
      }
    }
    toml::array out;
    for (const auto& v : values) {
      bool ok = false;
      for (const auto& a : allowed) ok = ok || a == v;
      if (!ok) error(key, "unknown entry " + quoted(v));
      out.push_back(v);
    }
    out_->insert_or_assign(key, out);
    return values;
  }

  // Every key of the section must have been read.
  void finish() const {
    if (!table_) return;
    for (const auto& [key, node] : *table_) {
      (void)node;
      if (!read_.count(std::string(key.str())))
        throw InputError(name_ + "." + std::string(key.str()) + ": unknown key");
    }
  }

  [[noreturn]] void error(const std::string& key, const std::string& problem) const {
    throw InputError(name_ + "." + key + ": " + problem);
  }

 private:
  const toml::node* find(const std::string& key) {
    read_.insert(key);
    return table_ ? table_->get(key) : nullptr;
  }

  static std::string number_text(double v) { return fmt::format("{}", v); }

  static std::string range_text(double min, double max, bool closed_min) {
    if (max < 9e18)
      return fmt::format("in {}{}, {}]", closed_min ? "[" : "(", number_text(min),
                         number_text(max));
    return fmt::format("{} {}", closed_min ? ">=" : ">", number_text(min));
  }

  std::string name_;
  toml::table& resolved_;
  const toml::table* table_ = nullptr;
  toml::table* out_ = nullptr;
  std::set<std::string> read_;
};

}  // namespace mfsim::config_detail
