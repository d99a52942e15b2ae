// Compiled only when the CUDA backend is not built (PE_HAVE_CUDA OFF).
#include "backend_factory.hpp"

namespace pe::detail {

std::unique_ptr<Backend> make_cuda_backend(DType, ComputeMode, void*) {
  throw Error("pe was built without the CUDA backend");
}

}  // namespace pe::detail
