#include "common.hpp"

#include <cmath>

namespace pe::detail::solve {

template <class View>
void check_view(const char* name, const View& v, Device device) {
  const std::string pre = std::string(name) + ": ";
  if (v.data == nullptr) throw Error(pre + "data pointer is null");
  if (v.rows < 1 || v.cols < 1)
    throw Error(pre + "shape " + std::to_string(v.rows) + " x " + std::to_string(v.cols) + " must be at least 1 x 1");
  if (v.dtype != DType::f32 && v.dtype != DType::f64)
    throw Error(pre + "dtype " + to_string(v.dtype) + " is not supported (expected f32 or f64)");
  const std::int64_t inner = v.layout == Layout::col_major ? v.rows : v.cols;
  if (v.ld < inner)
    throw Error(pre + "leading dimension " + std::to_string(v.ld) + " is below " + std::to_string(inner) +
                (v.layout == Layout::col_major ? " (rows, column-major)" : " (cols, row-major)"));
  if (v.batch != 1)
    throw Error(pre + "batch count " + std::to_string(v.batch) + ": solves and Gram applies take one matrix (batch 1)");
  if (v.device != device)
    throw Error(pre + "view is on device " + to_string(v.device) + " but options.device is " + to_string(device));
}
template void check_view<Matrix>(const char*, const Matrix&, Device);
template void check_view<MutableMatrix>(const char*, const MutableMatrix&, Device);

std::vector<double> host_copy(Backend& backend, const Mat& m) {
  std::vector<double> out(static_cast<std::size_t>(m.rows * m.cols));
  backend.download(m, HostMat{out.data(), DType::f64, m.rows, m.cols, m.rows, 1, m.rows * m.cols, Layout::col_major});
  return out;
}

void check_finite(Backend& backend, const char* name, const Mat& m) {
  backend.count_nonfinite(m, 0);
  if (!(backend.fetch_scalars()[0][0] > 0)) return;
  const std::vector<double> host = host_copy(backend, m);
  for (std::size_t i = 0; i < host.size(); ++i)
    if (!std::isfinite(host[i]))
      throw Error(std::string(name) + ": entry (" + std::to_string(static_cast<std::int64_t>(i) % m.rows) + ", " +
                  std::to_string(static_cast<std::int64_t>(i) / m.rows) + ") is " + format_number(host[i]) +
                  "; expected finite values");
}

void move_in(Backend& backend, const char* name, const Matrix& v, Mat& dst) {
  if (v.device == Device::cpu) {
    backend.upload(HostMat{const_cast<void*>(v.data), v.dtype, v.rows, v.cols, v.ld, 1, 0, v.layout}, dst);
    return;
  }
  if (v.dtype != backend.storage())
    throw Error(std::string(name) + ": device views must be in the storage dtype " + to_string(backend.storage()) +
                ", got " + to_string(v.dtype));
  if (v.layout != Layout::col_major) throw Error(std::string(name) + ": device views must be column-major");
  backend.copy(Mat{const_cast<void*>(v.data), v.rows, v.cols, v.ld, 1, v.ld * v.cols}, dst);
}

void move_out(Backend& backend, const Mat& src, const MutableMatrix& v) {
  if (v.device == Device::cpu) {
    backend.download(src, HostMat{v.data, v.dtype, v.rows, v.cols, v.ld, 1, 0, v.layout});
    return;
  }
  if (v.dtype != backend.storage())
    throw Error("output: device views must be in the storage dtype " + std::string(to_string(backend.storage())) +
                ", got " + to_string(v.dtype));
  if (v.layout != Layout::col_major) throw Error("output: device views must be column-major");
  Mat dst{v.data, v.rows, v.cols, v.ld, 1, v.ld * v.cols};
  backend.copy(src, dst);
}

Matrix view_of(const Backend& backend, const Mat& m, Device device) {
  Matrix v;
  v.data = m.data;
  v.rows = m.rows;
  v.cols = m.cols;
  v.ld = m.ld;
  v.dtype = backend.storage();
  v.layout = Layout::col_major;
  v.device = device;
  return v;
}

MutableMatrix mutable_view_of(const Backend& backend, Mat& m, Device device) {
  MutableMatrix v;
  v.data = m.data;
  v.rows = m.rows;
  v.cols = m.cols;
  v.ld = m.ld;
  v.dtype = backend.storage();
  v.layout = Layout::col_major;
  v.device = device;
  return v;
}

double frobenius(Backend& backend, const Mat& m) {
  backend.frobenius_norm(m, 0);
  return backend.fetch_scalars()[0][0];
}

}  // namespace pe::detail::solve
