// mfsim: the command-line front end.
//   mfsim run CONFIG.toml [--set section.key=value]... [--output PATH] [--force] [--quiet]
//   mfsim info FILE.h5
//   mfsim data import INPUT -o DATA.h5 [--labels Y.npy] [--label-column NAME] [--test-fraction F]
//                     [--standardize] [--normalize-to-sphere] [--binary-labels]
//                     [--classes A,B,...] [--one-hot] [--real-labels] [--seed S]
//                     [--force]
// Kokkos' own options (--kokkos-num-threads=N, ...) are accepted anywhere; --kokkos-help lists
// them.
#include <dlfcn.h>
#include <hdf5.h>
#include <sched.h>
#include <unistd.h>
#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mfsim/core/collective_error.hpp"
#include "mfsim/core/console.hpp"
#include "mfsim/core/error.hpp"
#include "mfsim/core/stop_signal.hpp"
#ifdef MFSIM_ENABLE_MPI
#include "mfsim/core/mpi_communicator.hpp"
#endif
#include "mfsim/app/output_path.hpp"
#include "mfsim/app/simulation.hpp"
#include "mfsim/io/data_import.hpp"
#include "mfsim/io/info.hpp"

namespace {

// The process's start (before main: static initialisation), where the summary's wall time begins.
const std::chrono::steady_clock::time_point process_start = std::chrono::steady_clock::now();

// Whether `text` is well-formed UTF-8 (what a TOML document, hence the stored config, holds):
// no stray continuation byte, no overlong form, no surrogate, nothing above U+10FFFF.
bool is_utf8(const std::string& text) {
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    const std::size_t length = c < 0x80                ? 1
                               : c >= 0xc2 && c < 0xe0 ? 2
                               : c >= 0xe0 && c < 0xf0 ? 3
                               : c >= 0xf0 && c < 0xf5 ? 4
                                                       : 0;
    if (length == 0 || i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xc0) != 0x80) return false;
    const unsigned char next = length > 1 ? static_cast<unsigned char>(text[i + 1]) : 0;
    if ((c == 0xe0 && next < 0xa0) || (c == 0xed && next >= 0xa0) || (c == 0xf0 && next < 0x90) ||
        (c == 0xf4 && next >= 0x90))
      return false;
    i += length;
  }
  return true;
}

// A TOML basic string holding `text`, so that --output never changes type ("1", "true", ...):
// quotes and backslashes escaped, and control characters as \uXXXX (TOML allows none raw).
std::string toml_string(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04X", unsigned(static_cast<unsigned char>(c)));
      out += escaped;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// An error is one line on stderr: line breaks become spaces, another control character a
// visible \xNN (a NUL byte from an input file must not cut the message), and a message made long
// by a value it quotes (a 10 MB string) is cut in the middle, so that the line stays readable.
std::string one_line(const std::string& text) {
  std::string message;
  for (const char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r')
      message += ' ';
    else if ((u < 0x20 && c != '\t') || u == 0x7f)
      message += "\\x" + std::string(1, "0123456789abcdef"[u / 16]) + "0123456789abcdef"[u % 16];
    else
      message += c;
  }
  constexpr std::size_t keep = 480;
  if (message.size() > 2 * keep)
    message = message.substr(0, keep) + " [... " + std::to_string(message.size() - 2 * keep) +
              " characters cut ...] " + message.substr(message.size() - keep);
  return message;
}

// The first word that is neither an option nor a subcommand, if it comes before any subcommand:
// CLI11 would only say that a subcommand is required.
std::string unknown_subcommand(const std::vector<char*>& args) {
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string word = args[i];
    if (word == "run" || word == "info" || word == "data") return "";
    if (!word.empty() && word[0] != '-') return word;
  }
  return "";
}

// Rank 0 prints the error and every rank returns the same code, after a barrier, so that no rank
// exits (and makes mpirun kill the job) while rank 0 is still closing the output file. An error
// that only this rank holds (a bug: every failure that can differ between ranks goes through an
// agreement point, raise_if_any_failed) ends the job with MPI_Abort instead.
int fail(int code, const std::string& message, const mfsim::Console& console,
         const mfsim::Communicator& comm, bool every_rank) {
  if (comm.size() > 1 && !every_rank) {
    console.note("mfsim: error (rank " + std::to_string(comm.rank()) +
                 " only): " + one_line(message));
    comm.abort(code);
  }
  console.on_root(comm).note("mfsim: error: " + one_line(message));
  comm.barrier();
  return code;
}

