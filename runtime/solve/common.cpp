#include "common.hpp"

#include <cmath>

namespace pe::detail::solve {

std::vector<double> host_copy(Backend& backend, const Mat& m) {
  std::vector<double> out(static_cast<std::size_t>(m.rows * m.cols));
  backend.download(m, HostMat{out.data(), DType::f64, m.rows, m.cols, m.rows, 1, m.rows * m.cols, Layout::col_major});
  return out;
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
