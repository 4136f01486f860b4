#pragma once

#include <cstdint>

namespace matgrad::detail {

// Threads a kernel may use now (matgrad::set_num_threads, default OpenMP's);
// 1 inside a SerialScope.
int max_threads();

// Makes the kernels the calling thread runs single-threaded while it lives: a
// kernel that splits its own work over a team (conv over images) runs a GEMM
// per member, and a nested team would only add overhead.
class SerialScope {
public:
    SerialScope();
    ~SerialScope();
    SerialScope(const SerialScope&) = delete;
    SerialScope& operator=(const SerialScope&) = delete;
};

// Index of the calling thread inside a parallel region, and the team size.
int thread_index();
int team_size();

// Runs body(tid, team) on a team of `threads` (tid < team; OpenMP may give
// fewer than asked), or once as body(0, 1) on the calling thread when threads
// is 1: entering an OpenMP region costs about a microsecond even for a team of
// one, which small products (every op of a small network) cannot afford.
template <class Body>
void run_team(int threads, const Body& body) {
#if defined(_OPENMP)
    if (threads > 1) {
#pragma omp parallel num_threads(threads)
        body(thread_index(), team_size());
        return;
    }
#endif
    body(0, 1);
}

}  // namespace matgrad::detail
