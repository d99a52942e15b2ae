// Keyword options (a dict built by the Python layer from its keyword arguments) to pe::Options,
// pe::SolveOptions and pe::GramOptions, and back to the defaults those structs start from.
//
// Names are the C++ members' names (snake_case already), with three Python spellings:
//   storage = None | "f32" | "f64"   None: iterate in the input's dtype (storage_from_input), else that dtype
//   device  = None | "cpu" | "cuda"  None: where the arrays are
//   stream  = None | int             a cudaStream_t; None: the default stream (the Python layer passes the
//                                    caller framework's current stream)
//   lam     = GramOptions::lambda    (lambda is a Python keyword)
// Enums are their names as strings (precond="frobenius", mode="automatic", ...). An unknown name or a
// value of the wrong type is a TypeError (as Python itself raises for a bad keyword); a value out of range
// is a pe::Error, and everything else is checked by the runtime, with its own messages.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <mutex>
#include <string>

#include "pe/pe.hpp"
#include "pe/solve.hpp"
#include "views.hpp"

namespace pe_python {

// A pe::GramCache that Python threads can share: the C++ cache is not thread-safe, and the binding
// releases the GIL while the runtime works, so each call holds this mutex for its whole duration.
struct SharedGramCache {
  explicit SharedGramCache(std::size_t max_entries) : cache(max_entries) {}
  pe::GramCache cache;
  std::mutex mutex;
};

enum class OptionSet { root, apply, solve, gram };

pe::Options root_options(const nb::dict& given, Placement arrays, OptionSet set);
pe::SolveOptions solve_options(const nb::dict& given, Placement arrays);
// Also returns the cache given as options["cache"] (None: nullptr); GramOptions::cache points into it.
pe::GramOptions gram_options(const nb::dict& given, Placement arrays, SharedGramCache*& cache);

// The defaults of one option set, in the Python spellings above (what the Python signatures must show).
nb::dict default_options(OptionSet set);

}  // namespace pe_python
