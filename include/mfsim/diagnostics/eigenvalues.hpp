#pragma once
// Eigenvalues of a dense symmetric matrix on the host (the Gram matrix and the NTK reference):
// Eigen's SelfAdjointEigenSolver (dense, every eigenvalue, ~9n³ flops) or Spectra's Lanczos
// iteration for the extreme eigenvalues only: λ_max from matrix–vector products, λ_min by
// shift-invert (one LDLᵀ factorisation, n³/3): the choice for large n.
#include <string>
#include <vector>

#include "mfsim/core/types.hpp"

namespace mfsim {

enum class EigenSolverKind { dense, lanczos };
EigenSolverKind parse_eigen_solver(const std::string& name);  // throws InputError
const std::vector<std::string>& eigen_solver_names();         // what gram_solver accepts

struct ExtremeEigenvalues {
  double min = 0, max = 0;
  bool dense_fallback = false;  // Lanczos did not converge (or n ≤ 3): the dense solver answered
};

// λ_min and λ_max of the symmetric matrix `a`. Lanczos assumes `a` positive semi-definite (a Gram
// matrix: the shift is placed just below 0), and falls back to the dense solver for tiny matrices
// and whenever it does not converge, so the answer is always the dense one to ~1e−10 relative.
ExtremeEigenvalues extreme_eigenvalues(const HostMatrix& a, EigenSolverKind solver);

// Every eigenvalue of the symmetric matrix `a`, ascending (dense solver).
std::vector<double> eigenvalues(const HostMatrix& a);

}  // namespace mfsim
