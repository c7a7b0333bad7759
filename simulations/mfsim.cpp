// mfsim: the command-line front end.
//   mfsim run CONFIG.toml [--set section.key=value]... [--output PATH] [--force] [--quiet]
//   mfsim info FILE.h5
//   mfsim data import INPUT -o DATA.h5 [--labels Y.npy] [--label-column NAME] [--test-fraction F]
//                     [--standardize] [--normalize-to-sphere] [--binary-labels] [--seed S]
//                     [--force]
#include <hdf5.h>
#include <sched.h>
#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <cstdlib>
#include <iostream>
#include <string>

#include "mfsim/core/collective_error.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/core/stop_signal.hpp"
#ifdef MFSIM_ENABLE_MPI
#include "mfsim/core/mpi_communicator.hpp"
#endif
#include "mfsim/app/simulation.hpp"
#include "mfsim/io/data_import.hpp"
#include "mfsim/io/info.hpp"

namespace {

// A TOML basic string holding `text`, so that --output never changes type ("1", "true", ...).
std::string toml_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// An error is one line on stderr: line breaks become spaces, and a message made long by a value
// it quotes (a 10 MB string) is cut in the middle, so that the line stays readable.
std::string one_line(std::string message) {
  for (char& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  constexpr std::size_t keep = 480;
  if (message.size() > 2 * keep)
    message = message.substr(0, keep) + " [... " + std::to_string(message.size() - 2 * keep) +
              " characters cut ...] " + message.substr(message.size() - keep);
  return message;
}

// The first word that is neither an option nor a subcommand, if it comes before any subcommand:
// CLI11 would only say that a subcommand is required.
std::string unknown_subcommand(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "run" || word == "info" || word == "data") return "";
    if (!word.empty() && word[0] != '-') return word;
  }
  return "";
}

