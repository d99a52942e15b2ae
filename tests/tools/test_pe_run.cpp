// pe-run root / apply end to end: .npy in and out, the --json report, and clear failures (non-zero exit,
// one-line message naming the file, no output file) on malformed or mismatched input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "npy.hpp"
#include "npy_test_support.hpp"
#include "reference.hpp"

namespace {

namespace fs = std::filesystem;

std::vector<double> transpose(const std::vector<double>& a, std::int64_t rows, std::int64_t cols) {
  std::vector<double> t(a.size());
  for (std::int64_t j = 0; j < cols; ++j)
    for (std::int64_t i = 0; i < rows; ++i) t[static_cast<std::size_t>(i * cols + j)] = a[static_cast<std::size_t>(i + j * rows)];
  return t;
}

using pe_npy_test::npy_bytes;

class PeRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pe_run_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write_raw(const std::string& name, const std::string& bytes) const {
    std::ofstream(path(name), std::ios::binary) << bytes;
  }
  // Column-major `a` as a C-order float64 or float32 file.
  void write(const std::string& name, const std::vector<double>& a, std::int64_t rows, std::int64_t cols,
             pe::DType dtype = pe::DType::f64) const {
    pe_run::write_npy(path(name), rows, cols, dtype, transpose(a, rows, cols));
  }
  std::vector<double> read(const std::string& name, std::int64_t* rows = nullptr, std::int64_t* cols = nullptr) const {
    const pe_run::NpyArray arr = pe_run::read_npy(path(name));
    if (rows) *rows = arr.rows;
    if (cols) *cols = arr.cols;
    return transpose(arr.data, arr.cols, arr.rows);
  }
  int run(const std::string& args) const {
    const std::string cmd = std::string(PE_RUN) + " " + args + " > " + path("stdout.txt") + " 2> " + path("stderr.txt");
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string slurp(const std::string& name) const {
    std::ifstream in(path(name), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // A failed run: exit status 1 (an error pe-run reports, not a crash), one line on stderr that mentions
  // `fragment`, and no output file.
  void expect_failure(const std::string& args, const std::string& fragment, const std::string& out = "out.npy") {
    SCOPED_TRACE(args);
    EXPECT_EQ(run(args), 1);
    const std::string err = slurp("stderr.txt");
    EXPECT_NE(err.find(fragment), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_FALSE(fs::exists(path(out))) << "an output file was written";
    for (const auto& entry : fs::directory_iterator(dir_))
      EXPECT_EQ(entry.path().filename().string().find(".tmp"), std::string::npos) << "left a temporary file";
  }

  fs::path dir_;
};

TEST_F(PeRun, RootWritesXAndReportsJson) {
  const std::int64_t n = 40;
  const auto a = pe::reference::random_spd(pe::reference::make_spectrum(n, 1e4, pe::reference::Spectrum::spread), 1);
  write("a.npy", a, n, n);
  ASSERT_EQ(run("root --p 2 --in " + path("a.npy") + " --out " + path("x.npy") + " --target 1e-8 --json"), 0)
      << slurp("stderr.txt");
  const auto report = nlohmann::json::parse(slurp("stdout.txt"));
  for (const char* field : {"steps", "gemms", "final_eps", "intervals", "fallback", "seconds"})
    EXPECT_TRUE(report.contains(field)) << field;
  EXPECT_GE(report["steps"].get<int>(), 1);
  EXPECT_EQ(report["intervals"].size(), report["steps"].get<std::size_t>());
  EXPECT_GT(report["gemms"].get<int>(), 0);
  EXPECT_LE(report["final_eps"].get<double>(), 1e-8);
  EXPECT_FALSE(report["fallback"].get<bool>());
  EXPECT_GE(report["seconds"].get<double>(), 0);
  std::int64_t rows = 0, cols = 0;
  const auto x = read("x.npy", &rows, &cols);
  EXPECT_EQ(rows, n);
  EXPECT_EQ(cols, n);
  // Tracked bound 1e-8 on X^2 A - I: X within 1e-8 / 2 relative, plus fp64 rounding (kappa 1e4).
  EXPECT_LT(pe::reference::relative_error(x, pe::reference::inverse_root(a, n, 2)), 1e-8);
  EXPECT_NE(slurp("x.npy").find("'descr': '<f8'"), std::string::npos);

  // Without --json: a one-line human summary.
  ASSERT_EQ(run("root --p 3 --in " + path("a.npy") + " --out " + path("x3.npy")), 0) << slurp("stderr.txt");
  EXPECT_NE(slurp("stdout.txt").find("steps"), std::string::npos);
}

TEST_F(PeRun, Float32InputGivesFloat32Output) {
  const std::int64_t n = 24;
  const auto a = pe::reference::random_spd(pe::reference::make_spectrum(n, 100, pe::reference::Spectrum::spread), 2);
  write("a32.npy", a, n, n, pe::DType::f32);
  ASSERT_EQ(run("root --p 4 --in " + path("a32.npy") + " --out " + path("x.npy") + " --json"), 0) << slurp("stderr.txt");
  EXPECT_NE(slurp("x.npy").find("'descr': '<f4'"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(slurp("stdout.txt"))["storage"], "f32");
  const auto a32 = read("a32.npy");  // the matrix as fp32 stored it
  // Default target 1e-3: X within 1e-3 / 4 relative, fp32 rounding far below that.
  EXPECT_LT(pe::reference::relative_error(read("x.npy"), pe::reference::inverse_root(a32, n, 4)), 1e-3 / 4 + 1e-4);
  // --dtype f64 overrides: iterate and write in double.
  ASSERT_EQ(run("root --p 4 --in " + path("a32.npy") + " --out " + path("x64.npy") + " --dtype f64"), 0);
  EXPECT_NE(slurp("x64.npy").find("'descr': '<f8'"), std::string::npos);
}

TEST_F(PeRun, ApplyWritesZInBothModes) {
  const std::int64_t n = 50, k = 3;
  const auto a = pe::reference::random_spd(pe::reference::make_spectrum(n, 1e3, pe::reference::Spectrum::spread), 3);
  std::vector<double> b(static_cast<std::size_t>(n * k));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = std::sin(0.37 * static_cast<double>(i));
  write("a.npy", a, n, n);
  write("b.npy", b, n, k);
  const auto z_ref = pe::reference::multiply(pe::reference::inverse_root(a, n, 2), b, n, n, k);
  for (const std::string mode : {"direct", "materialize", "auto"}) {
    ASSERT_EQ(run("apply --p 2 --in " + path("a.npy") + " --rhs " + path("b.npy") + " --out " + path("z.npy") +
                  " --mode " + mode + " --target 1e-8 --json"),
              0)
        << slurp("stderr.txt");
    const auto report = nlohmann::json::parse(slurp("stdout.txt"));
    if (mode != "auto") {
      EXPECT_EQ(report["mode"], mode);
    }
    std::int64_t rows = 0, cols = 0;
    const auto z = read("z.npy", &rows, &cols);
    EXPECT_EQ(rows, n);
    EXPECT_EQ(cols, k);
    EXPECT_LT(pe::reference::relative_error(z, z_ref), 1e-8) << mode;
  }
}

TEST_F(PeRun, SchedulesFromJsonGiveTheSameBytes) {
  if (!fs::exists(PE_SCHEDULES_JSON)) GTEST_SKIP() << PE_SCHEDULES_JSON << " is not generated in this checkout";
  const std::int64_t n = 30;
  const auto a = pe::reference::random_spd(pe::reference::make_spectrum(n, 1e5, pe::reference::Spectrum::spread), 4);
  write("a.npy", a, n, n, pe::DType::f32);
  ASSERT_EQ(run("root --p 2 --in " + path("a.npy") + " --out " + path("x1.npy")), 0) << slurp("stderr.txt");
  ASSERT_EQ(run("root --p 2 --in " + path("a.npy") + " --out " + path("x2.npy") + " --schedules " + PE_SCHEDULES_JSON),
            0)
      << slurp("stderr.txt");
  EXPECT_EQ(slurp("x1.npy"), slurp("x2.npy"));
  write_raw("bad.json", "{\"schema_version\": 7}");
  expect_failure("root --p 2 --in " + path("a.npy") + " --out " + path("out.npy") + " --schedules " + path("bad.json"),
                 "schema_version");
}

TEST_F(PeRun, MalformedOrMismatchedInputFailsCleanly) {
  const std::int64_t n = 4;
  const auto a = pe::reference::random_spd(pe::reference::make_spectrum(n, 10, pe::reference::Spectrum::spread), 5);
  write("a.npy", a, n, n);
  std::string payload(reinterpret_cast<const char*>(transpose(a, n, n).data()), sizeof(double) * 16);
  const std::string out = " --out " + path("out.npy");

  expect_failure("root --p 2 --in " + path("missing.npy") + out, "missing.npy");
  write_raw("magic.npy", "NOTNUMPY" + payload);
  expect_failure("root --p 2 --in " + path("magic.npy") + out, "magic.npy");
  write_raw("short.npy", npy_bytes("<f8", "4, 4", false, payload.substr(0, 50)));
  expect_failure("root --p 2 --in " + path("short.npy") + out, "short.npy");
  write_raw("int.npy", npy_bytes("<i4", "4, 4", false, payload.substr(0, 64)));
  expect_failure("root --p 2 --in " + path("int.npy") + out, "<i4");
  write_raw("big_endian.npy", npy_bytes(">f8", "4, 4", false, payload));
  expect_failure("root --p 2 --in " + path("big_endian.npy") + out, ">f8");
  write_raw("fortran.npy", npy_bytes("<f8", "4, 4", true, payload));
  expect_failure("root --p 2 --in " + path("fortran.npy") + out, "Fortran");
  write_raw("three_d.npy", npy_bytes("<f8", "2, 2, 4", false, payload));
  expect_failure("root --p 2 --in " + path("three_d.npy") + out, "2-D");
  write_raw("rect.npy", npy_bytes("<f8", "2, 8", false, payload));
  expect_failure("root --p 2 --in " + path("rect.npy") + out, "not square");

  // Content the library rejects: not symmetric, NaN, not positive definite.
  auto bad = a;
  bad[1] += 0.5;
  write("asym.npy", bad, n, n);
  expect_failure("root --p 2 --in " + path("asym.npy") + out, "not symmetric");
  bad = a;
  bad[5] = std::nan("");
  write_raw("nan.npy", pe_npy_test::npy_f64(bad, n, n));
  expect_failure("root --p 2 --in " + path("nan.npy") + out, "finite");
  auto w = pe::reference::make_spectrum(n, 10, pe::reference::Spectrum::spread);
  w[0] = -0.5;
  write("indefinite.npy", pe::reference::random_spd(w, 6), n, n);
  expect_failure("root --p 2 --in " + path("indefinite.npy") + out, "not positive definite");

  // apply: right-hand side with the wrong row count.
  write("b.npy", std::vector<double>(10, 1.0), 5, 2);
  expect_failure("apply --p 2 --in " + path("a.npy") + " --rhs " + path("b.npy") + out, "rows");
  // Options: p out of range (the parser), diagonal preconditioner with p > 1 (the library).
  EXPECT_NE(run("root --p 0 --in " + path("a.npy") + out), 0);
  EXPECT_FALSE(fs::exists(path("out.npy")));
  expect_failure("root --p 2 --precond jacobi --in " + path("a.npy") + out, "jacobi");

  // An existing output file is left as it was when the run fails.
  write_raw("keep.npy", "previous contents");
  EXPECT_NE(run("root --p 2 --in " + path("nan.npy") + " --out " + path("keep.npy")), 0);
  EXPECT_EQ(slurp("keep.npy"), "previous contents");
}

// --compute: bf16/f16 set the iteration's storage (emulated on the CPU) while the output keeps the input's
// dtype; tf32 sets TF32 products on f32 storage. With every step in the format (--elevated-steps 0) the
// error is the format's.
TEST_F(PeRun, ComputeSelectsTheEmulatedFormats) {
  const std::int64_t n = 32;
  const auto a = pe::reference::random_spd(pe::reference::make_spectrum(n, 100, pe::reference::Spectrum::spread), 5);
  write("a32.npy", a, n, n, pe::DType::f32);
  const auto ref = pe::reference::inverse_root(read("a32.npy"), n, 2);
  for (const std::string compute : {"bf16", "f16", "tf32"}) {
    SCOPED_TRACE(compute);
    // A target far below these formats' floor, so that the error is the format's, not the target's.
    ASSERT_EQ(run("root --p 2 --in " + path("a32.npy") + " --out " + path("x.npy") + " --target 1e-6 --compute " +
                  compute + " --elevated-steps 0 --json"),
              0)
        << slurp("stderr.txt");
    const auto report = nlohmann::json::parse(slurp("stdout.txt"));
    EXPECT_EQ(report["storage"], compute == "tf32" ? "f32" : compute);
    // Verified like every root (the bound holds for these formats too), and the target is below their floor.
    EXPECT_TRUE(report["certified"].get<bool>());
    EXPECT_FALSE(report["target_reached"].get<bool>());
    EXPECT_NE(slurp("x.npy").find("'descr': '<f4'"), std::string::npos);
    const auto x = read("x.npy");
    // bf16 storage: every returned value is a bf16 value (the low 16 bits of its f32 pattern are zero).
    if (compute == "bf16") {
      for (double v : x) ASSERT_EQ(std::bit_cast<std::uint32_t>(static_cast<float>(v)) & 0xffffu, 0u) << v;
    }
    // The error is the format's (unit roundoff u = 2^-8 for bf16, 2^-11 for f16 and tf32): measured 2 u to
    // 4 u at kappa 1e2 (tests/runtime/test_emulated_formats.cpp has the runtime's own bounds). Above u / 8
    // it cannot be an f32 run (about 1e-6 here); below 32 u it is the format working as intended.
    const double u = compute == "bf16" ? std::ldexp(1.0, -8) : std::ldexp(1.0, -11);
    const double err = pe::reference::relative_error(x, ref);
    EXPECT_LT(err, 32 * u);
    EXPECT_GT(err, u / 8);
  }
  expect_failure("root --p 2 --in " + path("a32.npy") + " --out " + path("out.npy") + " --compute tf32 --dtype f64",
                 "needs f32 storage");
  EXPECT_NE(run("root --p 2 --in " + path("a32.npy") + " --out " + path("out.npy") + " --compute f8"), 0);
}

// Valid SPD matrices whose spectrum is wider than double can normalise (once a segfault in root, apply
// and solve): a one-line error that names the diagonal's span and what would work instead.
TEST_F(PeRun, SpectrumWiderThanDoubleFailsCleanly) {
  write("diag.npy", {1e308, 0, 0, 1e-20}, 2, 2);
  write("mixed.npy", {1e300, 0, 0, 0, 1e-300, 1e-301, 0, 1e-301, 1e-300}, 3, 3);
  write("b2.npy", {1, 1}, 2, 1);
  write("b3.npy", {1, 1, 1}, 3, 1);
  const std::string out = " --out " + path("out.npy");
  for (const auto& [a, b] : {std::pair{"diag.npy", "b2.npy"}, std::pair{"mixed.npy", "b3.npy"}}) {
    expect_failure("root --p 2 --in " + path(a) + out, "the diagonal spans");
    expect_failure("apply --p 2 --in " + path(a) + " --rhs " + path(b) + out, "the diagonal spans");
    expect_failure("solve --in " + path(a) + " --rhs " + path(b) + out, "precond jacobi");
  }
}

// Every malformed header is an error that names the file, what it holds and what was expected: once
// shape (2^32, 2^32) overflowed the byte count ("data pointer is null"), (2^31, 2^31) asked for 2^62
// doubles ("vector::_M_default_append"), long digits threw "stoll", (-4, -4) read as "not 2-D" and a
// structured dtype as "header has no 'descr'".
TEST(Npy, MalformedHeadersAreNamed) {
  const std::string payload(32, '\0');  // 2 x 2 float64
  struct Case {
    std::string what, bytes, fragment;
  };
  auto header = [](const std::string& dict) {
    std::string h = dict;
    while ((10 + h.size() + 1) % 64 != 0) h += ' ';
    h += '\n';
    return std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(h.size() & 0xff) + static_cast<char>(h.size() >> 8) + h;
  };
  const std::vector<Case> cases = {
      {"shape 2^32", npy_bytes("<f8", "4294967296, 4294967296", false, payload), "(4294967296, 4294967296)"},
      {"shape 2^31", npy_bytes("<f8", "2147483648, 2147483648", false, payload), "holds 32 data bytes, expected more than 2^64"},
      {"long digits", npy_bytes("<f8", "99999999999999999999999, 2", false, payload), "is too large"},
      {"negative", npy_bytes("<f8", "-4, -4", false, payload), "shape (-4, -4) has a negative dimension"},
      {"1-D", npy_bytes("<f8", "4,", false, payload), "shape (4,) has 1 dimension(s); expected a 2-D matrix"},
      {"3-D", npy_bytes("<f8", "2, 2, 1", false, payload), "has 3 dimension(s)"},
      {"empty", npy_bytes("<f8", "0, 2", false, ""), "is empty; expected at least 1 x 1"},
      {"structured", header("{'descr': [('a', '<f8'), ('b', '<f4')], 'fortran_order': False, 'shape': (2, 2), }") + payload,
       "is a structured dtype"},
      {"truncated data", npy_bytes("<f8", "2, 2", false, payload.substr(0, 20)), "holds 20 data bytes, expected 32"},
      {"padded data", npy_bytes("<f8", "2, 2", false, payload + "x"), "holds 33 data bytes, expected 32"},
      {"magic", "NOTNUMPY" + payload, "is not a .npy file"},
      {"version", std::string("\x93NUMPY\x09\x00", 8) + payload, "format version 9.0"},
      {"header length", std::string("\x93NUMPY\x01\x00\xff\x7f", 10) + "{}", "is truncated: the header claims 32767 bytes"},
      {"preamble", std::string("\x93NUMPY\x02\x00\x01", 9), "truncated inside its header length"},
      {"fortran", npy_bytes("<f8", "2, 2", true, payload), "Fortran order"},
      {"big-endian", npy_bytes(">f8", "2, 2", false, payload), "'>f8' is big-endian"},
      {"integer dtype", npy_bytes("<i8", "2, 2", false, payload), "dtype '<i8' is not supported"},
      {"missing key", header("{'fortran_order': False, 'shape': (2, 2), }") + payload, "header has no 'descr'"},
      {"extra key", header("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), 'x': 1}") + payload,
       "header key 'x' is not one of"},
      {"duplicate key", header("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)}") + payload,
       "appears twice"},
      {"not a dict", header("['descr']") + payload, "the header is not a dict"},
      {"open string", header("{'descr: '<f8'") + payload, "header is not a valid .npy header"},
      {"deep nesting", header("{'descr': " + std::string(200, '[')) + payload, "nested deeper than"},
      // A corrupt key (found by the bad-input corpus) is quoted with its control bytes escaped: one line.
      {"control bytes", header("{'de\nscr\x01\x93': '<f8', 'fortran_order': False, 'shape': (2, 2)}") + payload,
       "header key 'de\\x0ascr\\x01\\x93' is not one of"},
      {"long key", header("{'" + std::string(300, 'k') + "': 1}") + payload, "header key '" + std::string(80, 'k') + "...'"},
      {"shape not a tuple", header("{'descr': '<f8', 'fortran_order': False, 'shape': [2, 2]}") + payload, "is not a tuple"},
      {"fortran not a bool", header("{'descr': '<f8', 'fortran_order': 0, 'shape': (2, 2)}") + payload,
       "'fortran_order' is 0; expected True or False"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    try {
      pe_run::parse_npy(c.bytes, "file.npy");
      ADD_FAILURE() << "accepted";
    } catch (const pe::Error& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("file.npy: ", 0), 0u) << message;
      EXPECT_NE(message.find(c.fragment), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
  }
  // What NumPy writes parses: version 1 and 2 headers, float32 and float64, spacing and a trailing comma.
  const pe_run::NpyArray ok = pe_run::parse_npy(npy_bytes("<f8", "2, 2", false, payload), "ok.npy");
  EXPECT_EQ(ok.rows, 2);
  EXPECT_EQ(ok.cols, 2);
  std::string v2 = header("{'descr':'<f4','fortran_order':False,'shape':(1,3)}") + std::string(12, '\0');
  v2[6] = '\x02';
  v2.insert(10, std::string("\0\0", 2));  // version 2: a 4-byte header length
  const pe_run::NpyArray ok2 = pe_run::parse_npy(v2, "v2.npy");
  EXPECT_EQ(ok2.dtype, pe::DType::f32);
  EXPECT_EQ(ok2.cols, 3);
}

// write_npy refuses values it cannot write exactly (NaN, Inf, beyond float32) and leaves nothing behind.
TEST(Npy, WriteRefusesNonFiniteValues) {
  const fs::path dir = fs::temp_directory_path() / ("pe_npy_write_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "z.npy").string();
  const std::vector<std::pair<pe::DType, double>> refused = {
      {pe::DType::f64, INFINITY}, {pe::DType::f64, NAN}, {pe::DType::f32, 1e39}};
  for (const auto& [dtype, value] : refused) {
    try {
      pe_run::write_npy(path, 2, 2, dtype, {1.0, 2.0, value, 4.0});
      ADD_FAILURE() << "wrote " << value;
    } catch (const pe::Error& e) {
      EXPECT_NE(std::string(e.what()).find("entry (1, 0)"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("nothing was written"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(fs::is_empty(dir));
  }
  fs::remove_all(dir);
}

// The CLI: a directory or an impossible shape is one line naming the path, exit status 1, no output.
TEST_F(PeRun, UnreadableInputsNameThePath) {
  const std::string out = " --out " + path("out.npy");
  fs::create_directories(path("dir.npy"));
  expect_failure("root --p 2 --in " + path("dir.npy") + out, "dir.npy: is a directory; expected a .npy file");
  write_raw("huge.npy", npy_bytes("<f8", "4294967296, 4294967296", false, std::string(32, '\0')));
  expect_failure("root --p 2 --in " + path("huge.npy") + out, "huge.npy: holds 32 data bytes");
  write_raw("a.npy", npy_bytes("<f8", "2, 2", false, std::string(32, '\0')));
  expect_failure("apply --p 2 --in " + path("a.npy") + " --rhs " + path("dir.npy") + out, "dir.npy: is a directory");
  expect_failure("solve --in " + path("a.npy") + " --rhs " + path("missing.npy") + out,
                 "missing.npy: cannot be opened (No such file or directory)");
}

// Every pe::Options field a user would set has a flag, and the flag reaches the library: the report
// (or, for the two knobs the report does not show, the bits of X) says so.
TEST_F(PeRun, OptionFlagsReachTheLibrary) {
  const std::int64_t n = 30, k = 2;
  const auto a = pe::reference::random_spd(pe::reference::make_spectrum(n, 100, pe::reference::Spectrum::spread), 7);
  write("a.npy", a, n, n);
  write("b.npy", std::vector<double>(static_cast<std::size_t>(n * k), 1.0), n, k);
  const std::string io = " --in " + path("a.npy") + " --out " + path("x.npy") + " --json";
  auto report = [&](const std::string& args) {
    EXPECT_EQ(run(args), 0) << args << "\n" << slurp("stderr.txt");
    return nlohmann::json::parse(slurp("stdout.txt"));
  };
  EXPECT_LE(report("root --p 2 --target 0 --max-steps 2" + io)["steps"].get<int>(), 2);
  EXPECT_EQ(report("root --p 2 --degree 1" + io)["degree"], 1);
  const auto ridge = report("root --p 2 --ridge 0.5" + io);
  EXPECT_EQ(ridge["ridge"], 0.5);
  EXPECT_TRUE(ridge["matrix_changed"].get<bool>());
  EXPECT_GT(report("root --p 2 --l-target 0.5" + io)["shift"][0].get<double>(), 0);
  EXPECT_EQ(report("root --p 2 --lambda-min-hint 1e-3" + io)["l0_source"], "lambda_min_hint");
  EXPECT_EQ(report("root --p 2 --kappa-hint 200" + io)["l0_source"], "kappa_hint");
  EXPECT_EQ(report("root --p 2 --precond none" + io)["precond"], "none");
  EXPECT_EQ(report("apply --p 2 --rhs " + path("b.npy") + " --reuse-count 1000" + io)["mode"], "materialize");
  // Symmetrisation cadence and trace renormalisation change the rounding, so the bits of X (a target deep
  // enough for the schedule to reach the band near 1 where renormalisation applies).
  const std::string plain = (report("root --p 2 --target 1e-12" + io), slurp("x.npy"));
  for (const char* knob : {" --symmetrize-every 0", " --renormalize"}) {
    report(std::string("root --p 2 --target 1e-12") + knob + io);
    EXPECT_NE(slurp("x.npy"), plain) << knob;
  }
  // A symmetry tolerance of 0 refuses a last-bit asymmetry that the default (100 unit roundoffs) accepts.
  auto skew = a;
  skew[1] = std::nextafter(skew[1], 10.0);
  write("skew.npy", skew, n, n);
  EXPECT_EQ(run("root --p 2 --in " + path("skew.npy") + " --out " + path("x.npy")), 0) << slurp("stderr.txt");
  expect_failure("root --p 2 --symmetry-tolerance 0 --in " + path("skew.npy") + " --out " + path("out.npy"),
                 "not symmetric");
  // Solve and Gram options: preconditioner, hints, the polar stop and the degree reach their reports.
  const std::string sio = " --in " + path("a.npy") + " --rhs " + path("b.npy") + " --out " + path("x.npy") + " --json";
  EXPECT_EQ(report("solve --precond jacobi" + sio)["inverse"]["precond"], "jacobi");
  EXPECT_EQ(report("solve --lambda-min-hint 1e-3" + sio)["inverse"]["l0_source"], "lambda_min_hint");
  EXPECT_EQ(report("solve --general --polar-target 0.9" + sio)["polar_bound"].get<double>() <= 0.9, true);
  const auto gram = report("gram-apply --p 2 --degree 1 --kappa-hint 1e4" + sio);
  EXPECT_EQ(gram["root"]["degree"], 1);
  EXPECT_EQ(gram["root"]["l0_source"], "kappa_hint");
}

// Bad option values are refused by the parser with the value and what was expected, numbers short
// (CLI11's own range check printed the largest double in 309 digits).
TEST_F(PeRun, OptionValuesAreValidatedWithReadableMessages) {
  write("a.npy", {2, 0, 0, 2}, 2, 2);
  const std::string io = " --in " + path("a.npy") + " --out " + path("out.npy");
  struct Case {
    std::string args, message;
  };
  for (const Case& c : std::vector<Case>{
           {"root --p 2 --max-gemms -1", "--max-gemms: got '-1'; expected an integer in [0, 1073741824]"},
           {"root --p 2 --target nan", "--target: got nan; expected 0 or a value in (0, 1)"},
           {"root --p 2 --target 1", "--target: got 1; expected 0 or a value in (0, 1)"},
           {"root --p 2 --ridge 1e400", "--ridge: got 1e400, which overflows a double"},
           {"root --p 2 --kappa-hint 0.5", "--kappa-hint: got 0.5; expected 0 (off) or a finite value >= 1"},
           {"root --p 2 --l-target 1", "--l-target: got 1; expected a value in [0, 1)"},
           {"root --p 2 --degree 3", "--degree: got '3'; expected an integer in [0, 2]"},
           {"root --p 2 --symmetrize-every x", "--symmetrize-every: got 'x'"},
           {"root --p 2 --lambda-min-hint -1", "--lambda-min-hint: got -1; expected a finite value >= 0"},
           {"root --p 2 --precond nonsense", "--precond: nonsense not in {none,frobenius,jacobi,ruiz,aol}"},
           {"solve --rhs " + path("a.npy") + " --polar-target 0", "--polar-target: got 0; expected a value in (0, 1)"},
           {"gram-apply --p 2 --rhs " + path("a.npy") + " --lambda -1", "--lambda: got -1; expected a finite value >= 0"},
       }) {
    SCOPED_TRACE(c.args);
    EXPECT_NE(run(c.args + io), 0);
    const std::string err = slurp("stderr.txt");
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
    EXPECT_LT(err.size(), 200u) << err;
    EXPECT_FALSE(fs::exists(path("out.npy")));
  }
  // target 0 needs a budget: the message names the two budgets, both of which pe-run has flags for.
  expect_failure("root --p 2 --target 0" + io, "max_steps");
  EXPECT_EQ(run("root --p 2 --target 0 --max-steps 1" + io), 0) << slurp("stderr.txt");
}

}  // namespace

