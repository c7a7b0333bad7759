#include "mfsim/diagnostics/eigenvalues.hpp"

#include <Spectra/MatOp/DenseSymMatProd.h>
#include <Spectra/SymEigsSolver.h>
#include <Eigen/Dense>
#include <algorithm>

#include "mfsim/core/error.hpp"

namespace mfsim {
namespace {

using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

Eigen::Map<const RowMajor> as_eigen(const HostMatrix& a) {
  return {a.data(), Eigen::Index(a.extent(0)), Eigen::Index(a.extent(1))};
}

// One extreme eigenvalue by restarted Lanczos; false if it did not converge.
bool lanczos(const Eigen::MatrixXd& a, Spectra::SortRule rule, double& value) {
  const Eigen::Index n = a.rows();
  Spectra::DenseSymMatProd<double> op(a);
  Spectra::SymEigsSolver<Spectra::DenseSymMatProd<double>> eigs(op, 1,
                                                                std::min<Eigen::Index>(n, 40));
  eigs.init();
  eigs.compute(rule, 2000, 1e-10, rule);
  if (eigs.info() != Spectra::CompInfo::Successful) return false;
  value = eigs.eigenvalues()(0);
  return true;
}

}  // namespace

EigenSolverKind parse_eigen_solver(const std::string& name) {
  if (name == "dense") return EigenSolverKind::dense;
  if (name == "lanczos") return EigenSolverKind::lanczos;
  throw InputError("unknown eigensolver \"" + name + "\" (expected dense or lanczos)");
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
    if (lanczos(dense, Spectra::SortRule::SmallestAlge, out.min) &&
        lanczos(dense, Spectra::SortRule::LargestAlge, out.max))
      return out;
  }
  const std::vector<double> all = eigenvalues(a);
  return {all.front(), all.back()};
}

}  // namespace mfsim
