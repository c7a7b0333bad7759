// Every kernel of a step and of an observation runs on the execution-space instance its caller
// passes (after ArborX's tstKokkosToolsExecutionSpaceInstances): while the models evaluate, while
// run_flow steps on an instance other than the default one, and while it observes and writes
// snapshots there, no kernel may run on another instance and no fence they make may be global.
// Kokkos Tools callbacks see every parallel_for, parallel_reduce, parallel_scan and fence with the
// device id of its instance. Where instances have ids of their own (CUDA, HIP, SYCL), each kernel's
// id must be the instance's. On the host backends of Kokkos 4 every instance has the same id; there
// a helper thread holds the default instance's lock (which every kernel of that instance takes)
// from each kernel's begin callback until it ends: a kernel on the default instance waits for it,
// and the helper reports that kernel when it gives up waiting. Where Kokkos makes no second
// instance (3.x: one Serial instance), the tests are skipped.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "detail/kokkos_tools_callbacks.hpp"
#include "helpers.hpp"
#include "mfsim/data/synthetic.hpp"
#include "mfsim/diagnostics/classification_observer.hpp"
#include "mfsim/diagnostics/free_energy_observer.hpp"
#include "mfsim/diagnostics/gibbs_gap.hpp"
#include "mfsim/diagnostics/gram_observer.hpp"
#include "mfsim/diagnostics/kl_knn_observer.hpp"
#include "mfsim/diagnostics/kl_transport_observer.hpp"
#include "mfsim/diagnostics/loss_observer.hpp"
#include "mfsim/diagnostics/path_length_observer.hpp"
#include "mfsim/diagnostics/path_norm_observer.hpp"
#include "mfsim/diagnostics/population_observer.hpp"
#include "mfsim/flow/run.hpp"
#include "mfsim/io/h5md_reader.hpp"
#include "mfsim/io/h5md_writer.hpp"
#include "mfsim/models/population.hpp"
#include "mfsim/models/resnet.hpp"
#include "mfsim/models/two_layer.hpp"
#include "recording_output.hpp"

namespace mfsim {
namespace {

// An instance of ExecSpace other than the default one where Kokkos makes one: a partition of the
// OpenMP pool (half of it when there are two threads or more), a new Serial instance, a new CUDA
// stream (Kokkos 4). Elsewhere the default instance itself, and the tests skip.
ExecSpace make_instance() {
#if KOKKOS_VERSION >= 40000
  if (ExecSpace().concurrency() >= 2)
    return Kokkos::Experimental::partition_space(ExecSpace(), 1, 1)[0];
  return Kokkos::Experimental::partition_space(ExecSpace(), 1)[0];
#else
  return ExecSpace();
#endif
}

std::uint32_t device_of(const ExecSpace& space) {
  return Kokkos::Tools::Experimental::device_id(space);
}

// The lock that every kernel of `space` takes while it runs, on the host backends of Kokkos 4;
// null elsewhere.
template <class Space>
std::mutex* instance_lock(const Space& space) {
#if KOKKOS_VERSION >= 40000 && defined(KOKKOS_ENABLE_OPENMP)
  if constexpr (std::is_same_v<Space, Kokkos::OpenMP>)
    return &space.impl_internal_space_instance()->m_instance_mutex;
#endif
#if KOKKOS_VERSION >= 40000 && defined(KOKKOS_ENABLE_SERIAL)
  if constexpr (std::is_same_v<Space, Kokkos::Serial>)
    return &space.impl_internal_space_instance()->m_instance_mutex;
#endif
  (void)space;
  return nullptr;
}

// How the test tells that a kernel ran on `instance`.
enum class Check { device_ids, default_lock, none };
Check check_for(const ExecSpace& instance) {
  if (device_of(instance) != device_of(ExecSpace())) return Check::device_ids;
  const std::mutex* default_lock = instance_lock(ExecSpace());
  if (default_lock && instance_lock(instance) != default_lock) return Check::default_lock;
  return Check::none;
}

// Global fences that are Kokkos' own, not the code's: around every callback of a tool that does
// not say it needs none (callbacks installed at run time never can), and before Kokkos 4 frees
// host memory. (A step frees nothing: its buffers only grow, in the first step,
// tests/test_allocations.cpp; the evaluations and run_flow's buffers are freed after it.)
bool is_kokkos_own(const std::string& fence) {
  return is_tool_fence(fence) || fence.find("HostSpace::impl_deallocate") != std::string::npos;
}

// Holds the default instance's lock on a helper thread between hold() (a kernel's begin
// callback) and release() (its end callback, or a fence's begin callback: a fence after the
// kernel must not wait for the helper). A kernel on the default instance cannot start meanwhile;
// after `patience` the helper lets it run, keeps its label in `waited` and holds no more (each
// such kernel would cost the patience again).
class DefaultInstanceHolder {
 public:
  explicit DefaultInstanceHolder(std::mutex& lock) : lock_(lock), helper_([this] { run(); }) {}
  ~DefaultInstanceHolder() {
    release();
    {
      const std::lock_guard<std::mutex> lk(m_);
      quit_ = true;
    }
    cv_.notify_all();
    helper_.join();
  }
  void hold(const std::string& label) {
    release();
    std::unique_lock<std::mutex> lk(m_);
    if (!waited_.empty()) return;
    current_ = label;
    want_hold_ = true;
    cv_.notify_all();
    cv_.wait(lk, [&] { return holding_; });
  }
  void release() {
    std::unique_lock<std::mutex> lk(m_);
    if (!want_hold_) return;
    want_hold_ = false;
    cv_.notify_all();
    cv_.wait(lk, [&] { return !holding_; });
  }
  std::vector<std::string> waited() {
    const std::lock_guard<std::mutex> lk(m_);
    return waited_;
  }

