#!/usr/bin/env bash
# Times one GEMM under this tree's kernels and under COMMIT's, in one process,
# calls alternating on the same operands (benchmarks/ab_gemm.cpp): the way to see a
# change of a few per cent on a noisy shared host, where separate processes differ
# by 10-50% with no change at all (docs/tuning.md, "Measuring a change in one process").
#
#   scripts/ab-gemm.sh COMMIT M N K [--trans-a] [--trans-b] [--f64] [--pairs P]
#                      [--settle-ms S] [--old-isa NAME] [--new-isa NAME] [--require-identical]
#
# COMMIT's sources (git archive) and this tree's are each built as the plain C++
# library (Release, no Python), COMMIT's with -Dmatgrad=matgrad_old, and both are
# linked into ab_gemm. The work tree's uncommitted changes count as "new". Builds
# go to a temporary folder (AB_GEMM_BUILD keeps them there between runs instead).
# MATGRAD_ISA, MATGRAD_BLOCKING and OMP_NUM_THREADS apply to both builds alike.
set -euo pipefail

if [ $# -lt 4 ]; then
  echo "usage: scripts/ab-gemm.sh COMMIT M N K [--trans-a] [--trans-b] [--f64] [--pairs P]" \
       "[--settle-ms S] [--old-isa NAME] [--new-isa NAME] [--require-identical]" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
commit=$1
shift
if ! git -C "$root" rev-parse --verify -q "$commit^{commit}" >/dev/null; then
  echo "ab-gemm.sh: '$commit' is not a commit of $root" >&2
  exit 2
fi
if [ -n "${AB_GEMM_BUILD:-}" ]; then
  work=$AB_GEMM_BUILD
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
jobs=${JOBS:-2}

library() {  # library SOURCE BUILD [CXXFLAGS]: the static kernels library, quietly
  cmake -S "$1" -B "$2" -DCMAKE_BUILD_TYPE=Release -DMATGRAD_BUILD_PYTHON=OFF \
    -DMATGRAD_BUILD_TESTS=OFF -DMATGRAD_BUILD_BENCHMARKS=OFF -DCMAKE_CXX_FLAGS="${3:-}" >/dev/null
  cmake --build "$2" --target matgrad_kernels -j "$jobs" >/dev/null
}

rm -rf "$work/old-src"
mkdir -p "$work/old-src"
git -C "$root" archive "$commit" | tar -x -C "$work/old-src"
echo "== building $(git -C "$root" rev-parse --short "$commit") as matgrad_old, and this tree" >&2
library "$work/old-src" "$work/old" "-Dmatgrad=matgrad_old"
library "$root" "$work/new"
"${CXX:-g++}" -std=c++17 -O2 -fopenmp -I"$root/cpp/include" \
  -DMATGRAD_OLD_HEADER="\"$work/old-src/cpp/include/matgrad/matgrad.hpp\"" \
  "$root/benchmarks/ab_gemm.cpp" "$work/new/libmatgrad_kernels.a" "$work/old/libmatgrad_kernels.a" \
  -o "$work/ab_gemm"
"$work/ab_gemm" "$@"
