// Schedule tables: the compiled header and the JSON file give the same records and bit-identical
// results; the JSON loader rejects malformed files naming the field; bucket selection is on the safe side.
#include <gtest/gtest.h>

#include <unistd.h>

#include <bit>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "interval.hpp"
#include "pe/schedule_types.hpp"
#include "pe_schedules.hpp"
#include "runtime_test_support.hpp"

namespace {

using pe_test::Spectrum;

bool json_tables_present() { return std::filesystem::exists(PE_SCHEDULES_JSON); }

#define PE_REQUIRE_JSON_TABLES() \
  if (!json_tables_present()) GTEST_SKIP() << PE_SCHEDULES_JSON << " is not generated in this checkout"

template <class T>
auto bits(T v) {
  if constexpr (sizeof(T) == 8)
    return std::bit_cast<std::uint64_t>(v);
  else
    return std::bit_cast<std::uint32_t>(v);
}

TEST(ScheduleSources, JsonRecordsAreBitIdenticalToCompiled) {
  PE_REQUIRE_TABLES();
  PE_REQUIRE_JSON_TABLES();
  const auto& compiled = pe::detail::compiled_schedules();
  const auto loaded = pe::detail::load_schedules_json(PE_SCHEDULES_JSON);
  ASSERT_EQ(compiled.tables.size(), loaded.tables.size());
  ASSERT_FALSE(compiled.tables.empty());
  for (std::size_t t = 0; t < compiled.tables.size(); ++t) {
    const auto &c = compiled.tables[t], &l = loaded.tables[t];
    ASSERT_EQ(c.p, l.p);
    ASSERT_EQ(c.degree, l.degree);
    EXPECT_EQ(bits(c.eta), bits(l.eta));
    ASSERT_EQ(c.entries.size(), l.entries.size());
    for (std::size_t e = 0; e < c.entries.size(); ++e) {
      const auto &ce = c.entries[e], &le = l.entries[e];
      SCOPED_TRACE("p " + std::to_string(c.p) + " degree " + std::to_string(c.degree) + " entry " + std::to_string(e));
      EXPECT_EQ(bits(ce.l_edge), bits(le.l_edge));
      for (int i = 0; i < pe::kMaxCoefficients; ++i) {
        EXPECT_EQ(bits(ce.coeff_f64[i]), bits(le.coeff_f64[i]));
        EXPECT_EQ(bits(ce.coeff_f32[i]), bits(le.coeff_f32[i]));
      }
      for (auto [x, y] : {std::pair{ce.eps_f64, le.eps_f64}, {ce.image_lo_f64, le.image_lo_f64},
                          {ce.image_hi_f64, le.image_hi_f64}, {ce.eps_f32, le.eps_f32}, {ce.image_lo_f32, le.image_lo_f32},
                          {ce.image_hi_f32, le.image_hi_f32}, {ce.eps_plain, le.eps_plain}, {ce.overshoot, le.overshoot}})
        EXPECT_EQ(bits(x), bits(y));
      EXPECT_EQ(ce.guarded, le.guarded);
    }
  }
}

// The same call with either source gives the same bits, in both dtypes and both apply modes.
TEST(ScheduleSources, ResultsAreBitIdentical) {
  PE_REQUIRE_TABLES();
  PE_REQUIRE_JSON_TABLES();
  const std::int64_t n = 48, k = 3;
  const auto a = pe_test::spd(n, 1e5, Spectrum::spread, 101);
  const auto b = pe_test::random_matrix(n, k, 102);
  const std::vector<float> af(a.begin(), a.end()), bf(b.begin(), b.end());
  for (int p : {1, 2, 3, 4, 5, 7, 8}) {
    pe::Options compiled;
    compiled.p = p;
    compiled.target = 1e-6;
    pe::Options file = compiled;
    file.schedule_source = pe::ScheduleSource::json_file;
    file.schedule_file = PE_SCHEDULES_JSON;
    std::vector<double> x1(a.size()), x2(a.size());
    pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x1, n, n), compiled);
    const pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x2, n, n), file);
    EXPECT_EQ(r.schedules, PE_SCHEDULES_JSON);
    EXPECT_EQ(x1, x2) << "f64 root, p " << p;
    std::vector<float> y1(a.size()), y2(a.size());
    pe::inverse_root(pe_test::view(af, n, n), pe_test::out(y1, n, n), compiled);
    pe::inverse_root(pe_test::view(af, n, n), pe_test::out(y2, n, n), file);
    EXPECT_EQ(y1, y2) << "f32 root, p " << p;
    compiled.mode = file.mode = pe::ApplyMode::direct;
    std::vector<float> z1(bf.size()), z2(bf.size());
    pe::apply_inverse_root(pe_test::view(af, n, n), pe_test::view(bf, n, k), pe_test::out(z1, n, k), compiled);
    pe::apply_inverse_root(pe_test::view(af, n, n), pe_test::view(bf, n, k), pe_test::out(z2, n, k), file);
    EXPECT_EQ(z1, z2) << "f32 direct apply, p " << p;
  }
}