// The command line split between Kokkos (its --kokkos-... options) and mfsim (the rest), so that
// `mfsim --help` is mfsim's usage; Kokkos' is behind --kokkos-help.
struct SplitArguments {
  std::vector<char*> kokkos, mfsim;
  bool kokkos_help = false;
};

SplitArguments split_arguments(int argc, char** argv) {
  SplitArguments split;
  split.kokkos.push_back(argv[0]);
  split.mfsim.push_back(argv[0]);
  for (int i = 1; i < argc; ++i) {
    const bool kokkos = std::strncmp(argv[i], "--kokkos-", 9) == 0;
    (kokkos ? split.kokkos : split.mfsim).push_back(argv[i]);
    split.kokkos_help = split.kokkos_help || std::strcmp(argv[i], "--kokkos-help") == 0;
  }
  return split;
}

// Kokkos' settings from the command line (--kokkos-...) and the environment (KOKKOS_...), for a
// message when Kokkos refuses them.
std::string kokkos_settings(const SplitArguments& args) {
  std::string out;
  for (std::size_t i = 1; i < args.kokkos.size(); ++i)
    out += (out.empty() ? "" : " ") + std::string(args.kokkos[i]);
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "KOKKOS_", 7) == 0) out += (out.empty() ? "" : " ") + std::string(*e);
  return out.empty() ? "none" : out;
}

// A profiling tool that Kokkos was asked to load (KOKKOS_PROFILE_LIBRARY, --kokkos-tools-library;
// ';'-separated) and cannot: Kokkos would print two lines and run without it. Loaded here first
// (Kokkos' own dlopen then finds it loaded); the problem as one line, or empty.
std::string unloadable_kokkos_tool(const SplitArguments& args) {
  std::string libraries;
  if (const char* env = std::getenv("KOKKOS_PROFILE_LIBRARY")) libraries = env;
  for (std::size_t i = 1; i < args.kokkos.size(); ++i)
    if (std::strncmp(args.kokkos[i], "--kokkos-tools-library=", 23) == 0)
      libraries = args.kokkos[i] + 23;
  std::size_t start = 0;
  while (start < libraries.size()) {
    const std::size_t end = std::min(libraries.find(';', start), libraries.size());
    const std::string library = libraries.substr(start, end - start);
    start = end + 1;
    if (library.empty()) continue;
    if (::dlopen(library.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr)
      return "the Kokkos tool library " + library + " cannot be loaded: " + ::dlerror();
  }
  return "";
}

// Kokkos' whole-number settings (threads, devices, NUMA) holding anything else: Kokkos 3 throws,
// Kokkos 4 aborts on some and warns about and ignores others, so they are refused here, alike on
// every version, before Kokkos reads them. The problem as one line, or empty.
std::string non_integer_kokkos_setting(const SplitArguments& args) {
  static const std::set<std::string> whole_numbers = {
      "num_threads", "threads", "device_id", "num_devices", "numa", "skip_device", "device"};
  const auto is_integer = [](std::string v) {
    if (!v.empty() && v[0] == '-') v.erase(0, 1);
    return !v.empty() &&
           std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
  };
  const auto lower = [](std::string name, char dash) {
    for (char& ch : name) ch = ch == dash ? '_' : char(std::tolower((unsigned char)ch));
    return name;
  };
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string setting = *e;
    const std::size_t equals = setting.find('=');
    if (setting.rfind("KOKKOS_", 0) != 0 || equals == std::string::npos) continue;
    const std::string value = setting.substr(equals + 1);
    if (whole_numbers.count(lower(setting.substr(7, equals - 7), '_')) && !is_integer(value))
      return "Kokkos cannot start: the environment's " + setting.substr(0, equals) + "='" + value +
             "' is not a whole number";
  }
  for (std::size_t i = 1; i < args.kokkos.size(); ++i) {
    const std::string option = args.kokkos[i];
    const std::size_t equals = option.find('=');
    if (equals == std::string::npos) continue;
    const std::string value = option.substr(equals + 1);
    if (whole_numbers.count(lower(option.substr(9, equals - 9), '-')) && !is_integer(value))
      return "Kokkos cannot start: option " + option.substr(0, equals) + "='" + value +
             "' is not a whole number";
  }
  return "";
}

