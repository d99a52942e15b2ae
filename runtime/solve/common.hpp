// Pieces shared by the solve and Gram entry points: moving views in and out of a
// backend, calling the public root API on backend-resident matrices, residual norms.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backend.hpp"
#include "pe/detail/format.hpp"
#include "pe/pe.hpp"

namespace pe::detail::solve {

// A host (double, column-major) copy of a backend matrix.
std::vector<double> host_copy(Backend& backend, const Mat& m);

// Backend matrix <- caller view (host: converted; device: must be in the storage dtype, column-major).
void move_in(Backend& backend, const char* name, const Matrix& v, Mat& dst);
void move_out(Backend& backend, const Mat& src, const MutableMatrix& v);

// Views of backend-resident matrices for the public API (same device and storage dtype as `backend`).
Matrix view_of(const Backend& backend, const Mat& m, Device device);
MutableMatrix mutable_view_of(const Backend& backend, Mat& m, Device device);

// Frobenius norm of every column block (batch 1): one fetch.
double frobenius(Backend& backend, const Mat& m);

}  // namespace pe::detail::solve