// A small, valid schema-2 document: one (p = 2, degree 2) table whose hashes match its numbers, built from
// records so that a test can break one rule at a time and still hash consistently.
pe::BucketEntry entry(double l_edge, double eps) {
  pe::BucketEntry e{};
  e.l_edge = l_edge;
  const double c[3] = {3.0, -3.0, 1.0};
  for (int i = 0; i < 3; ++i) {
    e.coeff_f64[i] = c[i];
    e.coeff_f32[i] = static_cast<float>(c[i]);
  }
  e.eps_f64 = e.eps_f32 = e.eps_plain = eps;
  e.image_lo_f64 = e.image_lo_f32 = 1 - eps;
  e.image_hi_f64 = e.image_hi_f32 = 1 + eps;
  e.overshoot = 1.0;
  e.guarded = false;
  return e;
}

nlohmann::ordered_json document(const std::vector<pe::BucketEntry>& entries, int degree = 2) {
  using json = nlohmann::ordered_json;
  pe::detail::OwnedBucketTable t{2, degree, 0.01, 0, entries, {}};
  for (std::size_t i = 0; i < entries.size(); ++i) t.text.push_back({"10", std::vector<std::string>(degree + 1, "1.5"), "0.5"});
  json entries_json = json::array();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    json ej;
    pe::for_each_entry_field(entries[i], [&](const char* name, const auto& value, pe::FieldRule) {
      using T = std::remove_cvref_t<decltype(value)>;
      if constexpr (std::is_array_v<T>) {
        json a = json::array();
        for (int k = 0; k <= degree; ++k) a.push_back(static_cast<double>(value[k]));
        ej[name] = a;
      } else {
        ej[name] = value;
      }
    });
    ej["kappa_edge"] = t.text[i].kappa_edge;
    ej["coefficients"] = t.text[i].coefficients;
    ej["eps"] = t.text[i].eps;
    entries_json.push_back(ej);
  }
  const json config = {{"p", {2}}};
  return json{{"schema_version", pe::kScheduleSchemaVersion},
              {"generator", "test"},
              {"config_hash", pe::detail::fnv1a64(config.dump())},
              {"config_name", "test"},
              {"config", config},
              {"digits", 50},
              {"bucket_tables",
               {{{"p", 2},
                 {"degree", degree},
                 {"eta", 0.01},
                 {"content_hash",
                  pe::detail::hash_string(pe::table_content_hash(2, degree, 0.01, entries.data(), entries.size()))},
                 {"text_hash", pe::detail::hash_string(pe::detail::table_text_hash(t))},
                 {"entries", entries_json}}}}};
}
nlohmann::ordered_json small_document() { return document({entry(0.1, 0.3), entry(0.5, 0.1)}); }