// Every rank holds the same error (raise_if_any_failed): rank 0 prints it and all return the same
// code, after a barrier, so that no rank exits (and makes mpirun kill the job) while rank 0 is
// still closing the output file. An error that only this rank saw (a bug: every failure that can
// differ between ranks goes through an agreement point) ends the job with MPI_Abort instead.
int fail(int code, const std::string& message, const mfsim::Communicator& comm,
         bool every_rank = mfsim::error_is_collective()) {
  if (comm.size() > 1 && !every_rank) {
    std::cerr << "mfsim: error (rank " << comm.rank() << " only): " << one_line(message) << "\n";
    comm.abort(code);
  }
  if (comm.is_root()) std::cerr << "mfsim: error: " << one_line(message) << "\n";
  comm.barrier();
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // Every file is closed by its owner before main returns. HDF5's own exit handler would close
  // again a file whose close failed (a write error: the disk or a size limit), and crashes doing
  // so; the data already on disk is what a failed close leaves either way.
  H5dont_atexit();
#ifdef MFSIM_ENABLE_MPI
  // Before Kokkos, and finalised after it: MPI_Init may edit argv.
  const mfsim::MpiSession mpi(argc, argv);
  const mfsim::Communicator& comm = mpi.world();
#else
  const mfsim::Communicator& comm = mfsim::self_communicator();
#endif
  // The OpenMP runtime read its environment at load time: without OMP_PROC_BIND its threads are
  // not bound, which is what "false" says. Stating it only stops Kokkos' OpenMP backend from
  // printing a four-line warning on every run; a value the user set is kept.
  setenv("OMP_PROC_BIND", "false", 0);
#if defined(KOKKOS_ENABLE_THREADS)
  // Kokkos' Threads backend starts one thread unless told otherwise (OpenMP takes every core the
  // process may use). The same default here: every core of this process's affinity mask, unless
  // KOKKOS_NUM_THREADS is set; --kokkos-num-threads on the command line overrides either.
  if (cpu_set_t cores; sched_getaffinity(0, sizeof cores, &cores) == 0)
    setenv("KOKKOS_NUM_THREADS", std::to_string(CPU_COUNT(&cores)).c_str(), 0);
#endif
  Kokkos::ScopeGuard kokkos(argc, argv);

  CLI::App app{"mfsim: particle simulation of mean-field neural network dynamics"};
  app.set_version_flag("--version", std::string("mfsim ") + MFSIM_VERSION);
  app.require_subcommand(1);

  std::string config_path, output, info_path;
  std::vector<std::string> overrides;
  mfsim::RunOptions options;
  bool quiet = false;
  CLI::App* run = app.add_subcommand("run", "Run a mean-field gradient flow from a TOML config");
  run->add_option("config", config_path, "TOML config file")->required();
  run->add_option("--set", overrides, "Override a config key: section.key=value (repeatable)");
  CLI::Option* output_option =
      run->add_option("-o,--output", output, "Output H5MD file (overrides output.path)");
  run->add_flag("-f,--force", options.overwrite, "Overwrite an existing output file");
  run->add_flag("-q,--quiet", quiet, "No progress line");
  bool print_config = false;
  run->add_flag("--print-config", print_config,
                "Print the resolved config (what /parameters/config_resolved will hold) and exit");
  CLI::App* info = app.add_subcommand("info", "Describe an mfsim H5MD file");
  info->add_option("file", info_path, "H5MD file")->required();
  CLI::App* data = app.add_subcommand("data", "Data files for data.kind = \"file\"");
  data->require_subcommand(1);
  CLI::App* import = data->add_subcommand(
      "import", "A CSV table (or .npy features and labels) to an mfsim data file");
  mfsim::ImportOptions import_options;
  std::string import_output;
  bool import_force = false;
  import->add_option("input", import_options.input, "CSV file, or features X.npy")->required();
  import->add_option("-o,--output", import_output, "The data file to write (.h5)")->required();
  import->add_option("--labels", import_options.labels, "Labels y.npy (with an .npy input)");
  import->add_option("--label-column", import_options.label_column,
                     "CSV: the label column's name or 0-based index (default: the last)");
  import->add_option("--test-fraction", import_options.test_fraction,
                     "Fraction of rows held out as the test set (seeded shuffle; default 0)");
  import->add_flag("--standardize", import_options.standardize,
                   "Each feature to mean 0, std 1 (training statistics)");
  import->add_flag("--normalize-to-sphere", import_options.normalize_to_sphere,
                   "Each input row to unit norm (after --standardize)");
  import->add_flag("--binary-labels", import_options.binary_labels,
                   "Map exactly two label values to -1 and +1 (for model.loss = \"logistic\")");
  import->add_option("--seed", import_options.seed, "Seed of the train/test shuffle (default 1)");
  import->add_flag("-f,--force", import_force, "Overwrite an existing output file");

  const std::string unknown = unknown_subcommand(argc, argv);
  if (!unknown.empty())
    return fail(
        mfsim::exit_input,
        "unknown command \"" + unknown + "\" (expected run, info or data; see mfsim --help)", comm,
        true);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    return fail(mfsim::exit_input, e.what(), comm, true);  // the same arguments everywhere
  }

  try {
    if (*run) {
      if (output_option->count() > 0 && output.empty())
        throw mfsim::InputError("--output: must not be empty");
      if (!output.empty()) overrides.push_back("output.path=" + toml_string(output));
      mfsim::Config config;
      mfsim::on_every_rank(comm, [&] { config = mfsim::load_config(config_path, overrides); });
      if (print_config) {
        if (comm.is_root()) std::cout << config.resolved;
        return mfsim::exit_ok;
      }
      options.progress = !quiet;
      // One process: a stop signal ends the run after the frame being written (H5mdWriter).
      // With several, mpirun's own handling stays (the ranks would not agree on the step).
      if (comm.size() == 1) mfsim::install_stop_signal_handlers();
      mfsim::run_simulation(config, options, std::cout, comm);
    } else if (*import) {
      mfsim::on_every_rank(comm, [&] {
        if (!comm.is_root()) return;
        const mfsim::ImportedData imported = mfsim::import_data(import_options);
        mfsim::write_data_file(import_output, import_force, imported);
        const auto& p = imported.parameters;
        std::cout << "mfsim: wrote " << import_output << " (" << p.at("import_n_train")
                  << " training and " << p.at("import_n_test") << " test rows of "
                  << p.at("import_features") << " features; labels " << p.at("import_labels")
                  << ")\n";
      });
    } else {
      mfsim::on_every_rank(comm, [&] {
        if (comm.is_root()) mfsim::print_info(info_path, std::cout);
      });
    }
  } catch (const mfsim::InputError& e) {
    return fail(mfsim::exit_input, e.what(), comm);
  } catch (const mfsim::NonFiniteError& e) {
    return fail(mfsim::exit_non_finite, e.what(), comm);
  } catch (const mfsim::StopRequested& e) {
    return fail(e.exit_code(), e.what(), comm);
  } catch (const std::exception& e) {
    return fail(mfsim::exit_internal, e.what(), comm);
  }
  return mfsim::exit_ok;
}
