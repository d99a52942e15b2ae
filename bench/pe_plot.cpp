// pe-plot: convergence pictures from schedule tables (pe_schedules.json), as SVG written directly.
// For one p, kappa and degree it follows the interval model exactly as the runtime walks the tables
// (start at [1/kappa, 1]; each step uses the bucket with the largest edge <= l, moves to its certified
// image [lo, hi] and renormalises to [lo/hi, 1]) and draws
//   left:  the per-step maps phi_k(y) = y q_k(y)^p on their intervals (dotted below the interval: guard G1),
//          with the Newton map y ((p+1-y)/p)^p dashed;
//   right: the certified bound max |1 - y| after each step against the GEMMs spent, ours vs the coupled
//          Newton iteration with Guo & Higham's optimal scalar start (same interval model).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "baselines.hpp"
#include "pe/schedule_types.hpp"
#include "pe/types.hpp"
#include "plan/schedule_set.hpp"

namespace {

using nlohmann::json;

struct Entry {
  double l_edge = 0;
  double coeff[pe::kMaxCoefficients] = {};
  double eps = 0, lo = 0, hi = 0;
};

struct Step {
  double l = 0;        // start of the normalised interval [l, 1]
  Entry entry;         // bucket used
  double eps = 0;      // certified max |1 - y| after the step
  int gemms = 0;       // cumulative, if the run stopped after this step
};

struct NewtonStep {
  double lo = 0, hi = 0;  // interval of the residual M_k
  double eps = 0;
  int gemms = 0;
};

[[noreturn]] void fail(const std::string& message) { throw std::runtime_error(message); }

// Through pe's one table reader (every rule and hash checked), so the picture shows certified numbers.
std::vector<Entry> load_table(const std::string& path, int p, int degree) {
  pe::detail::ScheduleSet set;
  try {
    set = pe::detail::load_schedules_json(path);
  } catch (const pe::Error& e) {
    fail(std::string("--schedules: ") + e.what());
  }
  const pe::detail::OwnedBucketTable* t = set.find(p, degree);
  if (!t) {
    std::string available;
    for (const auto& x : set.tables) available += " (p " + std::to_string(x.p) + ", degree " + std::to_string(x.degree) + ")";
    fail("--schedules " + path + ": no table for p = " + std::to_string(p) + ", degree " + std::to_string(degree) +
         "; it has" + available);
  }
  std::vector<Entry> entries;
  for (const pe::BucketEntry& e : t->entries) {
    Entry x;
    x.l_edge = e.l_edge;
    for (int i = 0; i < pe::kMaxCoefficients; ++i) x.coeff[i] = e.coeff_f64[i];
    x.eps = e.eps_f64;
    x.lo = e.image_lo_f64;
    x.hi = e.image_hi_f64;
    entries.push_back(x);
  }
  return entries;
}

std::vector<Step> walk_ours(const std::vector<Entry>& table, int p, int degree, double kappa, double target,
                            int max_steps) {
  std::vector<Step> steps;
  double l = 1 / kappa;
  for (int k = 0; k < max_steps; ++k) {
    const Entry* e = &table.front();
    for (const Entry& x : table)
      if (x.l_edge <= l) e = &x;
    Step s{l, *e, e->eps, pe::schedule_gemms(p, degree, k + 1)};
    steps.push_back(s);
    if (s.eps <= target) break;
    l = std::max(l, e->lo / e->hi);
  }
  return steps;
}

double newton_map(double y, int p) { return y * std::pow((p + 1 - y) / p, p); }

std::vector<NewtonStep> walk_newton(int p, double kappa, double target, int max_steps) {
  const double c = pe_bench::newton_scaling(1 / kappa, 1, p);
  double lo = (1 / kappa) / std::pow(c, p), hi = 1 / std::pow(c, p);
  std::vector<NewtonStep> steps;
  int gemms = 0;
  for (int k = 1; k <= max_steps; ++k) {
    const double a = newton_map(lo, p), b = newton_map(hi, p);
    // phi rises on [0, 1] to its maximum 1 at y = 1 and falls after it.
    const double new_lo = std::min(a, b), new_hi = (lo <= 1 && hi >= 1) ? 1.0 : std::max(a, b);
    lo = new_lo;
    hi = new_hi;
    const double eps = std::max(1 - lo, hi - 1);
    steps.push_back({lo, hi, eps, gemms + pe_bench::newton_gemms(p, k, true)});
    gemms += pe_bench::newton_gemms(p, k, false);
    if (eps <= target) break;
  }
  return steps;
}

// ------------------------------------------------------------------------------------------ SVG
const char* const kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

struct Panel {
  double x0, y0, w, h;               // pixel box
  double xmin, xmax, ymin, ymax;     // data range
  bool xlog, ylog;
  double px(double x) const {
    const double t = xlog ? (std::log10(x) - std::log10(xmin)) / (std::log10(xmax) - std::log10(xmin))
                          : (x - xmin) / (xmax - xmin);
    return x0 + t * w;
  }
  double py(double y) const {
    const double t = ylog ? (std::log10(y) - std::log10(ymin)) / (std::log10(ymax) - std::log10(ymin))
                          : (y - ymin) / (ymax - ymin);
    return y0 + h - t * h;
  }
};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

std::string label(double v) {
  char buf[32];
  if (v != 0 && (std::abs(v) < 1e-2 || std::abs(v) >= 1e4))
    std::snprintf(buf, sizeof buf, "1e%d", static_cast<int>(std::lround(std::log10(v))));
  else
    std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

void axes(std::ostringstream& svg, const Panel& p, const std::vector<double>& xticks, const std::vector<double>& yticks,
          const std::string& xtitle, const std::string& ytitle, const std::string& title) {
  svg << "<rect x='" << num(p.x0) << "' y='" << num(p.y0) << "' width='" << num(p.w) << "' height='" << num(p.h)
      << "' fill='none' stroke='#333'/>\n";
  for (double t : xticks) {
    svg << "<line x1='" << num(p.px(t)) << "' y1='" << num(p.y0) << "' x2='" << num(p.px(t)) << "' y2='"
        << num(p.y0 + p.h) << "' stroke='#e5e5e5'/>\n";
    svg << "<text x='" << num(p.px(t)) << "' y='" << num(p.y0 + p.h + 16) << "' text-anchor='middle'>" << label(t)
        << "</text>\n";
  }
  for (double t : yticks) {
    svg << "<line x1='" << num(p.x0) << "' y1='" << num(p.py(t)) << "' x2='" << num(p.x0 + p.w) << "' y2='"
        << num(p.py(t)) << "' stroke='#e5e5e5'/>\n";
    svg << "<text x='" << num(p.x0 - 6) << "' y='" << num(p.py(t) + 4) << "' text-anchor='end'>" << label(t)
        << "</text>\n";
  }
  svg << "<text x='" << num(p.x0 + p.w / 2) << "' y='" << num(p.y0 + p.h + 36) << "' text-anchor='middle'>" << xtitle
      << "</text>\n";
  svg << "<text transform='translate(" << num(p.x0 - 48) << "," << num(p.y0 + p.h / 2)
      << ") rotate(-90)' text-anchor='middle'>" << ytitle << "</text>\n";
  svg << "<text x='" << num(p.x0 + p.w / 2) << "' y='" << num(p.y0 - 10)
      << "' text-anchor='middle' font-weight='bold'>" << title << "</text>\n";
}

void polyline(std::ostringstream& svg, const Panel& p, const std::vector<std::pair<double, double>>& pts,
              const std::string& color, const std::string& extra) {
  svg << "<polyline fill='none' stroke='" << color << "' " << extra << " points='";
  for (auto [x, y] : pts) {
    const double yy = std::clamp(y, p.ymin, p.ymax);
    svg << num(p.px(x)) << "," << num(p.py(yy)) << " ";
  }
  svg << "'/>\n";
}

std::string draw(int p, int degree, double kappa, double target, const std::vector<Step>& ours,
                 const std::vector<NewtonStep>& newton) {
  std::ostringstream svg;
  const double W = 1000, H = 440;
  svg << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' viewBox='0 0 " << W << " "
      << H << "' font-family='Helvetica, Arial, sans-serif' font-size='12'>\n";
  svg << "<rect width='100%' height='100%' fill='white'/>\n";

  // Left: the maps.
  const double l0 = 1 / kappa;
  const double xmin = std::pow(10.0, std::floor(std::log10(l0)) - 1);
  Panel left{70, 40, 380, 320, xmin, 1, xmin, 2, true, true};
  std::vector<double> xt;
  for (double t = xmin; t <= 1.0001; t *= 10) xt.push_back(t);
  char title[160];
  std::snprintf(title, sizeof title, "per-step maps phi_k(y) = y q_k(y)^%d, degree %d", p, degree);
  axes(svg, left, xt, xt, "y (eigenvalue of the normalised residual X^p A)", "phi_k(y)", title);
  polyline(svg, left, {{xmin, xmin}, {1, 1}}, "#999", "stroke-width='1' stroke-dasharray='2,3'");  // identity
  auto sample = [&](double a, double b, auto&& f) {
    std::vector<std::pair<double, double>> pts;
    for (int i = 0; i <= 200; ++i) {
      const double y = a * std::pow(b / a, i / 200.0);
      pts.push_back({y, f(y)});
    }
    return pts;
  };
  for (std::size_t k = 0; k < ours.size(); ++k) {
    const Entry& e = ours[k].entry;
    auto phi = [&](double y) {
      double q = 0;
      for (int j = pe::kMaxCoefficients - 1; j >= 0; --j) q = q * y + e.coeff[j];
      return y * std::pow(q, p);
    };
    const std::string color = kPalette[k % 10];
    if (ours[k].l > xmin) polyline(svg, left, sample(xmin, ours[k].l, phi), color, "stroke-width='1' stroke-dasharray='1,3'");
    polyline(svg, left, sample(ours[k].l, 1, phi), color, "stroke-width='2'");
  }
  polyline(svg, left, sample(xmin, 1, [&](double y) { return newton_map(y, p); }), "#000",
           "stroke-width='1.5' stroke-dasharray='6,4'");
  // Legend.
  double ly = left.y0 + 14;
  for (std::size_t k = 0; k < ours.size() && k < 8; ++k, ly += 15) {
    svg << "<line x1='" << num(left.x0 + 10) << "' y1='" << num(ly) << "' x2='" << num(left.x0 + 30) << "' y2='"
        << num(ly) << "' stroke='" << kPalette[k % 10] << "' stroke-width='2'/>\n";
    // Near convergence the lower end is best read as its distance to 1.
    char lower[48];
    if (ours[k].l > 0.9)
      std::snprintf(lower, sizeof lower, "1 - %.2g", 1 - ours[k].l);
    else
      std::snprintf(lower, sizeof lower, "%.3g", ours[k].l);
    svg << "<text x='" << num(left.x0 + 35) << "' y='" << num(ly + 4) << "'>step " << k + 1 << " on [" << lower
        << ", 1]</text>\n";
  }
  if (ours.size() > 8) {
    svg << "<text x='" << num(left.x0 + 35) << "' y='" << num(ly + 4) << "'>... " << ours.size() - 8
        << " more</text>\n";
    ly += 15;
  }
  svg << "<line x1='" << num(left.x0 + 10) << "' y1='" << num(ly) << "' x2='" << num(left.x0 + 30) << "' y2='"
      << num(ly) << "' stroke='#000' stroke-dasharray='6,4'/>\n";
  svg << "<text x='" << num(left.x0 + 35) << "' y='" << num(ly + 4) << "'>Newton map</text>\n";

  // Right: the bound per GEMM.
  int max_gemms = 1;
  double min_eps = target;
  for (const Step& s : ours) max_gemms = std::max(max_gemms, s.gemms), min_eps = std::min(min_eps, s.eps);
  for (const NewtonStep& s : newton) max_gemms = std::max(max_gemms, s.gemms), min_eps = std::min(min_eps, s.eps);
  const double ymin = std::pow(10.0, std::floor(std::log10(std::max(min_eps, 1e-300))) - 1);
  Panel right{590, 40, 380, 320, 0, static_cast<double>(max_gemms) * 1.05, ymin, 2, false, true};
  std::vector<double> gx, ey;
  const int gstep = max_gemms > 60 ? 20 : max_gemms > 24 ? 10 : 5;
  for (int g = 0; g <= max_gemms; g += gstep) gx.push_back(g);
  const int decade_step = std::log10(2 / ymin) > 10 ? 2 : 1;
  for (double e = 1; e >= ymin; e /= std::pow(10.0, decade_step)) ey.push_back(e);
  std::snprintf(title, sizeof title, "certified max |1 - y| per GEMM, kappa = %s", label(kappa).c_str());
  axes(svg, right, gx, ey, "GEMM calls (n x n x n products)", "bound on ||X^p A - I||", title);
  polyline(svg, right, {{0, target}, {right.xmax, target}}, "#2ca02c", "stroke-width='1' stroke-dasharray='3,3'");
  svg << "<text x='" << num(right.x0 + right.w - 4) << "' y='" << num(right.py(target) - 4)
      << "' text-anchor='end' fill='#2ca02c'>target " << label(target) << "</text>\n";
  std::vector<std::pair<double, double>> po{{0, 1}}, pn{{0, 1}};
  for (const Step& s : ours) po.push_back({static_cast<double>(s.gemms), s.eps});
  for (const NewtonStep& s : newton) pn.push_back({static_cast<double>(s.gemms), s.eps});
  polyline(svg, right, pn, "#000", "stroke-width='1.5' stroke-dasharray='6,4'");
  polyline(svg, right, po, "#1f77b4", "stroke-width='2'");
  for (std::size_t k = 0; k < ours.size(); ++k)
    svg << "<circle cx='" << num(right.px(ours[k].gemms)) << "' cy='" << num(right.py(std::max(ours[k].eps, ymin)))
        << "' r='3.5' fill='" << kPalette[k % 10] << "'/>\n";
  for (const NewtonStep& s : newton)
    svg << "<rect x='" << num(right.px(s.gemms) - 3) << "' y='" << num(right.py(std::max(s.eps, ymin)) - 3)
        << "' width='6' height='6' fill='none' stroke='#000'/>\n";
  char legend[200];
  std::snprintf(legend, sizeof legend, "ours: %zu steps, %d GEMMs", ours.size(), ours.empty() ? 0 : ours.back().gemms);
  svg << "<text x='" << num(right.x0 + 10) << "' y='" << num(right.y0 + right.h - 26) << "' fill='#1f77b4'>" << legend
      << "</text>\n";
  std::snprintf(legend, sizeof legend, "coupled Newton (Guo-Higham start): %zu iterations, %d GEMMs", newton.size(),
                newton.empty() ? 0 : newton.back().gemms);
  svg << "<text x='" << num(right.x0 + 10) << "' y='" << num(right.y0 + right.h - 10) << "'>" << legend
      << "</text>\n";
  svg << "<text x='" << num(W / 2) << "' y='" << num(H - 12)
      << "' text-anchor='middle' fill='#555'>interval model of the certified tables: each step maps [l, 1] into its "
         "certified image and renormalises; Newton's interval follows its exact scalar map</text>\n";
  svg << "</svg>\n";
  return svg.str();
}

void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) fail("--out " + path + ": cannot write " + tmp);
    out << text;
    if (!out) fail("--out " + path + ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pe-plot: convergence pictures (per-step maps, bound per GEMM vs Newton) from schedule tables"};
  std::string schedules, out;
  int p = 2, degree = 2, max_steps = 40;
  double kappa = 1e4, target = 1e-8;
  app.add_option("--schedules", schedules, "pe_schedules.json written by pe-synth")->required();
  app.add_option("--p", p, "root p")->check(CLI::Range(1, 64));
  app.add_option("--degree", degree, "degree of q: 1..4")->check(CLI::Range(1, pe::kMaxDegree));
  app.add_option("--kappa", kappa, "condition number: the walk starts at [1/kappa, 1]")->check(CLI::Range(1.0 + 1e-9, 1e15));
  app.add_option("--target", target, "stop when the certified bound reaches this")->check(CLI::Range(1e-15, 0.5));
  app.add_option("--max-steps", max_steps, "at most this many steps")->check(CLI::Range(1, 200));
  app.add_option("--out", out, "SVG file to write")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    const std::vector<Entry> table = load_table(schedules, p, degree);
    const std::vector<Step> ours = walk_ours(table, p, degree, kappa, target, max_steps);
    const std::vector<NewtonStep> newton = walk_newton(p, kappa, target, 200);
    write_atomically(out, draw(p, degree, kappa, target, ours, newton));
    std::printf("pe-plot: p = %d, kappa = %g: ours %zu steps / %d GEMMs, Newton %zu iterations / %d GEMMs to %g; "
                "wrote %s\n",
                p, kappa, ours.size(), ours.back().gemms, newton.size(), newton.back().gemms, target, out.c_str());
  } catch (const std::exception& e) {
    std::cerr << "pe-plot: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
