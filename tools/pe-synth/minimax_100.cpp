// The 100-digit instantiation of the solver (--digits 51..100).
#include "minimax_impl.hpp"

namespace pe::synth::detail {

Step solve_100(const StepRequest& request) { return Impl<Real<100>>::solve(request, 100); }
Recheck recheck_100(int p, const Value& l, const std::vector<Value>& c, const GuardSpec& g) {
  return Impl<Real<100>>::recheck(p, l, c, g);
}

}  // namespace pe::synth::detail
