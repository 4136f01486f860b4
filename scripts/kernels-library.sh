# Sourced by scripts/ab-gemm.sh and scripts/vs-blas.sh.
# cxx: the compiler for the libraries and the harness alike (one OpenMP runtime).
cxx=${CXX:-g++}
jobs=${JOBS:-2}

library() {  # library SOURCE BUILD [CXXFLAGS]: the static kernels library, Release, no Python, quietly
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER="$cxx" -DMATGRAD_BUILD_PYTHON=OFF \
    -DMATGRAD_BUILD_TESTS=OFF -DMATGRAD_BUILD_BENCHMARKS=OFF -DCMAKE_CXX_FLAGS="${3:-}" >/dev/null
  cmake --build "$2" --target matgrad_kernels -j "$jobs" >/dev/null
}
