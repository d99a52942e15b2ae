// The contract between pe-synth (which writes schedule tables) and the runtime (which reads them).
// Plain aggregate records, so that a generated header defines them as constexpr arrays (designated
// initialisers) and the JSON loader fills the very same structs: both sources give bit-identical
// numbers. The record is described once, by for_each_entry_field below; both emitters, both readers
// and the content hash walk that one description, and the checks every reader applies are the
// constexpr rules at the end of this file (usable in a static_assert on a compiled-in table).
//
// The math both sides agree on (see docs/schedule-format.md for the full statement):
//   residual Y = X^p A, one step maps an eigenvalue y of Y to phi(y) = y * q(y)^p,
//   q(y) = c_0 + c_1 y + ... + c_d y^d (degree d in 1..kMaxDegree). The fixed point is y = 1.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "pe/detail/gemm_cost.hpp"

namespace pe {

// Bumped whenever a field is added, removed or changes meaning. Every reader rejects other versions.
// 2: degrees up to 4 (coefficient arrays of kMaxCoefficients), per-table content hashes, the fixed
//    greedy schedules dropped, entries monotone along the edges, JSON keys equal to the member names.
inline constexpr int kScheduleSchemaVersion = 2;

inline constexpr int kMaxDegree = 4;
inline constexpr int kMaxCoefficients = kMaxDegree + 1;

// One kappa bucket of a (p, degree) table.
//
// Coefficients are valid for every interval [l, 1] with l >= l_edge: since [l,1] is inside [l_edge,1],
// phi([l,1]) is inside the certified image [image_lo, image_hi] of the edge. The runtime therefore
// always picks the bucket with the largest l_edge <= its current lower bound (the safe side), and since
// every table is monotone (below) that is also the best bucket for it.
//
// Everything named *_f64 is certified for the coefficients exactly as rounded to double, everything
// named *_f32 for the coefficients exactly as rounded to float (what a float runtime multiplies by).
//
// Guards (checked and certified by pe-synth for every entry, with eta the table's rounding margin):
//   G1  for y in [0, l_edge]:   y <= phi(y) <= image_hi   (below the edge we still move up, never over)
//   G2  q(y) > 0 on [0, 1 + eta]
//   G3  for y in [1, 1 + eta]:  image_lo <= phi(y) <= overshoot * image_hi
// Where the plain minimax optimum breaks G1..G3 (G3 with overshoot <= 1 + eta), the stored
// coefficients are the constrained optimum found with NLopt and `guarded` is true; eps_plain keeps
// the unconstrained optimum's bound for comparison (== eps_f64 when !guarded).
struct BucketEntry {
  double l_edge;                       // lower edge of the bucket (kappa_edge = 1 / l_edge)
  double coeff_f64[kMaxCoefficients];  // c_0 .. c_d, lowest power first; 0 above the table's degree
  double eps_f64;                      // certified: max_{y in [l_edge,1]} |1 - phi(y)| <= eps_f64
  double image_lo_f64;                 // certified: phi([l_edge,1]) is inside [image_lo_f64, image_hi_f64]
  double image_hi_f64;
  float coeff_f32[kMaxCoefficients];
  double eps_f32;
  double image_lo_f32;
  double image_hi_f32;
  double eps_plain;                    // certified bound of the unguarded optimum
  double overshoot;                    // certified: max_{y in [1,1+eta]} phi(y) / image_hi (G3)
  bool guarded;
};

// All buckets of one (p, degree): entries sorted by l_edge ascending (largest kappa first).
struct BucketTable {
  int p;
  int degree;
  double eta;                  // rounding margin the guards were certified for
  std::uint64_t content_hash;  // table_content_hash(p, degree, eta, entries): every number of the table
  const BucketEntry* entries;
  std::size_t count;
};

// A whole generated table set as a compiled header defines it (`kScheduleSet`): what the runtime
// takes through pe::Options::embedded_schedules (ScheduleSource::embedded).
struct CompiledScheduleSet {
  int schema_version;
  const char* generator;    // "pe-synth <version>"
  const char* config_hash;  // "fnv1a64:<16 hex>" of the config that made the set
  const BucketTable* tables;
  std::size_t count;
};

// GEMM count of a fresh materialised schedule of `total_steps` steps of one degree, as the runtime
// executes it: the sum of pe::detail::step_gemms (include/pe/detail/gemm_cost.hpp, the one cost model).
constexpr int schedule_gemms(int p, int degree, int total_steps) {
  int sum = 0;
  for (int t = 0; t < total_steps; ++t)
    sum += detail::step_gemms(p, detail::StepDesc{degree, t == 0, t == total_steps - 1, detail::StepOutput::materialize});
  return sum;
}

// ---------------------------------------------------------------- the one description of a record
// How a reader checks one field; expectation() says it in words for messages.
enum class FieldRule {
  edge,         // l_edge in (0, 1)
  coefficient,  // finite; 0 above the table's degree (f32 arrays: values of floats)
  bound,        // in [0, 1)
  image_lo,     // in (0, 1]
  image_hi,     // in [1, 2]
  overshoot,    // finite, > 0
  flag,         // a boolean
};

constexpr const char* expectation(FieldRule rule) {
  switch (rule) {
    case FieldRule::edge: return "in (0, 1)";
    case FieldRule::coefficient: return "a finite number";
    case FieldRule::bound: return "in [0, 1)";
    case FieldRule::image_lo: return "in (0, 1]";
    case FieldRule::image_hi: return "in [1, 2]";
    case FieldRule::overshoot: return "a finite number > 0";
    case FieldRule::flag: return "a boolean";
  }
  return "?";
}

constexpr bool is_finite(double v) {
  return v == v && v <= std::numeric_limits<double>::max() && v >= -std::numeric_limits<double>::max();
}

constexpr bool field_value_ok(FieldRule rule, double v) {
  switch (rule) {
    case FieldRule::edge: return v > 0 && v < 1;
    case FieldRule::coefficient: return is_finite(v);
    case FieldRule::bound: return v >= 0 && v < 1;
    case FieldRule::image_lo: return v > 0 && v <= 1;
    case FieldRule::image_hi: return v >= 1 && v <= 2;
    case FieldRule::overshoot: return is_finite(v) && v > 0;
    case FieldRule::flag: return true;
  }
  return false;
}

// Calls visit(name, member, rule) for every field of a BucketEntry in declaration order. The names are
// the JSON keys and the designated initialisers of the generated header.
template <class Entry, class Visit>
constexpr void for_each_entry_field(Entry& e, Visit&& visit) {
  visit("l_edge", e.l_edge, FieldRule::edge);
  visit("coeff_f64", e.coeff_f64, FieldRule::coefficient);
  visit("eps_f64", e.eps_f64, FieldRule::bound);
  visit("image_lo_f64", e.image_lo_f64, FieldRule::image_lo);
  visit("image_hi_f64", e.image_hi_f64, FieldRule::image_hi);
  visit("coeff_f32", e.coeff_f32, FieldRule::coefficient);
  visit("eps_f32", e.eps_f32, FieldRule::bound);
  visit("image_lo_f32", e.image_lo_f32, FieldRule::image_lo);
  visit("image_hi_f32", e.image_hi_f32, FieldRule::image_hi);
  visit("eps_plain", e.eps_plain, FieldRule::bound);
  visit("overshoot", e.overshoot, FieldRule::overshoot);
  visit("guarded", e.guarded, FieldRule::flag);
}

// ---------------------------------------------------------------- content hash
// FNV-1a 64 over the bit patterns of every number of a table in a fixed order (p, degree, eta, then
// each entry's fields as for_each_entry_field lists them, all kMaxCoefficients of each array), so it
// is the same for the header and the JSON twin and changes when any stored number does.
class ContentHasher {
 public:
  constexpr void bytes(std::uint64_t v, int count) {
    for (int i = 0; i < count; ++i) {
      hash_ ^= (v >> (8 * i)) & 0xffu;
      hash_ *= 1099511628211ull;
    }
  }
  constexpr void add(double v) { bytes(std::bit_cast<std::uint64_t>(v), 8); }
  constexpr void add(float v) { bytes(std::bit_cast<std::uint32_t>(v), 4); }
  constexpr void add(bool v) { bytes(v ? 1u : 0u, 1); }
  constexpr void add(int v) { bytes(static_cast<std::uint64_t>(static_cast<std::int64_t>(v)), 8); }
  template <class T, std::size_t N>
  constexpr void add(const T (&values)[N]) {
    for (const T& v : values) add(v);
  }
  constexpr std::uint64_t value() const { return hash_; }

