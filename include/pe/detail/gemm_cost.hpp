// The one GEMM cost model: how many GEMM calls one coupled step issues, from the same step description
// the engine executes. Header-only and constexpr so that pe-synth (which plans without the runtime)
// and the runtime count alike. A GEMM call is one product of the backend, n x n x n or skinny n x n x k.
#pragma once

namespace pe::detail {

// What a step carries besides the residual Y: the root X (n x n), the skinny Z = (...) B (n x k), or the
// polar factor U of a square matrix (whose residual U^T U is formed anew every step).
enum class StepOutput { materialize, direct, polar };

struct StepDesc {
  int degree = 2;      // of q
  bool first = false;  // step 0: X_0 is a multiple of I, so X_1 = q(Y) needs no product
  bool last = false;   // the last step does not update the residual
  StepOutput output = StepOutput::materialize;
};

// Products of binary powering q^m.
constexpr int binary_powering_products(int m) {
  int bits = 0, ones = 0;
  for (int v = m; v > 0; v >>= 1) {
    ++bits;
    ones += v & 1;
  }
  return m > 0 ? (bits - 1) + (ones - 1) : 0;
}

// Y <- q(Y)^p Y: p = 1 -> q Y; even p = 2m -> q^m Y q^m; odd p = 2m + 1 -> q (q^m Y q^m).
constexpr int residual_update_gemms(int p) {
  if (p == 1) return 1;
  if (p % 2 == 0) return binary_powering_products(p / 2) + 2;
  return binary_powering_products(p / 2) + 3;
}

// q(Y) formed as a matrix by Paterson-Stockmeyer with block size 2:
//   degree 1: a I + b Y (no product); 2: Y^2; 3: (c0 I + c1 Y) + Y^2 (c2 I + c3 Y);
//   4: (c0 I + c1 Y) + Y^2 (c2 I + c3 Y + c4 Y^2).
constexpr int q_form_gemms(int degree) { return degree <= 1 ? 0 : degree == 2 ? 1 : 2; }

// The last direct step applies q(Y) to Z by Horner without forming it: one skinny product per degree.
constexpr int terminal_direct_gemms(int degree) { return degree; }

constexpr int step_gemms(int p, const StepDesc& s) {
  if (s.output == StepOutput::direct && s.last) return terminal_direct_gemms(s.degree);
  if (s.output == StepOutput::polar) return 1 + q_form_gemms(s.degree) + 1;  // Y = U^T U, q(Y), U q(Y)
  int gemms = q_form_gemms(s.degree);
  gemms += s.output == StepOutput::materialize ? (s.first ? 0 : 1) : 1;  // X q(Y) or q(Y) Z
  if (!s.last) gemms += residual_update_gemms(p);
  return gemms;
}

}  // namespace pe::detail
