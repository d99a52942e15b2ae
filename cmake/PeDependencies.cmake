# Every third-party dependency comes from a Debian package and is found here, never vendored.
find_package(Boost 1.74 REQUIRED)                 # header-only: Boost.Multiprecision, Boost.Math
find_package(NLopt REQUIRED CONFIG)               # libnlopt-cxx-dev
find_package(nlohmann_json 3.10 REQUIRED CONFIG)  # nlohmann-json3-dev
find_package(CLI11 REQUIRED CONFIG)               # libcli11-dev
find_package(Threads REQUIRED)

# CPU linear algebra: OpenBLAS (CBLAS) and LAPACKE, from libopenblas-dev / liblapacke-dev.
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
find_package(LAPACK REQUIRED)
find_path(PE_CBLAS_INCLUDE_DIR NAMES cblas.h PATH_SUFFIXES openblas REQUIRED)
find_path(PE_LAPACKE_INCLUDE_DIR NAMES lapacke.h REQUIRED)
find_library(PE_LAPACKE_LIBRARY NAMES lapacke REQUIRED)
add_library(pe_cpu_linalg INTERFACE)
target_include_directories(pe_cpu_linalg INTERFACE ${PE_CBLAS_INCLUDE_DIR} ${PE_LAPACKE_INCLUDE_DIR})
target_link_libraries(pe_cpu_linalg INTERFACE ${PE_LAPACKE_LIBRARY} LAPACK::LAPACK BLAS::BLAS)

if(PE_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(PE_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