// Backend defaults that Kokkos reads from the environment at initialisation; a value the user set
// is kept.
void set_backend_defaults() {
  // The OpenMP runtime read its environment at load time: without OMP_PROC_BIND its threads are
  // not bound, which is what "false" says. Stating it only stops Kokkos' OpenMP backend from
  // printing a four-line warning on every run.
  setenv("OMP_PROC_BIND", "false", 0);
#if defined(KOKKOS_ENABLE_THREADS)
  // Kokkos' Threads backend starts one thread unless told otherwise (OpenMP takes every core the
  // process may use). The same default here: every core of this process's affinity mask, unless
  // KOKKOS_NUM_THREADS is set; --kokkos-num-threads on the command line overrides either.
  if (cpu_set_t cores; sched_getaffinity(0, sizeof cores, &cores) == 0)
    setenv("KOKKOS_NUM_THREADS", std::to_string(CPU_COUNT(&cores)).c_str(), 0);
#endif
}

// The command line: its subcommands and what their options fill.
struct CommandLine {
  CLI::App app{"mfsim: particle simulation of mean-field neural network dynamics"};
  CLI::App* run = nullptr;
  CLI::App* info = nullptr;
  CLI::App* import = nullptr;
  CLI::Option* output_option = nullptr;
  std::string config_path, output, info_path;
  std::vector<std::string> overrides;
  mfsim::RunOptions options;
  bool quiet = false, print_config = false;
  mfsim::ImportOptions import_options;
  std::string import_output;
  bool import_force = false;

  CommandLine() {
    app.set_version_flag("--version", std::string("mfsim ") + MFSIM_VERSION);
    app.require_subcommand(1);
    app.footer("Kokkos options (--kokkos-num-threads=N, ...): see --kokkos-help.");
    add_run();
    info = app.add_subcommand("info", "Describe an mfsim H5MD file");
    info->add_option("file", info_path, "H5MD file")->required();
    add_import();
  }

  void add_run() {
    run = app.add_subcommand("run", "Run a mean-field gradient flow from a TOML config");
    run->add_option("config", config_path, "TOML config file")->required();
    run->add_option("--set", overrides, "Override a config key: section.key=value (repeatable)");
    output_option =
        run->add_option("-o,--output", output, "Output H5MD file (overrides output.path)");
    run->add_flag("-f,--force", options.overwrite, "Overwrite an existing output file");
    run->add_flag("-q,--quiet", quiet, "No progress line");
    run->add_flag("--time-phases", options.time_phases,
                  "Fence at each phase of a step and split the time in the summary (steps, "
                  "observing, writing)");
    run->add_flag(
        "--print-config", print_config,
        "Print the resolved config (what /parameters/config_resolved will hold) and exit");
  }

  void add_import() {
    CLI::App* data = app.add_subcommand("data", "Data files for data.kind = \"file\"");
    data->require_subcommand(1);
    import = data->add_subcommand(
        "import", "A CSV table (or .npy features and labels) to an mfsim data file");
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
    import->add_option("--classes", import_options.classes,
                       "Keep the rows of these label values only, as classes 0, 1, ... in this "
                       "order (A,B,...)");
    import->add_flag("--one-hot", import_options.one_hot,
                     "Each class label as a row of targets (1 at the class) for the square loss "
                     "with model.outputs = classes");
    import->add_flag("--real-labels", import_options.real_labels,
                     "Whole-number labels are real-valued targets, not classes");
    import->add_option("--seed", import_options.seed, "Seed of the train/test shuffle (default 1)");
    import->add_flag("-f,--force", import_force, "Overwrite an existing output file");
  }
};