 private:
  void run() {
    std::unique_lock<std::mutex> lk(m_);
    for (;;) {
      cv_.wait(lk, [&] { return (want_hold_ && waited_.empty()) || quit_; });
      if (quit_) return;
      lock_.lock();  // free: the launching thread is in a callback, not in a kernel
      holding_ = true;
      cv_.notify_all();
      // A kernel on the instance under test takes microseconds here.
      const auto patience = std::chrono::seconds(2);
      if (!cv_.wait_for(lk, patience, [&] { return !want_hold_; })) waited_.push_back(current_);
      lock_.unlock();
      cv_.wait(lk, [&] { return !want_hold_; });
      holding_ = false;
      cv_.notify_all();
    }
  }

  std::mutex& lock_;
  std::mutex m_;
  std::condition_variable cv_;
  bool want_hold_ = false, holding_ = false, quit_ = false;
  std::string current_;
  std::vector<std::string> waited_;
  std::thread helper_;
};

struct Event {
  std::string label;
  std::uint32_t device;
  bool fence;
};
std::vector<Event> events;
std::unique_ptr<DefaultInstanceHolder> holder;

void begin_kernel(const char* label, std::uint32_t device, std::uint64_t*) {
  events.push_back({label, device, false});
  if (holder) holder->hold(label);
}
void end_kernel(std::uint64_t) {
  if (holder) holder->release();
}
void begin_fence(const char* label, std::uint32_t device, std::uint64_t*) {
  events.push_back({label, device, true});
  if (holder) holder->release();
}

// Installs the callbacks (and, with the default instance's lock, the holder) for its lifetime.
struct LaunchRecorder {
  explicit LaunchRecorder(std::mutex* default_lock) {
    events.clear();
    if (default_lock) holder = std::make_unique<DefaultInstanceHolder>(*default_lock);
    ToolsCallbacks c;
    c.begin_kernel = begin_kernel;
    c.end_kernel = end_kernel;
    c.begin_fence = begin_fence;
    callbacks.emplace(c);
  }
  ~LaunchRecorder() {
    callbacks.reset();
    holder.reset();
  }
  std::optional<InstalledToolsCallbacks> callbacks;
};

#define MFSIM_SKIP_WITHOUT_SECOND_INSTANCE(instance)                                       \
  if (check_for(instance) == Check::none)                                                  \
  GTEST_SKIP() << "this Kokkos (" << KOKKOS_VERSION << ", " << ExecSpace::name()           \
               << ") makes no execution-space instance other than the default one, or no " \
                  "way to tell its instances apart"

// Runs `work`, which launches on `instance`, and checks that it launched at least one kernel, no
// kernel on another instance, and no global fence of its own.
void expect_only_on(const ExecSpace& instance, const std::string& what,
                    const std::function<void()>& work) {
  const Check check = check_for(instance);
  std::vector<std::string> wrong;
  int count = 0;
  {
    const LaunchRecorder recorder(check == Check::default_lock ? instance_lock(ExecSpace())
                                                               : nullptr);
    work();
    for (const Event& e : events) {
      if (e.fence) {
        EXPECT_FALSE(is_global_fence(e.device) && !is_kokkos_own(e.label))
            << what << ": global fence " << e.label;
        continue;
      }
      ++count;
      if (check == Check::device_ids && e.device != device_of(instance)) wrong.push_back(e.label);
    }
    if (holder) wrong = holder->waited();
  }
  EXPECT_GT(count, 0) << what << ": no kernel recorded";
  std::ostringstream names;
  for (const std::string& label : wrong) names << "\n  " << label;
  EXPECT_TRUE(wrong.empty()) << what << ": "
                             << (check == Check::default_lock
                                     ? std::string("a kernel")
                                     : std::to_string(wrong.size()) + " of " +
                                           std::to_string(count) + " kernels")
                             << " not on the instance:" << names.str();
}

std::unique_ptr<Model> make_model(bool resnet, const Dataset& data) {
  if (resnet) {
    ResNetSpec r;
    r.depth = 3, r.width = 8, r.head_width = 16;
    return std::make_unique<ResNetModel>(r, data);
  }
  TwoLayerSpec t;
  t.width = 32;
  return std::make_unique<TwoLayerModel>(t, data);
}

// One evaluation of each model (log-densities tracked), over the training set and over a
// minibatch, and the test loss, on the instance: nothing runs elsewhere, and the velocities are
// the default instance's, bitwise.
TEST(ExecutionSpaceInstances, EvaluationsRunOnTheGivenInstance) {
  const ExecSpace instance = make_instance();
  MFSIM_SKIP_WITHOUT_SECOND_INSTANCE(instance);
  const Dataset data = make_synthetic_dataset(test::small_data(3, 40, 10));
  for (bool resnet : {false, true}) {
    SCOPED_TRACE(resnet ? "resnet" : "two_layer");
    const auto model = make_model(resnet, data);
    ParticleState s = allocate_state(model->groups(), true, "s");
    model->initialize(s, 3, false);
    set_initial_log_density(s, model->groups());
    ParticleState v = allocate_like(s, "v"), batch_v = allocate_like(s, "batch_v");
    MinibatchSettings settings;
    settings.size = 7;
    Workspace scratch;
    double loss = 0, batch_loss = 0, test_loss = 0;
    ExecSpace().fence();  // the setup above ran on the default instance
    expect_only_on(instance, "evaluate", [&] {
      const auto e = model->make_evaluation(instance, 0);
      loss = model->evaluate(instance, s, *e, v);
      const auto batch = model->make_evaluation(instance, settings.size);
      const MinibatchSampler sampler(instance, settings, data);
      sampler.draw(instance, 5, *batch);
      batch_loss = model->evaluate(instance, s, *batch, batch_v);
      test_loss = model->test_loss(instance, s, scratch);
      instance.fence();
    });
    // The same on the default instance. (The losses are reductions, whose order of summation
    // depends on the thread count, and a partition has fewer threads than the whole pool.)
    ParticleState v0 = allocate_like(s, "v0"), batch_v0 = allocate_like(s, "batch_v0");
    const auto e0 = model->make_evaluation();
    EXPECT_DOUBLE_EQ(model->evaluate(s, *e0, v0), loss);
    const auto batch0 = model->make_evaluation(settings.size);
    MinibatchSampler(settings, data).draw(5, *batch0);
    EXPECT_DOUBLE_EQ(model->evaluate(s, *batch0, batch_v0), batch_loss);
    EXPECT_DOUBLE_EQ(model->test_loss(s, scratch), test_loss);
    for (std::size_t g = 0; g < s.groups(); ++g) {
      EXPECT_EQ(test::host(v.theta[g]), test::host(v0.theta[g]));
      EXPECT_EQ(test::host(v.log_density[g]), test::host(v0.log_density[g]));
      EXPECT_EQ(test::host(batch_v.theta[g]), test::host(batch_v0.theta[g]));
    }
  }
}

// A few steps of run_flow on the instance with a multi-stage integrator, weight decay, the
// path-norm penalty, Langevin noise, minibatches (drawn from the training set, or online for the
// ResNet) and tracked log-densities: nothing runs elsewhere, and the trajectory is the default
// instance's, bitwise. (No observer here: the observers have tests of their own below.)
TEST(ExecutionSpaceInstances, RunFlowStepsOnTheGivenInstance) {
  const ExecSpace instance = make_instance();
  MFSIM_SKIP_WITHOUT_SECOND_INSTANCE(instance);
  const SyntheticDataSpec spec = test::small_data(3, 40, 10);
  const Dataset data = make_synthetic_dataset(spec);
  for (bool resnet : {false, true}) {
    SCOPED_TRACE(resnet ? "resnet" : "two_layer");
    const auto model = make_model(resnet, data);
    RunSettings r;
    r.integrator = resnet ? IntegratorKind::heun : IntegratorKind::rk4;
    r.dt = 0.05;
    r.steps = 6;
    r.observe_every = 2;
    r.snapshot_every = 3;
    r.regularisation.weight_decay = 0.01;
    r.regularisation.path_norm_penalty = resnet ? 0.0 : 0.01;
    r.regularisation.temperature = 1e-3;
    r.minibatch.size = 8;
    r.minibatch.online = resnet;
    r.minibatch.online_data = spec;
    std::vector<ParticleState> finals;
    std::vector<RunSummary> summaries(2);
    for (bool own : {true, false}) {
      ParticleState s = allocate_state(model->groups(), true, "s");
      model->initialize(s, 3, false);
      set_initial_log_density(s, model->groups());
      test::RecordingOutput output;
      ExecSpace().fence();  // the setup above ran on the default instance
      r.space = own ? instance : ExecSpace();
      RunSummary& summary = summaries[own ? 0 : 1];
      if (own)
        expect_only_on(instance, "run_flow", [&] { summary = run_flow(*model, s, r, {}, output); });
      else
        summary = run_flow(*model, s, r, {}, output);
      EXPECT_EQ(summary.steps_run, 6);
      finals.push_back(std::move(s));
    }
    EXPECT_DOUBLE_EQ(summaries[0].loss, summaries[1].loss);  // a reduction, as above
    for (std::size_t g = 0; g < finals[0].groups(); ++g) {
      EXPECT_EQ(test::host(finals[0].theta[g]), test::host(finals[1].theta[g]));
      EXPECT_EQ(test::host(finals[0].log_density[g]), test::host(finals[1].log_density[g]));
    }
  }
}

// The NTK reference of both models (the infinite-width Gram, by quadrature for tanh) on the
// instance: nothing runs elsewhere, and the kernel is the default instance's, bitwise.
TEST(ExecutionSpaceInstances, InfiniteWidthGramRunsOnTheGivenInstance) {
  const ExecSpace instance = make_instance();
  MFSIM_SKIP_WITHOUT_SECOND_INSTANCE(instance);
  const Dataset data = make_synthetic_dataset(test::small_data(3, 40, 10));
  for (bool resnet : {false, true}) {
    SCOPED_TRACE(resnet ? "resnet" : "two_layer");
    const auto model = make_model(resnet, data);
    const GramModel& gram = *gram_model(*model);
    const index_t n = data.n_train();
    Matrix on_instance("on_instance", n, n), on_default("on_default", n, n);
    ExecSpace().fence();  // the zero fill above ran on the default instance
    double scale = 0;
    expect_only_on(instance, "infinite_width_gram", [&] {
      scale = gram.infinite_width_gram(instance, on_instance);
      instance.fence();
    });
    EXPECT_EQ(gram.infinite_width_gram(on_default), scale);
    EXPECT_EQ(test::host(on_instance), test::host(on_default));
  }
}

using Rows = std::map<std::string, test::RecordingOutput::Series>;

// The observable rows of a run on the instance and of one on the default instance agree: the
// same names and steps, and values within the rounding of a reduction (losses, speeds, norms
// and kNN sums add in an order that depends on the thread count, and a partition has fewer
// threads than the whole pool).
void expect_same_rows(const Rows& on_instance, const Rows& on_default) {
  ASSERT_EQ(on_instance.size(), on_default.size());
  for (const auto& [name, series] : on_instance) {
    ASSERT_TRUE(on_default.count(name)) << name;
    const auto& other = on_default.at(name);
    ASSERT_EQ(series.step, other.step) << name;
    for (std::size_t t = 0; t < series.value.size(); ++t)
      for (std::size_t k = 0; k < series.value[t].size(); ++k) {
        const double a = series.value[t][k], b = other.value[t][k];
        EXPECT_NEAR(a, b, 1e-12 * std::max(1.0, std::fabs(b))) << name << " at row " << t;
      }
  }
}

// Keeps every observable row in memory and writes the snapshots to an H5MD file.
class SnapshotsToFile : public test::RecordingOutput {
 public:
  SnapshotsToFile(const std::string& path, const Model& model)
      : writer_(path, true, model.groups(), true) {}
  void append_particles(const ExecSpace& space, index_t step, double time,
                        const ParticleState& s) override {
    writer_.append_particles(space, step, time, s);
  }
  void flush() override { writer_.flush(); }

