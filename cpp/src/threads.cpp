// Thread control. matgrad keeps its own count instead of calling
// omp_set_num_threads, whose setting belongs to the calling thread only:
// a count set from one Python thread must hold for kernels run from another.
#include "threads.hpp"

#include <atomic>
#include <stdexcept>
#include <string>

#include "matgrad/matgrad.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define MATGRAD_HAVE_ATFORK 1
#endif

namespace matgrad {
namespace detail {
namespace {

int default_threads() {
#if defined(_OPENMP)
    return omp_get_max_threads();  // honours OMP_NUM_THREADS
#else
    return 1;
#endif
}

std::atomic<int>& thread_count();

// GNU libgomp is not fork-safe: a child forked after the parent's thread team
// started hangs in its first parallel region. The child therefore drops to one
// thread, which never enters the team (it may raise the count again, at its
// own risk, with set_num_threads).
void drop_to_one_thread_in_child() { thread_count().store(1, std::memory_order_relaxed); }

int initial_threads() {
#if defined(MATGRAD_HAVE_ATFORK)
    pthread_atfork(nullptr, nullptr, &drop_to_one_thread_in_child);
#endif
    return default_threads();
}

std::atomic<int>& thread_count() {
    static std::atomic<int> count{initial_threads()};
    return count;
}

thread_local int serial_depth = 0;  // SerialScopes alive on this thread

}  // namespace

int max_threads() { return serial_depth > 0 ? 1 : thread_count().load(std::memory_order_relaxed); }

SerialScope::SerialScope() { ++serial_depth; }
SerialScope::~SerialScope() { --serial_depth; }

int thread_index() {
#if defined(_OPENMP)
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int team_size() {
#if defined(_OPENMP)
    return omp_get_num_threads();
#else
    return 1;
#endif
}

}  // namespace detail

void set_num_threads(int n) {
    if (n < 1)
        throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
#if !defined(_OPENMP)
    n = 1;  // built without OpenMP: kernels are single-threaded
#endif
    detail::thread_count().store(n, std::memory_order_relaxed);
}

int get_num_threads() { return detail::max_threads(); }

bool has_openmp() {
#if defined(_OPENMP)
    return true;
#else
    return false;
#endif
}

}  // namespace matgrad
