#!/usr/bin/env bash
# Cross-compiles the C++ library and its ctest programs for aarch64 with Debian's
# g++-aarch64-linux-gnu and runs them under qemu-aarch64 (Debian's qemu-user).
# The scalar reference is the oracle: every GEMM path (small, skinny, packed, row)
# on the neon and baseline kernel sets, odd sizes, the four transpose cases, both
# dtypes, ReLU, the fused linear layer, convolution and pooling.
#
# Emulation checks correctness only: qemu's timings say nothing about an ARM CPU's
# speed, and no figure for ARM is claimed from them.
#
#   scripts/test-aarch64.sh     build in build/aarch64 (MATGRAD_AARCH64_BUILD overrides)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${MATGRAD_AARCH64_BUILD:-$root/build/aarch64}
jobs=${JOBS:-2}

if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing g++-aarch64-linux-gnu and qemu-user (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++-aarch64-linux-gnu qemu-user >/dev/null
  else
    echo "test-aarch64.sh: needs aarch64-linux-gnu-g++ and qemu-aarch64" \
         "(Debian: apt-get install g++-aarch64-linux-gnu qemu-user)" >&2
    exit 2
  fi
fi

start=$(date +%s)
mkdir -p "$build"
echo "== cross-compile for aarch64 ($(aarch64-linux-gnu-g++ --version | head -n1))"
cmake -S "$root" -B "$build" -DCMAKE_TOOLCHAIN_FILE="$root/cmake/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE=Release -DMATGRAD_BUILD_TESTS=ON -DMATGRAD_BUILD_PYTHON=OFF \
  -DMATGRAD_BUILD_BENCHMARKS=OFF >"$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
grep -E "matgrad:" "$build/configure.log" || true
cmake --build "$build" -j "$jobs" >/dev/null

echo "== the programs are aarch64 executables"
file_of() { od -An -tx1 -j18 -N2 "$1" | tr -d ' '; }  # ELF e_machine, little-endian
for exe in "$build"/test_*; do
  [ -x "$exe" ] || continue
  if [ "$(file_of "$exe")" != "b700" ]; then  # EM_AARCH64 = 183 = 0xb7
    echo "$exe is not an aarch64 executable" >&2
    exit 1
  fi
done
fmlas=$(aarch64-linux-gnu-objdump -d "$build/CMakeFiles/matgrad_kernels.dir/cpp/src/kernels/neon.cpp.o" \
        | grep -cE 'fmla[[:space:]]+v[0-9]+\.(4s|2d)' || true)
if [ "$fmlas" -eq 0 ]; then
  echo "the neon unit has no vector FMAs: its kernels were not built" >&2
  exit 1
fi

echo "== ctest under qemu-aarch64 (correctness only; emulated timings mean nothing)"
(cd "$build" && ctest --output-on-failure)
echo "== aarch64 tests passed in $(( $(date +%s) - start )) s"