void run_command(CommandLine& cli, const mfsim::Console& console, const mfsim::Communicator& comm) {
  if (cli.output_option->count() > 0 && cli.output.empty())
    throw mfsim::InputError("--output: must not be empty");
  if (!is_utf8(cli.output))
    throw mfsim::InputError(
        "--output: the path is not valid UTF-8 (the config stored in the output, TOML, holds "
        "UTF-8 text only); rename it");
  if (!cli.output.empty()) cli.overrides.push_back("output.path=" + toml_string(cli.output));
  mfsim::Config config;
  mfsim::on_every_rank(comm, [&] { config = mfsim::load_config(cli.config_path, cli.overrides); });
  if (cli.print_config) {
    console.on_root(comm).result_text(config.resolved);
    return;
  }
  cli.options.progress = !cli.quiet;
  cli.options.started = process_start;
  // One process: a stop signal ends the run at its next point, committed complete. With several,
  // mpirun's own handling stays (the ranks would not agree on the step).
  if (comm.size() == 1) mfsim::install_stop_signal_handlers();
  mfsim::run_simulation(config, cli.options, console, comm);
}

void import_command(const CommandLine& cli, const mfsim::Console& console,
                    const mfsim::Communicator& comm) {
  mfsim::on_every_rank(comm, [&] {
    if (!comm.is_root()) return;
    const mfsim::ImportOptions& o = cli.import_options;
    mfsim::check_import_output_path(cli.import_output, {o.input, o.labels}, cli.import_force);
    const mfsim::ImportedData imported = mfsim::import_data(o);
    mfsim::write_data_file(cli.import_output, cli.import_force, imported);
    const auto& p = imported.parameters;
    console.result("mfsim: wrote " + cli.import_output + " (" + p.at("import_n_train") +
                   " training and " + p.at("import_n_test") + " test rows of " +
                   p.at("import_features") + " features; labels " + p.at("import_labels") + ")");
  });
}

// Runs the parsed command; every error becomes one line and its exit code.
int execute(CommandLine& cli, const mfsim::Console& console, const mfsim::Communicator& comm) {
  try {
    if (*cli.run) {
      run_command(cli, console, comm);
    } else if (*cli.import) {
      import_command(cli, console, comm);
    } else {
      mfsim::on_every_rank(comm, [&] {
        if (comm.is_root()) mfsim::print_info(cli.info_path, console);
      });
    }
  } catch (const mfsim::InputError& e) {
    return fail(mfsim::exit_input, e.what(), console, comm, mfsim::every_rank_holds(e, comm));
  } catch (const mfsim::NonFiniteError& e) {
    return fail(mfsim::exit_non_finite, e.what(), console, comm, mfsim::every_rank_holds(e, comm));
  } catch (const mfsim::StopRequested& e) {
    return fail(e.exit_code(), e.what(), console, comm, mfsim::every_rank_holds(e, comm));
  } catch (const std::exception& e) {
    return fail(mfsim::exit_run_failed, e.what(), console, comm, mfsim::every_rank_holds(e, comm));
  }
  return mfsim::exit_ok;
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
  set_backend_defaults();
  SplitArguments args = split_arguments(argc, argv);
  const mfsim::Console console = mfsim::Console::standard();
  if (const std::string tool = unloadable_kokkos_tool(args); !tool.empty())
    return fail(mfsim::exit_input, tool, console, comm, true);
  if (const std::string bad = non_integer_kokkos_setting(args); !bad.empty())
    return fail(mfsim::exit_input, bad, console, comm, true);
  int kokkos_argc = int(args.kokkos.size());
  std::optional<Kokkos::ScopeGuard> kokkos;
  try {
    kokkos.emplace(kokkos_argc, args.kokkos.data());
  } catch (const std::exception& e) {  // a value Kokkos cannot convert, an unknown device, ...
    return fail(mfsim::exit_input,
                "Kokkos cannot start: " + std::string(e.what()) +
                    " (settings: " + kokkos_settings(args) + ")",
                console, comm, true);
  }
  if (args.kokkos_help) return mfsim::exit_ok;  // Kokkos printed its options

  CommandLine cli;
  const std::string unknown = unknown_subcommand(args.mfsim);
  if (!unknown.empty())
    return fail(
        mfsim::exit_input,
        "unknown command \"" + unknown + "\" (expected run, info or data; see mfsim --help)",
        console, comm, true);
  try {
    cli.app.parse(int(args.mfsim.size()), args.mfsim.data());
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return cli.app.exit(e);
    return fail(mfsim::exit_input, e.what(), console, comm, true);  // the same arguments everywhere
  }
  return execute(cli, console, comm);
}
