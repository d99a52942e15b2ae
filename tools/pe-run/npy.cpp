#include "npy.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>

namespace pe_run {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw pe::Error(path + ": " + what);
}

}  // namespace

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot be opened");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.size() < 10 || std::memcmp(bytes.data(), "\x93NUMPY", 6) != 0) fail(path, "is not a .npy file (bad magic)");
  const auto major = static_cast<unsigned char>(bytes[6]);
  std::size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) fail(path, "truncated header");
    header_len = 0;
    for (int i = 0; i < 4; ++i) header_len |= static_cast<std::size_t>(static_cast<unsigned char>(bytes[8 + i])) << (8 * i);
    offset = 12;
  } else {
    fail(path, "unsupported .npy format version " + std::to_string(major));
  }
  if (bytes.size() < offset + header_len) fail(path, "truncated header");
  const std::string header(bytes.data() + offset, header_len);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')")))
    fail(path, "header has no 'descr'");
  NpyArray out;
  const std::string descr = m[1];
  if (descr == "<f8" || descr == "=f8")
    out.dtype = pe::DType::f64;
  else if (descr == "<f4" || descr == "=f4")
    out.dtype = pe::DType::f32;
  else
    fail(path, "dtype '" + descr + "' is not supported (expected little-endian float32 '<f4' or float64 '<f8')");
  if (!std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*(True|False))")))
    fail(path, "header has no 'fortran_order'");
  if (m[1] == "True") fail(path, "is in Fortran order; expected C order");
  if (!std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) fail(path, "header has no 'shape'");
  const std::string shape = m[1];
  std::smatch dims;
  if (!std::regex_match(shape, dims, std::regex(R"(\s*(\d+)\s*,\s*(\d+)\s*,?\s*)")))
    fail(path, "shape (" + shape + ") is not 2-D");
  out.rows = std::stoll(dims[1]);
  out.cols = std::stoll(dims[2]);
  const std::size_t elem = out.dtype == pe::DType::f64 ? 8 : 4;
  const std::size_t count = static_cast<std::size_t>(out.rows) * static_cast<std::size_t>(out.cols);
  const std::size_t data_bytes = bytes.size() - offset - header_len;
  if (data_bytes != count * elem)
    fail(path, "holds " + std::to_string(data_bytes) + " data bytes, expected " + std::to_string(count * elem) +
                   " for shape (" + std::to_string(out.rows) + ", " + std::to_string(out.cols) + ")");
  out.data.resize(count);
  const char* p = bytes.data() + offset + header_len;
  for (std::size_t i = 0; i < count; ++i) {
    if (elem == 8) {
      double v;
      std::memcpy(&v, p + i * 8, 8);
      out.data[i] = v;
    } else {
      float v;
      std::memcpy(&v, p + i * 4, 4);
      out.data[i] = v;
    }
  }
  return out;
}

void write_npy(const std::string& path, std::int64_t rows, std::int64_t cols, pe::DType dtype,
               const std::vector<double>& data) {
  if (dtype != pe::DType::f32 && dtype != pe::DType::f64) throw pe::Error(path + ": can only write float32/float64");
  std::string header = std::string("{'descr': '") + (dtype == pe::DType::f64 ? "<f8" : "<f4") +
                       "', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " + std::to_string(cols) +
                       "), }";
  // Pad with spaces so that magic + version + length + header + '\n' is a multiple of 64.
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string blob = std::string("\x93NUMPY\x01\x00", 8);
  blob += static_cast<char>(header.size() & 0xff);
  blob += static_cast<char>((header.size() >> 8) & 0xff);
  blob += header;
  const std::size_t base = blob.size();
  const std::size_t elem = dtype == pe::DType::f64 ? 8 : 4;
  blob.resize(base + data.size() * elem);
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (elem == 8) {
      std::memcpy(&blob[base + i * 8], &data[i], 8);
    } else {
      const float v = static_cast<float>(data[i]);
      std::memcpy(&blob[base + i * 4], &v, 4);
    }
  }
  const std::filesystem::path target(path);
  const std::filesystem::path dir = target.has_parent_path() ? target.parent_path() : std::filesystem::path(".");
  std::string name = target.filename().string();
  name.insert(0, 1, '.');
  name.append(".tmp.XXXXXX");
  std::string tmpl = (dir / name).string();
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) throw pe::Error(path + ": cannot create a temporary file in " + dir.string());
  std::size_t written = 0;
  while (written < blob.size()) {
    const ssize_t w = ::write(fd, blob.data() + written, blob.size() - written);
    if (w <= 0) break;
    written += static_cast<std::size_t>(w);
  }
  const bool ok = written == blob.size() && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || std::rename(tmpl.c_str(), path.c_str()) != 0) {
    std::remove(tmpl.c_str());
    throw pe::Error(path + ": could not be written");
  }
}

}  // namespace pe_run
