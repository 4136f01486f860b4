#!/usr/bin/env bash
# Times one GEMM under this tree's matgrad and under numpy's own OpenBLAS (or
# PyTorch's MKL), in one process, calls alternating on the same operands
# (benchmarks/vs_blas.cpp): on a noisy shared host this sees what compare.py's
# separate processes cannot (docs/tuning.md, "Measuring a change in one process").
# A diagnostic: the figures BENCHMARKS.md records come from compare.py.
#
#   scripts/vs-blas.sh [--isa avx2|avx512|baseline] [--torch] M N K [--trans-a] [--trans-b]
#                      [--f64] [--pairs P] [--settle-ms S] [--calls C]
#
# --isa: matgrad's kernel set (MATGRAD_ISA) and the BLAS's kernel for the same
# instructions: OpenBLAS's OPENBLAS_CORETYPE Haswell, SkylakeX, Nehalem and MKL's
# MKL_ENABLE_INSTRUCTIONS AVX2, AVX512, SSE4_2 (compare.py's pairs). Without it
# those variables apply as the environment sets them, and where it does not, each
# library picks its own.
# The BLAS: VS_BLAS_LIBRARY; else with --torch the MKL inside PyTorch's libtorch_cpu
# (the sgemm_ / dgemm_ that PyTorch's float matmul calls on the CPU); else the OpenBLAS
# that numpy loads, as threadpoolctl reports it (else numpy.libs). Both are asked of
# PYTHON (default python3).
# Threads: OMP_NUM_THREADS for both (OPENBLAS_NUM_THREADS and MKL_NUM_THREADS follow
# it unless set).
# The build goes to a temporary folder (VS_BLAS_BUILD keeps it). CXX: the compiler.
set -euo pipefail

usage() {
  echo "vs-blas.sh: $1" >&2
  echo "usage: scripts/vs-blas.sh [--isa avx2|avx512|baseline] [--torch] M N K [--trans-a] [--trans-b]" \
       "[--f64] [--pairs P] [--settle-ms S] [--calls C]" >&2
  exit 2
}
root=$(cd "$(dirname "$0")/.." && pwd)
isa=""
torch=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --isa) [ $# -ge 2 ] || usage "--isa needs a value"; isa=$2; shift 2 ;;
    --torch) torch=1; shift ;;
    --blas) usage "the script finds the library itself: set VS_BLAS_LIBRARY to choose another" ;;
    *) args+=("$1"); shift ;;
  esac
done
[ ${#args[@]} -ge 3 ] || usage "expected the three sizes M N K"
case "$isa" in
  "") core="" mkl_limit="" ;;
  avx2) core=Haswell mkl_limit=AVX2 ;;
  avx512) core=SkylakeX mkl_limit=AVX512 ;;
  baseline) core=Nehalem mkl_limit=SSE4_2 ;;
  *) usage "--isa must be avx2, avx512 or baseline, not '$isa'" ;;
esac

if [ -n "${VS_BLAS_LIBRARY:-}" ]; then
  blas=$VS_BLAS_LIBRARY
elif [ "$torch" = 1 ]; then
  blas=$("${PYTHON:-python3}" -c '
import glob, os, sys
try:
    import torch
except ImportError:
    sys.exit(1)
paths = sorted(glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.*")))
print(paths[0]) if paths else sys.exit(1)
' 2>/dev/null) || usage "cannot find PyTorch's libtorch_cpu (is torch installed for ${PYTHON:-python3}?)"
elif ! blas=$("${PYTHON:-python3}" - <<'PY'
import glob, os, sys
import numpy
try:
    from threadpoolctl import threadpool_info
    paths = [i["filepath"] for i in threadpool_info() if i.get("internal_api") == "openblas"]
except ImportError:
    paths = []
if not paths:  # the wheels of numpy keep their OpenBLAS beside the package
    here = os.path.dirname(numpy.__file__)
    paths = sorted(glob.glob(here + ".libs/lib*openblas*.so*") + glob.glob(here + "/.dylibs/lib*openblas*.dylib"))
if not paths:
    sys.exit("numpy " + numpy.__version__ + " loads no OpenBLAS that threadpoolctl or numpy.libs shows")
print(paths[0])
PY
); then
  usage "cannot find numpy's OpenBLAS (set VS_BLAS_LIBRARY to a CBLAS library)"
fi

if [ -n "${VS_BLAS_BUILD:-}" ]; then
  work=$(mkdir -p "$VS_BLAS_BUILD" && cd "$VS_BLAS_BUILD" && pwd)
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
# shellcheck source=scripts/kernels-library.sh
. "$root/scripts/kernels-library.sh"   # library SOURCE BUILD [CXXFLAGS]; $cxx
echo "== building this tree; BLAS: $blas" >&2
library "$root" "$work/lib"
"$cxx" -std=c++17 -O2 -fopenmp -I"$root/cpp/include" "$root/benchmarks/vs_blas.cpp" \
  "$work/lib/libmatgrad_kernels.a" -ldl -o "$work/vs_blas"

if [ -n "$isa" ]; then
  export MATGRAD_ISA=$isa OPENBLAS_CORETYPE=$core MKL_ENABLE_INSTRUCTIONS=$mkl_limit
fi
if [ -n "${OMP_NUM_THREADS:-}" ]; then   # the BLAS's own thread count follows, unless set
  [ -n "${OPENBLAS_NUM_THREADS:-}" ] || export OPENBLAS_NUM_THREADS=$OMP_NUM_THREADS
  [ -n "${MKL_NUM_THREADS:-}" ] || export MKL_NUM_THREADS=$OMP_NUM_THREADS
fi
"$work/vs_blas" --blas "$blas" "${args[@]}"
