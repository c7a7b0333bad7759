#include "mfsim/diagnostics/eigenvalues.hpp"

#include <Spectra/MatOp/DenseSymMatProd.h>
#include <Spectra/MatOp/DenseSymShiftSolve.h>
#include <Spectra/SymEigsShiftSolver.h>
#include <Spectra/SymEigsSolver.h>
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "mfsim/core/enum_names.hpp"
#include "mfsim/core/error.hpp"

namespace mfsim {
namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::Map<const RowMajor> as_eigen(const HostMatrix& a) {
  return {a.data(), Eigen::Index(a.extent(0)), Eigen::Index(a.extent(1))};
}

// λ_max by restarted Lanczos on G; false if it did not converge.
bool lanczos_max(const Eigen::MatrixXd& a, double& value) {
  Spectra::DenseSymMatProd<double> op(a);
  Spectra::SymEigsSolver<Spectra::DenseSymMatProd<double>> eigs(
      op, 1, std::min<Eigen::Index>(a.rows(), 20));
  eigs.init();
  eigs.compute(Spectra::SortRule::LargestAlge, 1000, 1e-10, Spectra::SortRule::LargestAlge);
  if (eigs.info() != Spectra::CompInfo::Successful) return false;
  value = eigs.eigenvalues()(0);
  return true;
}

// λ_min by shift-invert Lanczos: the largest eigenvalue of (G − σI)⁻¹ for a shift σ just below the
// spectrum of a PSD Gram matrix. Plain Lanczos converges slowly at the bottom of a Gram spectrum,
// whose small eigenvalues cluster; after the inversion they are the well-separated top.
bool lanczos_min(const Eigen::MatrixXd& a, double scale, double& value) {
  Spectra::DenseSymShiftSolve<double> op(a);
  const double sigma = -1e-10 * (scale > 0 ? scale : 1.0);
  Spectra::SymEigsShiftSolver<Spectra::DenseSymShiftSolve<double>> eigs(
      op, 1, std::min<Eigen::Index>(a.rows(), 20), sigma);
  eigs.init();
  eigs.compute(Spectra::SortRule::LargestMagn, 1000, 1e-10, Spectra::SortRule::SmallestAlge);
  if (eigs.info() != Spectra::CompInfo::Successful) return false;
  value = eigs.eigenvalues()(0);
  return true;
}

}  // namespace

namespace {
const EnumNames<EigenSolverKind>& solver_table() {
  static const EnumNames<EigenSolverKind> names(
      "eigensolver", {{EigenSolverKind::dense, "dense"}, {EigenSolverKind::lanczos, "lanczos"}});
  return names;
}
}  // namespace

EigenSolverKind parse_eigen_solver(const std::string& name) {
  return solver_table().parse(name);
}

const std::vector<std::string>& eigen_solver_names() {
  return solver_table().names();
}

std::vector<double> eigenvalues(const HostMatrix& a) {
  const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(Eigen::MatrixXd(as_eigen(a)),
                                                           Eigen::EigenvaluesOnly);
  const auto& v = eig.eigenvalues();  // ascending
  return std::vector<double>(v.data(), v.data() + v.size());
}

ExtremeEigenvalues extreme_eigenvalues(const HostMatrix& a, EigenSolverKind solver) {
  const index_t n = index_t(a.extent(0));
  if (n == 0) return {};
  if (solver == EigenSolverKind::lanczos && n > 3) {
    const Eigen::MatrixXd dense = as_eigen(a);
    ExtremeEigenvalues out;
    if (lanczos_max(dense, out.max) && lanczos_min(dense, std::fabs(out.max), out.min)) return out;
  }
  const std::vector<double> all = eigenvalues(a);
  return {all.front(), all.back(), solver == EigenSolverKind::lanczos};
}

}  // namespace mfsim
