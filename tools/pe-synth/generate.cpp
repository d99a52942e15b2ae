#include "generate.hpp"

#include <cstdio>
#include <optional>
#include <sstream>

#include <boost/multiprecision/cpp_bin_float.hpp>

#include "pe/schedule_types.hpp"
#include "pe/types.hpp"
#include "thread_pool.hpp"

namespace pe::synth {

namespace {

std::string fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace

void entry_from_step(const Step& s, double l_edge, BucketEntry& e, pe::detail::EntryText& text) {
  using R = boost::multiprecision::number<boost::multiprecision::cpp_bin_float<50>>;
  if (!s.storage_failure.empty()) throw Error("pe-synth: internal: a table entry from an uncertified step: " + s.storage_failure);
  e = BucketEntry{};
  e.l_edge = l_edge;
  for (int i = 0; i < kMaxCoefficients; ++i) {
    e.coeff_f64[i] = s.coeff_f64[static_cast<std::size_t>(i)];
    e.coeff_f32[i] = s.coeff_f32[static_cast<std::size_t>(i)];
  }
  e.eps_f64 = s.cert_f64.eps_d;
  e.image_lo_f64 = s.cert_f64.image_lo_d;
  e.image_hi_f64 = s.cert_f64.image_hi_d;
  e.eps_f32 = s.cert_f32.eps_d;
  e.image_lo_f32 = s.cert_f32.image_lo_d;
  e.image_hi_f32 = s.cert_f32.image_hi_d;
  e.eps_plain = s.eps_plain;
  e.overshoot = s.overshoot;
  e.guarded = s.guarded;
  text.kappa_edge = R(1 / R(l_edge)).str(17);
  text.coefficients = s.coefficients;
  text.eps = s.cert.eps;
}

TableFile build_tables(const Config& config, const GenerateOptions& options, std::vector<TableStats>* stats) {
  TableFile file;
  file.schema_version = kScheduleSchemaVersion;
  file.origin = "generated";
  file.generator = std::string("pe-synth ") + kGeneratorVersion;
  file.config_hash = config.hash();
  file.config_name = config.name;
  file.config = config.to_json();
  file.digits = working_digits(config.digits);
  const std::vector<double> edges = bucket_edges(config);
  struct Task {
    std::size_t table;
    double l;
  };
  std::vector<Task> tasks;
  for (int p : config.p)
    for (int degree : config.degrees) {
      pe::detail::OwnedBucketTable t;
      t.p = p;
      t.degree = degree;
      t.eta = config.eta;
      file.tables.push_back(std::move(t));
    }
  // Higher degrees first: their solves take longest, so they should not be the tail of the pool.
  for (int degree = kMaxDegree; degree >= 1; --degree)
    for (std::size_t ti = 0; ti < file.tables.size(); ++ti)
      if (file.tables[ti].degree == degree)
        for (double l : edges) tasks.push_back({ti, l});
  struct Solved {
    BucketEntry entry;
    pe::detail::EntryText text;
  };
  std::vector<std::optional<Solved>> results(tasks.size());
  parallel_for(tasks.size(), options.threads, options.progress, "pe-synth generate", [&](std::size_t i) {
    const Task& t = tasks[i];
    StepRequest r;
    r.p = file.tables[t.table].p;
    r.degree = file.tables[t.table].degree;
    r.l = Value::of(t.l);
    r.digits = config.digits;
    r.kind = StepKind::guarded;
    r.guards = config.guards();
    try {
      Solved s;
      entry_from_step(solve_step(r), t.l, s.entry, s.text);
      results[i] = std::move(s);
    } catch (const NoTableEntry&) {
      // Left out of the table (the runtime then uses the next lower edge, valid for every l above it);
      // verify re-checks that the edge still has no guarded solution.
    }
  });
  std::vector<TableStats> counts(file.tables.size());
  for (std::size_t ti = 0; ti < file.tables.size(); ++ti) {
    counts[ti].p = file.tables[ti].p;
    counts[ti].degree = file.tables[ti].degree;
  }
  // Tasks of one table are in ascending edge order, so the entries are appended sorted.
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    pe::detail::OwnedBucketTable& t = file.tables[tasks[i].table];
    TableStats& c = counts[tasks[i].table];
    if (!results[i]) {
      ++c.no_guarded_solution;
      continue;
    }
    const BucketEntry& e = results[i]->entry;
    if (!t.entries.empty() && !(image_not_worse(t.entries.back(), e, false) && image_not_worse(t.entries.back(), e, true))) {
      ++c.dominated;
      continue;
    }
    t.entries.push_back(e);
    t.text.push_back(std::move(results[i]->text));
    ++c.kept;
  }
  for (auto& t : file.tables) {
    if (t.entries.empty())
      throw Error("pe-synth: no bucket of p = " + std::to_string(t.p) + ", degree " + std::to_string(t.degree) +
                  " satisfies the guards");
    t.content_hash = pe::table_content_hash(t.p, t.degree, t.eta, t.entries.data(), t.entries.size());
  }
  if (stats) *stats = std::move(counts);
  return file;
}

std::string summary(const TableFile& f, const std::vector<TableStats>& stats) {
  std::ostringstream o;
  o << "bucket tables: kappa' = image_hi / image_lo (f64) after one step from the bucket serving kappa, and the\n"
    << "bound eps_f64 near convergence; guarded = entries where the plain optimum broke G1..G3; left out:\n"
    << "edges with no guarded solution, and edges whose image is worse than the entry below (monotonicity)\n";
  o << "   p  deg  entries  guarded  no-guard  dominated  kappa'(1e2)  kappa'(1e4)  kappa'(1e8) kappa'(1e12)   eps(1.01)\n";
  for (std::size_t ti = 0; ti < f.tables.size(); ++ti) {
    const auto& t = f.tables[ti];
    int guarded = 0;
    for (const auto& e : t.entries) guarded += e.guarded;
    const bool known = ti < stats.size();
    o << fmt("%4.0f", t.p) << fmt("%5.0f", t.degree) << fmt("%9.0f", static_cast<double>(t.entries.size()))
      << fmt("%9.0f", guarded) << (known ? fmt("%10.0f", stats[ti].no_guarded_solution) : std::string("         -"))
      << (known ? fmt("%11.0f", stats[ti].dominated) : std::string("          -"));
    auto serving = [&](double kappa) -> const BucketEntry* {
      const BucketEntry* pick = nullptr;
      for (const auto& e : t.entries)
        if (e.l_edge <= 1 / kappa) pick = &e;
      return pick ? pick : (t.entries.empty() ? nullptr : &t.entries.front());
    };
    for (double kappa : {1e2, 1e4, 1e8, 1e12}) {
      const BucketEntry* e = serving(kappa);
      o << (e ? fmt("%13.4g", e->image_hi_f64 / e->image_lo_f64) : std::string("            -"));
    }
    const BucketEntry* near = serving(1.01);
    o << (near ? fmt("%12.3e", near->eps_f64) : std::string("           -")) << "\n";
  }
  return o.str();
}

}  // namespace pe::synth
