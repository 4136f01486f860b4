// Compiler differences, in one place: what GCC and Clang spell as builtins and MSVC
// as intrinsics. Macros only: this header is included by the per-ISA kernel units,
// where an inline function would be compiled once per ISA and the linker could keep
// the AVX-512 copy for every caller (kernel-design.md, "Runtime ISA dispatch").
#pragma once

#if defined(_MSC_VER) && !defined(__clang__)
#if defined(_M_X64) || defined(_M_IX86)
#include <xmmintrin.h>
// __builtin_prefetch(p, rw, locality): locality 3 keeps the line in every level
// (T0), 0 in none (NTA). MSVC's _mm_prefetch has no write hint; a read hint serves.
#define MATGRAD_PREFETCH(p, rw, locality)                                                       \
    _mm_prefetch(reinterpret_cast<const char*>(p), (locality) >= 3   ? _MM_HINT_T0           \
                                                   : (locality) == 2 ? _MM_HINT_T1           \
                                                   : (locality) == 1 ? _MM_HINT_T2           \
                                                                     : _MM_HINT_NTA)
#else
#define MATGRAD_PREFETCH(p, rw, locality) ((void)(p))
#endif
#else
#define MATGRAD_PREFETCH(p, rw, locality) __builtin_prefetch((p), (rw), (locality))
#endif

// Keeps a function out of its caller, where inlining it would change how the
// caller's own hot loop is compiled (direct_tiles_impl.inc, direct_tile_kernel).
#if defined(_MSC_VER) && !defined(__clang__)
#define MATGRAD_NOINLINE __declspec(noinline)
#else
#define MATGRAD_NOINLINE __attribute__((noinline))
#endif

// Puts a small helper's body into its caller before any other optimisation, so the
// caller compiles as if the body were written there (microkernel_impl.inc, rank1_step).
#if defined(_MSC_VER) && !defined(__clang__)
#define MATGRAD_ALWAYS_INLINE __forceinline
#else
#define MATGRAD_ALWAYS_INLINE inline __attribute__((always_inline))
#endif

// Unrolls the loop that follows it n times (fully, where the trip count is a constant
// no larger than n): GCC's and Clang's pragma, nothing on MSVC, which has no
// equivalent and warns about pragmas it does not know.
#if defined(_MSC_VER) && !defined(__clang__)
#define MATGRAD_UNROLL(n)
#else
#define MATGRAD_PRAGMA(text) _Pragma(#text)
#define MATGRAD_UNROLL(n) MATGRAD_PRAGMA(GCC unroll n)
#endif
