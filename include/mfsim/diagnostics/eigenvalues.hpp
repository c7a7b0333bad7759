#pragma once
// Eigenvalues of a dense symmetric matrix on the host (the Gram matrix and the NTK reference):
// Eigen's SelfAdjointEigenSolver (dense, every eigenvalue, O(n³)) or Spectra's Lanczos iteration
// (extreme eigenvalues only, a few dozen matrix–vector products: the choice for large n).
#include <string>
#include <vector>

#include "mfsim/core/types.hpp"

namespace mfsim {

enum class EigenSolverKind { dense, lanczos };
EigenSolverKind parse_eigen_solver(const std::string& name);  // throws InputError

struct ExtremeEigenvalues {
  double min = 0, max = 0;
};

// λ_min and λ_max of the symmetric matrix `a`. Lanczos falls back to the dense solver for tiny
// matrices and whenever it does not converge, so the answer is always the dense one to ~1e−10.
ExtremeEigenvalues extreme_eigenvalues(const HostMatrix& a, EigenSolverKind solver);

// Every eigenvalue of the symmetric matrix `a`, ascending (dense solver).
std::vector<double> eigenvalues(const HostMatrix& a);

}  // namespace mfsim
