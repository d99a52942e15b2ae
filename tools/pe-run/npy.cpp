#include "npy.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <utility>

#include "pe/detail/format.hpp"

namespace pe_run {

namespace {

[[noreturn]] void fail(const std::string& origin, const std::string& what) { throw pe::Error(origin + ": " + what); }

// Header text quoted in a message: bytes outside printable ASCII as \xNN (a corrupt header must not put
// control characters or line breaks into a one-line message), cut after 80 characters.
std::string printable(std::string_view text) {
  static constexpr std::size_t kMax = 80;
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  if (text.size() > kMax) out += "...";
  return out;
}

// The header is a Python dict literal, e.g. {'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), }.
// A small recursive-descent parser (no regex: its backtracking is slow and deep on hostile input) for
// the literals NumPy writes there: strings, True/False/None, integers, tuples, lists and dicts.
struct Literal {
  enum class Kind { string, boolean, none, integer, tuple, list, dict };
  Kind kind = Kind::none;
  std::string_view source;  // the literal as written (for messages)
  std::string text;         // string contents; integer digits with their sign
  bool flag = false;
  std::vector<Literal> items;     // tuple and list elements; dict values
  std::vector<std::string> keys;  // dict keys, one per value
};

class HeaderParser {
 public:
  HeaderParser(std::string_view header, const std::string& origin) : s_(header), origin_(origin) {}

  Literal parse() {
    Literal top = value(0);
    skip_space();
    if (pos_ != s_.size()) fail_at("unexpected text after the dict");
    if (top.kind != Literal::Kind::dict) fail_at("the header is not a dict");
    return top;
  }

 private:
  static constexpr int kMaxDepth = 16;  // NumPy headers nest two or three levels (structured dtypes)

