#!/usr/bin/env bash
# Times one GEMM under this tree's kernels and under COMMIT's, in one process,
# calls alternating on the same operands (benchmarks/ab_gemm.cpp): on a noisy shared
# host, where separate processes differ by 10-50% with no change at all, this sees
# differences of about 5% once they repeat (docs/tuning.md, "Measuring a change in
# one process").
#
#   scripts/ab-gemm.sh COMMIT M N K [--trans-a] [--trans-b] [--f64] [--pairs P]
#                      [--settle-ms S] [--calls C] [--old-isa NAME] [--new-isa NAME]
#                      [--old-blocking KC,NC,MC] [--new-blocking KC,NC,MC] [--require-identical]
#
# COMMIT's sources (git archive) and this tree's are each built as the plain C++
# library (Release, no Python), COMMIT's with -Dmatgrad=matgrad_old, and both are
# linked into ab_gemm. The work tree's uncommitted changes count as "new". Builds
# go to a temporary folder (AB_GEMM_BUILD keeps them there between runs instead,
# one per commit). CXX picks the compiler (default g++; it needs OpenMP).
# MATGRAD_ISA, MATGRAD_BLOCKING and OMP_NUM_THREADS apply to both builds alike.
set -euo pipefail

if [ $# -lt 4 ]; then
  echo "usage: scripts/ab-gemm.sh COMMIT M N K [--trans-a] [--trans-b] [--f64] [--pairs P]" \
       "[--settle-ms S] [--calls C] [--old-isa NAME] [--new-isa NAME] [--old-blocking KC,NC,MC]" \
       "[--new-blocking KC,NC,MC] [--require-identical]" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
commit=$1
shift
if ! command -v git >/dev/null || ! git -C "$root" rev-parse --git-dir >/dev/null 2>&1; then
  echo "ab-gemm.sh: needs git and $root as a git checkout" >&2
  exit 2
fi
if ! sha=$(git -C "$root" rev-parse --verify -q "$commit^{commit}"); then
  echo "ab-gemm.sh: '$commit' is not a commit of $root" >&2
  exit 2
fi
if [ -n "${AB_GEMM_BUILD:-}" ]; then
  work=$(mkdir -p "$AB_GEMM_BUILD" && cd "$AB_GEMM_BUILD" && pwd)   # absolute: the header path below
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
# shellcheck source=scripts/kernels-library.sh
. "$root/scripts/kernels-library.sh"   # library SOURCE BUILD [CXXFLAGS]; $cxx

# One source folder and build per commit, kept with AB_GEMM_BUILD: files extracted
# again over an older build keep the commit's times, so make would not rebuild them.
old_src=$work/old-src-$sha
old_build=$work/old-$sha
if [ ! -f "$old_src/CMakeLists.txt" ]; then
  rm -rf "$old_src"
  mkdir -p "$old_src"
  git -C "$root" archive "$sha" | tar -x -C "$old_src"
fi
echo "== building $(git -C "$root" rev-parse --short "$sha") as matgrad_old, and this tree" >&2
library "$old_src" "$old_build" "-Dmatgrad=matgrad_old"
library "$root" "$work/new"
# The old header under a name of its own, one line longer: GCC's #pragma once takes two
# files of the same size, time and contents for one, and would skip it.
{ cat "$old_src/cpp/include/matgrad/matgrad.hpp"; echo "// $sha, as matgrad_old (scripts/ab-gemm.sh)"; } \
  > "$work/matgrad_old.hpp"
"$cxx" -std=c++17 -O2 -fopenmp -I"$root/cpp/include" -DMATGRAD_OLD_HEADER="\"$work/matgrad_old.hpp\"" \
  "$root/benchmarks/ab_gemm.cpp" "$work/new/libmatgrad_kernels.a" "$old_build/libmatgrad_kernels.a" \
  -o "$work/ab_gemm"
"$work/ab_gemm" "$@"
