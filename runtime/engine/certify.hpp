// The engine's view of the verified certificate (runtime/verify holds the numerics): a certifier made
// once per plan on the f64 companion backend, and the storage floor estimate the Report quotes.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "backend.hpp"
#include "pe/types.hpp"

namespace pe::detail {

struct MemberCertificate {
  bool proven = false;
  double eps_bound = std::numeric_limits<double>::infinity();  // proven bound of max |lambda(X^p A) - 1|
  std::string failure;                                         // why not proven
};

class RootCertifier {
 public:
  // wide: an f64 backend of the storage backend's kind. Allocates its workspace here.
  RootCertifier(Backend& wide, std::int64_t n, std::int64_t batch, int p);
  ~RootCertifier();
  // a, x: f64 matrices in `wide` (X exactly the returned root, exactly symmetric).
  std::vector<MemberCertificate> certify(const Mat& a, const Mat& x);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The smallest eps(X) the storage dtype can represent for a matrix of condition number kappa (the exact
// root rounded to the storage): a planning figure, see docs/certificate.md.
double root_floor(DType storage, int p, double kappa, std::int64_t n);

}  // namespace pe::detail