 private:
  std::uint64_t hash_ = 1469598103934665603ull;
};

constexpr std::uint64_t table_content_hash(int p, int degree, double eta, const BucketEntry* entries, std::size_t count) {
  ContentHasher h;
  h.add(p);
  h.add(degree);
  h.add(eta);
  for (std::size_t i = 0; i < count; ++i)
    for_each_entry_field(entries[i], [&](const char*, const auto& value, FieldRule) { h.add(value); });
  return h.value();
}

// ---------------------------------------------------------------- the rules every reader applies
// max |1 - y| over [lo, hi]: the bound an image implies (what the runtime reports and plans with).
constexpr double image_bound(double lo, double hi) { return (1 - lo) > (hi - 1) ? 1 - lo : hi - 1; }
// The normalised lower end lo / hi the next step starts from.
constexpr double image_ratio(double lo, double hi) { return lo / hi; }

// Monotonicity between consecutive entries, for one dtype: e (the larger edge) has a bound no larger
// and a normalised ratio no smaller than prev. pe-synth keeps an entry only when this holds for both
// dtypes against the entry kept before it (otherwise that entry serves e's edge too: its certificate
// covers every interval above its own edge).
constexpr bool image_not_worse(const BucketEntry& prev, const BucketEntry& e, bool f32) {
  const double lo = f32 ? e.image_lo_f32 : e.image_lo_f64, hi = f32 ? e.image_hi_f32 : e.image_hi_f64;
  const double plo = f32 ? prev.image_lo_f32 : prev.image_lo_f64, phi = f32 ? prev.image_hi_f32 : prev.image_hi_f64;
  return image_bound(lo, hi) <= image_bound(plo, phi) && image_ratio(lo, hi) >= image_ratio(plo, phi);
}

// The first broken rule of one entry of a (p, degree) table as a sentence, or nullptr. `field` receives
// the name of the offending field. Field ranges, zeros above the degree, images that contain 1,
// eps_plain == eps_f64 for unguarded entries.
constexpr const char* entry_violation(const BucketEntry& e, int degree, const char** field) {
  const char* broken = nullptr;
  for_each_entry_field(e, [&](const char* name, const auto& value, FieldRule rule) {
    if (broken) return;
    using T = std::remove_cvref_t<decltype(value)>;
    if constexpr (std::is_same_v<T, bool>) {
      (void)value;
    } else if constexpr (std::is_array_v<T>) {
      for (int i = 0; i < kMaxCoefficients; ++i) {
        const double v = static_cast<double>(value[i]);
        if (!field_value_ok(rule, v)) broken = "holds a value that is not a finite number";
        else if (i > degree && v != 0) broken = "is not 0 above the table's degree";
        if (broken) {
          *field = name;
          return;
        }
      }
    } else if (!field_value_ok(rule, value)) {
      broken = expectation(rule);
      *field = name;
    }
  });
  if (broken) return broken;
  if (!e.guarded && e.eps_plain != e.eps_f64) {
    *field = "eps_plain";
    return "differs from eps_f64 in an unguarded entry";
  }
  return nullptr;
}

// The first broken rule of a whole table, or nullptr; `index` receives the entry it concerns
// (count for table-level rules). Besides every entry's rules: p >= 1, degree in 1..kMaxDegree, eta in
// [0, 0.5], at least one entry, l_edge strictly ascending, the content hash, and monotonicity: along
// ascending edges neither the bound (image_bound) nor the normalised ratio (image_ratio) of either
// dtype gets worse. Monotonicity is what makes the runtime's choice (largest edge <= l) the best one
// and the step planner's dynamic programming exact (a narrower interval is never worse).
constexpr const char* table_violation(const BucketTable& t, std::size_t* index, const char** field) {
  *index = t.count;
  *field = "";
  if (t.p < 1 || t.p > 64) return "p is not in [1, 64]";
  if (t.degree < 1 || t.degree > kMaxDegree) return "degree is not in [1, 4]";
  if (!(t.eta >= 0 && t.eta <= 0.5)) return "eta is not in [0, 0.5]";
  if (t.count == 0 || t.entries == nullptr) return "has no entries";
  // The hash first: an edited number is reported as an edit, not as whichever rule it happens to break.
  *field = "content_hash";
  if (table_content_hash(t.p, t.degree, t.eta, t.entries, t.count) != t.content_hash)
    return "does not match the table's numbers (the table was edited after pe-synth wrote it)";
  for (std::size_t i = 0; i < t.count; ++i) {
    *index = i;
    const BucketEntry& e = t.entries[i];
    if (const char* broken = entry_violation(e, t.degree, field)) return broken;
    if (i == 0) continue;
    const BucketEntry& prev = t.entries[i - 1];
    *field = "l_edge";
    if (!(prev.l_edge < e.l_edge)) return "is not above the previous entry's (entries must be sorted ascending)";
    *field = "image_lo_f64";
    if (!image_not_worse(prev, e, false)) return "makes the f64 image worse than the previous entry's (tables must be monotone)";
    *field = "image_lo_f32";
    if (!image_not_worse(prev, e, true)) return "makes the f32 image worse than the previous entry's (tables must be monotone)";
  }
  *index = t.count;
  *field = "";
  return nullptr;
}

// True when every table of a compiled set keeps every rule (for a static_assert on embedded tables).
constexpr bool schedule_set_intact(const CompiledScheduleSet& set) {
  if (set.schema_version != kScheduleSchemaVersion || set.tables == nullptr || set.count == 0) return false;
  for (std::size_t i = 0; i < set.count; ++i) {
    std::size_t index = 0;
    const char* field = nullptr;
    if (table_violation(set.tables[i], &index, &field) != nullptr) return false;
  }
  return true;
}

}  // namespace pe