 private:
  H5mdWriter writer_;
};

// Observations and snapshots of run_flow on the instance: the loss (with the test loss), Gram
// (every part, the energy identity, the loss bound), path-norm (the model's own too), path-length
// and classification observers, and the H5MD snapshots with log-densities: nothing runs
// elsewhere, and every observable and frame is the default instance's (bitwise where no
// reduction decides it).
TEST(ExecutionSpaceInstances, ObserversAndSnapshotsRunOnTheGivenInstance) {
  const ExecSpace instance = make_instance();
  MFSIM_SKIP_WITHOUT_SECOND_INSTANCE(instance);
  const Dataset data = make_synthetic_dataset(test::small_data(3, 40, 10));
  const std::string dir = test::scratch_dir("instance_observers");
  for (bool resnet : {false, true}) {
    SCOPED_TRACE(resnet ? "resnet" : "two_layer");
    const auto model = make_model(resnet, data);
    RunSettings r;
    r.dt = 0.05;
    r.steps = 6;
    r.observe_every = 2;
    r.snapshot_every = 3;
    DiagnosticsSettings settings;
    settings.gram_every = 2;
    settings.gram_layers = resnet;  // λ_min of each layer's term of G₁
    std::vector<std::map<std::string, test::RecordingOutput::Series>> rows;
    std::vector<std::vector<double>> last_frames;
    for (bool own : {true, false}) {
      const std::string path = dir + (own ? "/instance.h5" : "/default.h5");
      LossObserver loss;
      GramObserver gram(*model, *gram_model(*model), settings);
      PathNormObserver path_norm(2);
      PathLengthObserver path_length(2);
      ClassificationObserver classification;
      const std::vector<Observer*> observers{&loss, &gram, &path_norm, &path_length,
                                             &classification};
      ParticleState s = allocate_state(model->groups(), true, "s");
      model->initialize(s, 3, false);
      set_initial_log_density(s, model->groups());
      {
        SnapshotsToFile output(path, *model);
        ExecSpace().fence();  // the setup above ran on the default instance
        r.space = own ? instance : ExecSpace();
        if (own)
          expect_only_on(instance, "run_flow", [&] { run_flow(*model, s, r, observers, output); });
        else
          run_flow(*model, s, r, observers, output);
        rows.push_back(output.series);
      }
      const H5mdReader reader(path);
      const std::string group = model->groups().back().name;
      EXPECT_EQ(reader.frames(group), 3);
      const ParticleFrame frame = reader.read_frame(group, -1);
      EXPECT_EQ(frame.step, 6);
      std::vector<double> values(frame.value.data(), frame.value.data() + frame.value.size());
      values.insert(values.end(), frame.log_density.data(),
                    frame.log_density.data() + frame.log_density.size());
      last_frames.push_back(values);
    }
    EXPECT_EQ(last_frames[0], last_frames[1]);
    for (const char* name :
         {"loss", "test_loss", "gram_lambda_min", "gram_lambda_max", "energy_identity_error",
          "loss_bound", "w2_path_length", "train_accuracy", "test_accuracy", "margin"})
      EXPECT_TRUE(rows[0].count(name)) << name;
    if (resnet) EXPECT_TRUE(rows[0].count("path_norm_weighted"));
    if (resnet)
      EXPECT_TRUE(std::any_of(rows[0].begin(), rows[0].end(), [](const auto& row) {
        return row.first.find("_lambda_min_layers") != std::string::npos;
      }));
    if (!resnet) EXPECT_TRUE(rows[0].count("normalised_margin"));
    expect_same_rows(rows[0], rows[1]);
  }
}

// run_flow of `model` from its initial particles (with log-densities where `log_density`) with
// fresh observers that `make_observers` makes from them, on the instance (checked by
// expect_only_on) and on the default instance: the rows of both.
std::vector<Rows> observe_on_both(
    const ExecSpace& instance, const Model& model, RunSettings r, bool log_density,
    const std::function<std::vector<std::unique_ptr<Observer>>(const ParticleState&)>&
        make_observers) {
  std::vector<Rows> rows;
  for (bool own : {true, false}) {
    ParticleState s = allocate_state(model.groups(), log_density, "s");
    model.initialize(s, 3, false);
    if (log_density) set_initial_log_density(s, model.groups());
    const std::vector<std::unique_ptr<Observer>> owned = make_observers(s);
    std::vector<Observer*> observers;
    for (const auto& o : owned) observers.push_back(o.get());
    test::RecordingOutput output;
    ExecSpace().fence();  // the setup above ran on the default instance
    r.space = own ? instance : ExecSpace();
    if (own)
      expect_only_on(instance, "run_flow", [&] { run_flow(model, s, r, observers, output); });
    else
      run_flow(model, s, r, observers, output);
    rows.push_back(output.series);
  }
  return rows;
}

// The entropy observers and the population observer on the instance: the kNN and transport KL
// and the free energy with its kNN entropy and the Gibbs gap (the potential at the particles and
// at the reference draws) of a two-layer model in D = 4 under Langevin noise, and the population
// risk and teacher cosines of the population flow: nothing runs elsewhere, and every row is the
// default instance's.
TEST(ExecutionSpaceInstances, EntropyAndPopulationObserversRunOnTheGivenInstance) {
  const ExecSpace instance = make_instance();
  MFSIM_SKIP_WITHOUT_SECOND_INSTANCE(instance);
  RunSettings r;
  r.dt = 0.05;
  r.steps = 4;
  r.observe_every = 2;
  {
    SCOPED_TRACE("free energy");
    const Dataset data = make_synthetic_dataset(test::small_data(2, 40, 10));
    TwoLayerSpec t;
    t.width = 64;  // θ = (a, w ∈ R², b): D = 4, within the Gibbs gap's reach
    const TwoLayerModel model(t, data);
    RunSettings noisy = r;
    noisy.regularisation.weight_decay = 0.5;
    noisy.regularisation.temperature = 1e-2;
    const std::vector<Rows> rows =
        observe_on_both(instance, model, noisy, true, [&](const auto& s) {
          std::vector<std::unique_ptr<Observer>> o;
          o.push_back(std::make_unique<KlKnnObserver>(model, s, KnnSettings{5}, 2));
          o.push_back(std::make_unique<KlTransportObserver>(model, 2, false));
          o.push_back(std::make_unique<FreeEnergyObserver>(
              model, noisy.regularisation, KnnSettings{5}, 2,
              std::make_unique<GibbsGap>(model, model, noisy.regularisation, 512, 3)));
          return o;
        });
    for (const char* name : {"kl_knn", "kl_transport", "free_energy", "entropy_term", "gibbs_gap"})
      EXPECT_TRUE(rows[0].count(name)) << name;
    expect_same_rows(rows[0], rows[1]);
  }
  {
    SCOPED_TRACE("population");
    SyntheticDataSpec g = test::small_data(3, 40, 0);
    g.inputs = InputDistribution::gaussian;
    g.teacher_width = 2;
    g.teacher_activation = {ActivationKind::erf, 1};
    Dataset data = make_synthetic_dataset(g);
    data.teacher = synthetic_teacher(g);
    data.teacher_scale = teacher_output_scale(g.teacher_width);
    data.teacher_activation = g.teacher_activation;
    TwoLayerSpec t;
    t.width = 16;
    t.bias = false;
    t.activation = {ActivationKind::erf, 1};
    const PopulationModel model(t, data);
    const std::vector<Rows> rows = observe_on_both(instance, model, r, false, [](const auto&) {
      std::vector<std::unique_ptr<Observer>> o;
      o.push_back(std::make_unique<LossObserver>());
      o.push_back(std::make_unique<PopulationObserver>(2));
      return o;
    });
    for (const char* name : {"population_risk", "teacher_max_cosine"})
      EXPECT_TRUE(rows[0].count(name)) << name;
    expect_same_rows(rows[0], rows[1]);
  }
}

}  // namespace
}  // namespace mfsim
