// pe-run solve / gram-apply / bench-solve end to end: .npy in, .npy out, exit codes, no output on error.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "npy.hpp"
#include "npy_test_support.hpp"
#include "solve_test_support.hpp"

namespace {

using namespace pe_solve_test;
namespace fs = std::filesystem;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pe_solve_cli_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // Column-major `a` (rows x cols) written in C order.
  void write(const std::string& name, const std::vector<double>& a, std::int64_t rows, std::int64_t cols) const {
    pe_run::write_npy(path(name), rows, cols, pe::DType::f64, transpose(a, rows, cols));
  }
  // Read back as column-major.
  std::vector<double> read(const std::string& name) const {
    const pe_run::NpyArray arr = pe_run::read_npy(path(name));
    return transpose(arr.data, arr.cols, arr.rows);
  }

  // Runs pe-run with `args`; stdout goes to `stdout_file` in the test folder. Returns the exit status.
  int run(const std::string& args, const std::string& stdout_file = "stdout.txt") const {
    std::string cmd = std::string(PE_RUN) + " " + args;
    if (const char* s = std::getenv("PE_SOLVE_TEST_SCHEDULES"); s && *s)
      cmd += std::string(" --schedules ") + s;
    cmd += " > " + path(stdout_file) + " 2> " + path("stderr.txt");
    const int status = std::system(cmd.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string slurp(const std::string& name) const {
    std::FILE* f = std::fopen(path(name).c_str(), "rb");
    if (!f) return {};
    std::string s;
    char buf[4096];
    for (std::size_t got; (got = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, got);
    std::fclose(f);
    return s;
  }

  fs::path dir_;
};

TEST_F(Cli, SolveDetectsStructureAndWritesX) {
  const std::int64_t n = 48, k = 2;
  const std::vector<double> spd_a = spd(n, 1e3, 1), gen_a = general(n, 1e3, 2), b = pe::reference::random_gaussian(n, k, 3);
  write("spd.npy", spd_a, n, n);
  write("gen.npy", gen_a, n, n);
  write("b.npy", b, n, k);
  ASSERT_EQ(run("solve --in " + path("spd.npy") + " --rhs " + path("b.npy") + " --out " + path("x.npy") +
                " --target 1e-9 --json"),
            0)
      << slurp("stderr.txt");
  EXPECT_NE(slurp("stdout.txt").find("\"method\":\"spd\""), std::string::npos) << slurp("stdout.txt");
  EXPECT_LE(pe::reference::relative_residual(spd_a, read("x.npy"), b, n, k), 1e-9);
  ASSERT_EQ(run("solve --in " + path("gen.npy") + " --rhs " + path("b.npy") + " --out " + path("x2.npy") +
                " --target 1e-9 --json"),
            0)
      << slurp("stderr.txt");
  EXPECT_NE(slurp("stdout.txt").find("\"method\":\"polar\""), std::string::npos) << slurp("stdout.txt");
  EXPECT_LE(pe::reference::relative_residual(gen_a, read("x2.npy"), b, n, k), 1e-9);
  // Forced general on an SPD matrix takes the polar path and still solves it.
  ASSERT_EQ(run("solve --general --in " + path("spd.npy") + " --rhs " + path("b.npy") + " --out " + path("x3.npy") +
                " --target 1e-9 --max-gemms 200"),
            0)
      << slurp("stderr.txt");
  EXPECT_NE(slurp("stdout.txt").find("method polar"), std::string::npos) << slurp("stdout.txt");
  EXPECT_LE(pe::reference::relative_residual(spd_a, read("x3.npy"), b, n, k), 1e-9);
}

TEST_F(Cli, SolveErrorsLeaveNoOutput) {
  const std::int64_t n = 16, k = 1;
  std::vector<double> a = spd(n, 10, 1);
  const std::vector<double> b = pe::reference::random_gaussian(n, k, 3);
  write("b.npy", b, n, k);
  a[3] = std::nan("");
  std::ofstream(path("nan.npy"), std::ios::binary) << pe_npy_test::npy_f64(a, n, n);
  EXPECT_EQ(run("solve --in " + path("nan.npy") + " --rhs " + path("b.npy") + " --out " + path("x.npy")), 1);
  EXPECT_NE(slurp("stderr.txt").find("a: entry"), std::string::npos) << slurp("stderr.txt");
  EXPECT_FALSE(fs::exists(path("x.npy")));
  EXPECT_EQ(run("solve --in " + path("missing.npy") + " --rhs " + path("b.npy") + " --out " + path("x.npy")), 1);
  EXPECT_FALSE(fs::exists(path("x.npy")));
  write("a.npy", spd(n, 10, 1), n, n);
  write("short.npy", std::vector<double>(b.begin(), b.end() - 1), n - 1, k);  // one row short
  EXPECT_EQ(run("solve --in " + path("a.npy") + " --rhs " + path("short.npy") + " --out " + path("x.npy")), 1);
  EXPECT_NE(slurp("stderr.txt").find("rows"), std::string::npos) << slurp("stderr.txt");
  EXPECT_FALSE(fs::exists(path("x.npy")));
  EXPECT_NE(run("solve --spd --general --in " + path("a.npy") + " --rhs " + path("b.npy") + " --out " + path("y.npy")), 0);
  EXPECT_FALSE(fs::exists(path("y.npy")));
}

// --device cuda: the same commands on the GPU where there is one; elsewhere a one-line error from the
// backend and no output file.
TEST_F(Cli, DeviceCudaSolvesOnTheGpuOrFailsCleanly) {
  const std::int64_t n = 16, k = 1;
  const std::vector<double> a = spd(n, 10, 1), b = pe::reference::random_gaussian(n, k, 3);
  write("a.npy", a, n, n);
  write("b.npy", b, n, k);
  const int status = run("solve --device cuda --in " + path("a.npy") + " --rhs " + path("b.npy") + " --out " +
                         path("x.npy") + " --target 1e-6 --json");
  if (status == 0) {
    EXPECT_NE(slurp("stdout.txt").find("\"backend\":\"cuda\""), std::string::npos) << slurp("stdout.txt");
    EXPECT_LE(pe::reference::relative_residual(a, read("x.npy"), b, n, k), 1e-6);
  } else {
    EXPECT_EQ(status, 1);
    EXPECT_NE(slurp("stderr.txt").find("CUDA"), std::string::npos) << slurp("stderr.txt");
    EXPECT_EQ(slurp("stderr.txt").find("view is on device"), std::string::npos) << slurp("stderr.txt");
    EXPECT_FALSE(fs::exists(path("x.npy")));
  }
  EXPECT_NE(run("gram-apply --p 2 --device gpu --in " + path("a.npy") + " --rhs " + path("b.npy") + " --out " +
                path("z.npy")),
            0);
  EXPECT_FALSE(fs::exists(path("z.npy")));
}

TEST_F(Cli, GramApplyBothForms) {
  const std::int64_t m = 30, n = 50, k = 2;
  const std::vector<double> g = pe::reference::random_gaussian(m, n, 5), b = pe::reference::random_gaussian(n, k, 6),
                            c = pe::reference::random_gaussian(m, k, 7);
  write("g.npy", g, m, n);
  write("b.npy", b, n, k);
  write("c.npy", c, m, k);
  // Plain: (G^T G + I)^{-1/2} B against the double reference.
  ASSERT_EQ(run("gram-apply --p 2 --lambda 1 --target 1e-10 --in " + path("g.npy") + " --rhs " + path("b.npy") +
                " --out " + path("z.npy") + " --json"),
            0)
      << slurp("stderr.txt");
  std::vector<double> a = pe::reference::multiply(transpose(g, m, n), g, n, m, n);
  for (std::int64_t i = 0; i < n; ++i) a[static_cast<std::size_t>(i + i * n)] += 1;
  const std::vector<double> root = pe::reference::inverse_root(a, n, 2);
  // 1e-7: the tracked bound 1e-10 plus rounding of a well-conditioned (cond ~ 10) Gram.
  EXPECT_LE(relative_difference(read("z.npy"), pe::reference::multiply(root, b, n, n, k)), 1e-7);
  // Range with the dual side: (G^T G + I)^{-1/2} G^T C.
  ASSERT_EQ(run("gram-apply --p 2 --lambda 1 --target 1e-10 --range --side dual --in " + path("g.npy") + " --rhs " +
                path("c.npy") + " --out " + path("zr.npy") + " --json"),
            0)
      << slurp("stderr.txt");
  EXPECT_NE(slurp("stdout.txt").find("\"side\":\"dual\""), std::string::npos);
  const std::vector<double> gtc = pe::reference::multiply(transpose(g, m, n), c, n, m, k);
  EXPECT_LE(relative_difference(read("zr.npy"), pe::reference::multiply(root, gtc, n, n, k)), 1e-7);
  // The dual side without --range, and lambda = 0 on a singular Gram, are errors without output.
  EXPECT_EQ(run("gram-apply --p 2 --side dual --in " + path("g.npy") + " --rhs " + path("b.npy") + " --out " +
                path("bad.npy")),
            1);
  EXPECT_EQ(run("gram-apply --p 2 --in " + path("g.npy") + " --rhs " + path("b.npy") + " --out " + path("bad.npy")), 1);
  EXPECT_NE(slurp("stderr.txt").find("lambda"), std::string::npos) << slurp("stderr.txt");
  EXPECT_FALSE(fs::exists(path("bad.npy")));
}

TEST_F(Cli, BenchSolveRuns) {
  ASSERT_EQ(run("bench-solve --n 32 --k 2 --repeats 1"), 0) << slurp("stderr.txt");
  const std::string out = slurp("stdout.txt");
  EXPECT_NE(out.find("general"), std::string::npos) << out;
  EXPECT_NE(out.find("spd"), std::string::npos) << out;
}

}  // namespace