  [[noreturn]] void fail_at(const std::string& what) const {
    fail(origin_, "header is not a valid .npy header: " + what + " at character " + std::to_string(pos_) +
                      " (expected a dict like {'descr': '<f8', 'fortran_order': False, 'shape': (3, 3), })");
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool take(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool take_word(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  Literal value(int depth) {
    if (depth > kMaxDepth) fail_at("literals nested deeper than " + std::to_string(kMaxDepth));
    skip_space();
    if (pos_ >= s_.size()) fail_at("the header ends where a value should start");
    const std::size_t start = pos_;
    Literal out;
    const char c = s_[pos_];
    if (c == '\'' || c == '"') {
      out.kind = Literal::Kind::string;
      out.text = string_body();
    } else if (c == '{') {
      ++pos_;
      out.kind = Literal::Kind::dict;
      while (!take('}')) {
        const Literal key = value(depth + 1);
        if (key.kind != Literal::Kind::string) fail_at("a dict key that is not a string");
        if (!take(':')) fail_at("a missing ':' after a key");
        out.keys.push_back(key.text);
        out.items.push_back(value(depth + 1));
        if (!take(',')) {
          if (!take('}')) fail_at("a missing ',' or '}' in a dict");
          break;
        }
      }
    } else if (c == '(' || c == '[') {
      const char close = c == '(' ? ')' : ']';
      ++pos_;
      out.kind = c == '(' ? Literal::Kind::tuple : Literal::Kind::list;
      while (!take(close)) {
        out.items.push_back(value(depth + 1));
        if (!take(',')) {
          if (!take(close)) fail_at(std::string("a missing ',' or '") + close + "'");
          break;
        }
      }
    } else if (c == '-' || c == '+' || (c >= '0' && c <= '9')) {
      out.kind = Literal::Kind::integer;
      if (c == '-' || c == '+') out.text += s_[pos_++];
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') out.text += s_[pos_++];
      if (out.text.empty() || out.text.back() < '0' || out.text.back() > '9') fail_at("a sign without digits");
    } else if (take_word("True") || take_word("False")) {
      out.kind = Literal::Kind::boolean;
      out.flag = s_[start] == 'T';
    } else if (take_word("None")) {
      out.kind = Literal::Kind::none;
    } else {
      fail_at("an unexpected character '" + printable(std::string_view(&s_[pos_], 1)) + "'");
    }
    out.source = s_.substr(start, pos_ - start);
    return out;
  }

  std::string string_body() {
    const char quote = s_[pos_++];
    std::string body;
    while (pos_ < s_.size() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;  // keep the escaped character itself
      body += s_[pos_++];
    }
    if (pos_ >= s_.size()) fail_at("a string that is never closed");
    ++pos_;
    return body;
  }

  std::string_view s_;
  const std::string& origin_;
  std::size_t pos_ = 0;
};

std::uint64_t little_endian(std::string_view bytes, std::size_t offset, int count) {
  std::uint64_t v = 0;
  for (int i = 0; i < count; ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  return v;
}

// A shape dimension as written: a non-negative integer that fits std::int64_t.
std::int64_t dimension(const Literal& d, const std::string& shape, const std::string& origin) {
  if (d.kind != Literal::Kind::integer) fail(origin, "shape " + shape + " holds " + printable(d.source) + ", not an integer");
  if (d.text[0] == '-' && d.text.find_first_not_of("-0") != std::string::npos)
    fail(origin, "shape " + shape + " has a negative dimension; expected sizes >= 1");
  std::uint64_t v = 0;
  for (char c : d.text) {
    if (c < '0' || c > '9') continue;
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (v > (static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) - digit) / 10)
      fail(origin, "shape " + shape + ": dimension " + printable(d.text) + " is too large (expected at most 2^63 - 1)");
    v = v * 10 + digit;
  }
  return static_cast<std::int64_t>(v);
}

}  // namespace

NpyArray parse_npy(std::string_view bytes, const std::string& origin) {
  static constexpr std::string_view kMagic = "\x93NUMPY";
  if (bytes.size() < 8 || bytes.substr(0, 6) != kMagic)
    fail(origin, "is not a .npy file (it does not start with the bytes \\x93NUMPY)");
  const auto major = static_cast<unsigned char>(bytes[6]), minor = static_cast<unsigned char>(bytes[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    fail(origin, "has .npy format version " + std::to_string(major) + "." + std::to_string(minor) +
                     "; expected 1.0, 2.0 or 3.0");
  const int length_bytes = major == 1 ? 2 : 4;
  const std::size_t preamble = 8 + static_cast<std::size_t>(length_bytes);
  if (bytes.size() < preamble) fail(origin, "is truncated inside its header length (" + std::to_string(bytes.size()) + " bytes)");
  const std::uint64_t header_length = little_endian(bytes, 8, length_bytes);
  if (header_length > bytes.size() - preamble)
    fail(origin, "is truncated: the header claims " + std::to_string(header_length) + " bytes, the file has " +
                     std::to_string(bytes.size() - preamble) + " after the preamble");
  const std::string_view header = bytes.substr(preamble, static_cast<std::size_t>(header_length));
  const Literal dict = HeaderParser(header, origin).parse();

  std::optional<Literal> descr, fortran, shape;
  for (std::size_t i = 0; i < dict.keys.size(); ++i) {
    const std::string& key = dict.keys[i];
    std::optional<Literal>* slot = key == "descr" ? &descr : key == "fortran_order" ? &fortran : key == "shape" ? &shape : nullptr;
    if (!slot) fail(origin, "header key '" + printable(key) + "' is not one of 'descr', 'fortran_order', 'shape'");
    if (*slot) fail(origin, "header key '" + printable(key) + "' appears twice");
    *slot = dict.items[i];
  }
  for (const auto& [name, v] : {std::pair{"descr", &descr}, std::pair{"fortran_order", &fortran}, std::pair{"shape", &shape}})
    if (!*v) fail(origin, std::string("header has no '") + name + "' (expected 'descr', 'fortran_order' and 'shape')");

  NpyArray out;
  if (descr->kind != Literal::Kind::string)
    fail(origin, "dtype " + printable(descr->source) +
                     " is a structured dtype; expected a plain float32 '<f4' or float64 '<f8' array");
  const std::string d = printable(descr->text);
  if (d == "<f8" || d == "=f8") {
    out.dtype = pe::DType::f64;
  } else if (d == "<f4" || d == "=f4") {
    out.dtype = pe::DType::f32;
  } else if (d == ">f8" || d == ">f4") {
    fail(origin, "dtype '" + d + "' is big-endian; expected little-endian '<f4' or '<f8' (np.asarray(a, '<f8'))");
  } else {
    fail(origin, "dtype '" + d + "' is not supported (expected little-endian float32 '<f4' or float64 '<f8')");
  }
  if (fortran->kind != Literal::Kind::boolean)
    fail(origin, "header 'fortran_order' is " + printable(fortran->source) + "; expected True or False");
  if (fortran->flag) fail(origin, "is in Fortran order; expected C order (save np.ascontiguousarray(a))");

  const std::string shape_text = printable(shape->source);
  if (shape->kind != Literal::Kind::tuple) fail(origin, "shape " + shape_text + " is not a tuple");
  if (shape->items.size() != 2)
    fail(origin, "shape " + shape_text + " has " + std::to_string(shape->items.size()) +
                     " dimension(s); expected a 2-D matrix (rows, cols)");
  out.rows = dimension(shape->items[0], shape_text, origin);
  out.cols = dimension(shape->items[1], shape_text, origin);
  if (out.rows == 0 || out.cols == 0) fail(origin, "shape " + shape_text + " is empty; expected at least 1 x 1");

  const std::uint64_t element = out.dtype == pe::DType::f64 ? 8 : 4;
  const std::uint64_t data_bytes = bytes.size() - preamble - header_length;
  const auto rows = static_cast<std::uint64_t>(out.rows), cols = static_cast<std::uint64_t>(out.cols);
  // rows * cols * element, unless it overflows 64 bits (then no file can hold it).
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  const bool overflows = cols > max / element || rows > max / (cols * element);
  const std::uint64_t needed = overflows ? 0 : rows * cols * element;
  if (overflows || needed != data_bytes)
    fail(origin, "holds " + std::to_string(data_bytes) + " data bytes, expected " +
                     (overflows ? "more than 2^64" : std::to_string(needed)) + " for shape " + shape_text + " of " + d +
                     (needed > data_bytes || overflows ? " (truncated, or a corrupt shape)" : " (trailing bytes)"));
  const auto count = static_cast<std::size_t>(rows * cols);
  out.data.resize(count);
  const char* p = bytes.data() + preamble + header_length;
  for (std::size_t i = 0; i < count; ++i) {
    if (out.dtype == pe::DType::f64) {
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

NpyArray read_npy(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, std::string("cannot be opened (") + std::strerror(errno) + "); expected a .npy file");
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(path, "is a directory; expected a .npy file");
  }
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    const ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      const int error = errno;
      ::close(fd);
      fail(path, std::string("could not be read (") + std::strerror(error) + ")");
    }
    if (got == 0) break;
    bytes.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return parse_npy(bytes, path);
}

void write_npy(const std::string& path, std::int64_t rows, std::int64_t cols, pe::DType dtype,
               const std::vector<double>& data) {
  if (dtype != pe::DType::f32 && dtype != pe::DType::f64) throw pe::Error(path + ": can only write float32/float64");
  if (rows < 1 || cols < 1 || data.size() != static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols))
    throw pe::Error(path + ": " + std::to_string(data.size()) + " values do not make a " + std::to_string(rows) +
                    " x " + std::to_string(cols) + " matrix; nothing was written");
  // The file must hold exactly the result: a value that is not finite, or that float32 rounds to
  // infinity (from FLT_MAX + half an ulp up), is refused before anything is written.
  const double limit = dtype == pe::DType::f64 ? INFINITY : 0x1.ffffffp127;
  for (std::size_t i = 0; i < data.size(); ++i)
    if (!std::isfinite(data[i]) || std::abs(data[i]) >= limit)
      throw pe::Error(path + ": entry (" + std::to_string(static_cast<std::int64_t>(i) / cols) + ", " +
                      std::to_string(static_cast<std::int64_t>(i) % cols) + ") is " + pe::detail::format_number(data[i]) +
                      (std::isfinite(data[i]) ? ", beyond float32's range" : "") +
                      "; expected finite values, so nothing was written");
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
