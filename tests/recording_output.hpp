#pragma once
// A RunOutput that keeps every observable row in memory, for tests of observers.
#include <map>
#include <string>
#include <vector>

#include "mfsim/flow/run.hpp"

namespace mfsim::test {

class RecordingOutput : public RunOutput {
 public:
  struct Series {
    std::vector<index_t> step;
    std::vector<double> time;
    std::vector<std::vector<double>> value;
    std::vector<std::size_t> shape;
    double last() const { return value.back().at(0); }
  };
  std::map<std::string, Series> series;

  void append_particles(const ExecSpace&, index_t, double, const ParticleState&) override {}
  void append_observable(const std::string& name, index_t step, double time,
                         const std::vector<double>& value,
                         const std::vector<std::size_t>& shape) override {
    Series& s = series[name];
    s.step.push_back(step);
    s.time.push_back(time);
    s.value.push_back(value);
    s.shape = shape;
  }
  bool has(const std::string& name) const { return series.count(name) > 0; }
  const Series& operator[](const std::string& name) const { return series.at(name); }
};

}  // namespace mfsim::test
