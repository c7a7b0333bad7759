#include "mfsim/app/resolved_config.hpp"

#include <sstream>

#include <toml++/toml.h>

namespace mfsim {

std::string resolved_as_run(const Config& c, const Dataset& data, bool data_given) {
  if (c.data.kind != DataKind::file && !data_given) return c.resolved;
  toml::table root = toml::parse(c.resolved);
  toml::table* section = root["data"].as_table();
  if (!section) return c.resolved;
  section->insert_or_assign("dim", std::int64_t(data.dim()));
  section->insert_or_assign("n_train", std::int64_t(data.n_train()));
  section->insert_or_assign("n_test", std::int64_t(data.x_test.extent(0)));
  std::ostringstream os;
  os << root;
  return os.str();
}

}  // namespace mfsim
