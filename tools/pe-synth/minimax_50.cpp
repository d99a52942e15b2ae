// The 50-digit instantiation of the solver (the default working precision).
#include "minimax_impl.hpp"

namespace pe::synth::detail {

Step solve_50(const StepRequest& request) { return Impl<Real<50>>::solve(request, 50); }
Recheck recheck_50(int p, const Value& l, const std::vector<Value>& c, const GuardSpec& g) {
  return Impl<Real<50>>::recheck(p, l, c, g);
}

}  // namespace pe::synth::detail