void expect_rejected(const nlohmann::ordered_json& doc, const std::string& field) {
  try {
    pe::detail::parse_schedules_json(doc.dump(), "test.json");
    ADD_FAILURE() << "accepted a document with a bad " << field;
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("test.json"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  }
}

TEST(ScheduleLoader, RejectsMalformedFilesNamingTheField) {
  const auto good = small_document();
  const auto set = pe::detail::parse_schedules_json(good.dump(), "test.json");
  ASSERT_EQ(set.tables.size(), 1u);
  EXPECT_EQ(set.tables[0].entries.size(), 2u);
  EXPECT_NE(set.find(2, 2), nullptr);
  EXPECT_EQ(set.find(3, 2), nullptr);

  EXPECT_THROW(pe::detail::parse_schedules_json("{not json", "test.json"), pe::Error);
  auto doc = good;
  doc["schema_version"] = 1;
  expect_rejected(doc, "schema_version");
  doc["schema_version"] = 4294967298ull;  // must not wrap to 2
  expect_rejected(doc, "schema_version");
  doc = good;
  doc.erase("bucket_tables");
  expect_rejected(doc, "bucket_tables");
  doc = good;
  doc["bucket_tables"][0]["entries"][1].erase("eps_f64");
  expect_rejected(doc, "$.bucket_tables[0].entries[1].eps_f64");
  doc = good;
  doc["bucket_tables"][0]["entries"][0]["coeff_f64"] = {1.0, 2.0};
  expect_rejected(doc, "coeff_f64");
  doc = good;
  doc["bucket_tables"][0]["entries"][0]["coeff_f64"][1] = "x";
  expect_rejected(doc, "coeff_f64[1]");
  doc = good;
  doc["bucket_tables"][0]["entries"][0]["eps_f64"] = 1.5;
  expect_rejected(doc, "eps_f64");
  doc = good;
  doc["bucket_tables"][0]["entries"][0]["image_lo_f64"] = 1.1;
  expect_rejected(doc, "image_lo_f64");
  doc = good;
  doc["bucket_tables"][0]["entries"][0]["coeff_f32"][0] = 0.1;  // not a float value
  expect_rejected(doc, "coeff_f32[0]");
  doc = good;
  doc["bucket_tables"][0]["degree"] = 5;
  expect_rejected(doc, "degree");
  doc = good;
  doc["bucket_tables"][0]["entries"] = nlohmann::ordered_json::array();
  expect_rejected(doc, "entries");
  doc = good;
  doc["bucket_tables"][0]["p"] = 2.5;
  expect_rejected(doc, "p");
  doc = good;
  doc["bucket_tables"][0]["entries"][0]["extra"] = 1;
  expect_rejected(doc, "extra");
  // Consistently hashed tables that break a table rule.
  expect_rejected(document({entry(0.5, 0.1), entry(0.1, 0.3)}), "sorted");
  expect_rejected(document({entry(0.1, 0.1), entry(0.5, 0.3)}), "monotone");
  auto unguarded = entry(0.1, 0.3);
  unguarded.eps_plain = 0.2;
  expect_rejected(document({unguarded}), "eps_plain");

  const std::string missing = "/nonexistent/dir/pe_schedules.json";
  EXPECT_THROW(pe::detail::load_schedules_json(missing), pe::Error);
}

// FFTW-style: an edited number or string rejects the file whole, naming it and the hash; so does an
// edited config (config_hash).
TEST(ScheduleLoader, RejectsEditedTablesWhole) {
  auto doc = small_document();
  doc["bucket_tables"][0]["entries"][0]["eps_f64"] = 1e-6;
  doc["bucket_tables"][0]["entries"][0]["eps_f32"] = 1e-6;
  expect_rejected(doc, "content_hash");
  doc = small_document();
  doc["bucket_tables"][0]["entries"][1]["image_lo_f64"] = 0.95;  // a tightened image
  expect_rejected(doc, "content_hash");
  doc = small_document();
  doc["bucket_tables"][0]["entries"][1]["eps"] = "1e-9";
  expect_rejected(doc, "text_hash");
  doc = small_document();
  doc["config"]["p"] = {3};
  expect_rejected(doc, "config_hash");
}

TEST(ScheduleLoader, RefusesADirectoryAndAnInterruptedGenerate) {
  const auto dir = std::filesystem::temp_directory_path() / ("pe_sched_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / pe::detail::kStagingDirName);
  std::ofstream(dir / "pe_schedules.json") << small_document().dump();
  EXPECT_EQ(pe::detail::load_schedules_json((dir / "pe_schedules.json").string()).tables.size(), 1u)
      << "a staging directory without a commit marker does not concern readers";
  std::ofstream(dir / pe::detail::kStagingDirName / pe::detail::kCommitMarkerName) << "pe-synth commit\n";
  try {
    pe::detail::load_schedules_json((dir / "pe_schedules.json").string());
    ADD_FAILURE() << "accepted a half replaced pair";
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("interrupted pe-synth generate"), std::string::npos) << e.what();
  }
  try {
    pe::detail::load_schedules_json(dir.string());
    ADD_FAILURE() << "accepted a directory";
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

// Bucket choice on the small table: the largest edge at or below the current lower end (safe side).
TEST(IntervalTracking, PicksTheSafeBucketAndItsCertifiedImage) {
  const auto set = pe::detail::parse_schedules_json(small_document().dump(), "test.json");
  const auto& table = set.tables[0];
  auto pick = [&](double lo, double hi = 1.0) { return pe::detail::choose_step(table, pe::DType::f64, {lo, hi}); };
  EXPECT_EQ(pick(0.3).entry->l_edge, 0.1);   // 0.3 is in [0.1, 0.5): the 0.1 bucket covers it
  EXPECT_EQ(pick(0.5).entry->l_edge, 0.5);   // exactly on an edge
  EXPECT_EQ(pick(0.9).entry->l_edge, 0.5);
  EXPECT_DOUBLE_EQ(pick(0.9).image.lo, 0.9);  // image of the 0.5 bucket: [0.9, 1.1]
  EXPECT_DOUBLE_EQ(pick(0.9).image.hi, 1.1);
  // Below every edge: the smallest edge, and guard G1 keeps the lower end at least where it was.
  EXPECT_EQ(pick(0.01).entry->l_edge, 0.1);
  EXPECT_DOUBLE_EQ(pick(0.01).image.lo, 0.01);
  // Upper end above 1 (within eta): the image's upper end grows by the certified overshoot (1 here).
  EXPECT_DOUBLE_EQ(pick(0.9, 1.005).image.hi, 1.1);
  EXPECT_THROW(pick(0.9, 1.5), pe::Error);  // beyond eta: not certified
  EXPECT_THROW(pick(0.0), pe::Error);
  // Planning: from [0.3, 1] the 0.1 bucket gives [0.7, 1.3], normalised [0.54, 1] -> the 0.5 bucket: [0.9, 1.1].
  double bound = 0;
  const int steps = pe::detail::steps_to_target(table, pe::DType::f64, {0.3, 1.0}, 0.2, 10, &bound);
  EXPECT_LE(bound, 0.2);
  EXPECT_EQ(steps, 2);
  EXPECT_NEAR(bound, 0.1, 1e-15);
  // An unreachable target: the 0.5 bucket maps [0.82, 1] to [0.9, 1.1] again, so the plan stops at that
  // floor after 2 steps instead of spending the step limit on repeats; the limit still caps it.
  EXPECT_EQ(pe::detail::steps_to_target(table, pe::DType::f64, {0.3, 1.0}, 1e-9, 10, &bound), 2);
  EXPECT_NEAR(bound, 0.1, 1e-15);
  EXPECT_EQ(pe::detail::steps_to_target(table, pe::DType::f64, {0.3, 1.0}, 1e-9, 1, &bound), 1);
  EXPECT_NEAR(bound, 0.3, 1e-15);
}

TEST(IntervalTracking, Float32StorageUsesTheFloatCertificate) {
  PE_REQUIRE_TABLES();
  const auto* table = pe::detail::compiled_schedules().find(2, 2);
  ASSERT_NE(table, nullptr);
  const pe::detail::StepChoice c32 = pe::detail::choose_step(*table, pe::DType::f32, {1e-3, 1.0});
  const pe::detail::StepChoice c64 = pe::detail::choose_step(*table, pe::DType::f64, {1e-3, 1.0});
  ASSERT_EQ(c32.entry, c64.entry);
  for (int i = 0; i < pe::kMaxCoefficients; ++i) EXPECT_EQ(c32.coeff[i], static_cast<double>(c32.entry->coeff_f32[i]));
  for (int i = 0; i < pe::kMaxCoefficients; ++i) EXPECT_EQ(c64.coeff[i], c64.entry->coeff_f64[i]);
  EXPECT_EQ(c32.image.lo, c32.entry->image_lo_f32);
  EXPECT_EQ(c64.image.hi, c64.entry->image_hi_f64);
}

// The runtime's GEMM accounting is the one cost model, spot-checked against hand counts: step 0 needs no
// X product, the last step no residual update; q costs 0/1/2/2 products for degree 1/2/3/4
// (Paterson-Stockmeyer); the direct terminal step is Horner, one skinny product per degree.
TEST(IntervalTracking, GemmCountsMatchTheContract) {
  namespace pd = pe::detail;
  for (int p : {1, 2, 3, 4, 5, 6, 8})
    for (int degree = 1; degree <= pe::kMaxDegree; ++degree)
      for (int steps = 1; steps <= 8; ++steps) {
        const int q = degree == 1 ? 0 : degree == 2 ? 1 : 2;
        EXPECT_EQ(pd::materialize_gemms(p, degree, 0, steps), pe::schedule_gemms(p, degree, steps));
        EXPECT_EQ(pe::schedule_gemms(p, degree, steps), steps * q + (steps - 1) + (steps - 1) * pd::residual_update_gemms(p));
        EXPECT_EQ(pd::direct_gemms(p, degree, steps), (steps - 1) * (q + 1 + pd::residual_update_gemms(p)) + degree);
      }
  // p = 2 sandwich q Y q is 2 products; p = 4 adds q^2 (1); p = 8 q^2, q^4 (2); odd p one more.
  EXPECT_EQ(pd::residual_update_gemms(1), 1);
  EXPECT_EQ(pd::residual_update_gemms(2), 2);
  EXPECT_EQ(pd::residual_update_gemms(3), 3);
  EXPECT_EQ(pd::residual_update_gemms(4), 3);
  EXPECT_EQ(pd::residual_update_gemms(5), 4);
  EXPECT_EQ(pd::residual_update_gemms(8), 4);
}

// A set compiled into the binary (ScheduleSource::embedded) is validated like the others and gives the
// same bits as the built-in set; a set whose numbers do not match its hash is refused whole.
TEST(ScheduleSources, EmbeddedSetIsValidatedAndBitIdenticalToCompiled) {
  PE_REQUIRE_TABLES();
  const std::int64_t n = 32;
  const auto a = pe_test::spd(n, 1e4, Spectrum::spread, 7);
  pe::Options compiled;
  compiled.p = 3;
  compiled.target = 1e-6;
  pe::Options embedded = compiled;
  embedded.schedule_source = pe::ScheduleSource::embedded;
  embedded.embedded_schedules = &pe::generated::kScheduleSet;
  std::vector<double> x1(a.size()), x2(a.size());
  pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x1, n, n), compiled);
  const pe::Report r = pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x2, n, n), embedded);
  EXPECT_EQ(r.schedules, "embedded");
  EXPECT_EQ(x1, x2);

  embedded.embedded_schedules = nullptr;
  EXPECT_THROW(pe::inverse_root(pe_test::view(a, n, n), pe_test::out(x2, n, n), embedded), pe::Error);

  static std::vector<pe::BucketEntry> edited(pe::generated::kBucketTables[0].entries,
                                             pe::generated::kBucketTables[0].entries + pe::generated::kBucketTables[0].count);
  edited[3].eps_f64 /= 2;
  static pe::BucketTable table = pe::generated::kBucketTables[0];
  table.entries = edited.data();
  static const pe::CompiledScheduleSet tampered{pe::kScheduleSchemaVersion, "test", "fnv1a64:0000000000000000", &table, 1};
  EXPECT_FALSE(pe::schedule_set_intact(tampered));
  try {
    pe::detail::embedded_schedules(tampered);
    ADD_FAILURE() << "accepted an edited compiled set";
  } catch (const pe::Error& e) {
    EXPECT_NE(std::string(e.what()).find("content_hash"), std::string::npos) << e.what();
  }
}

}  // namespace
