#pragma once

#include <cstdint>

namespace matgrad::detail {

// Threads a kernel may use now (matgrad::set_num_threads, default OpenMP's).
int max_threads();

// Index of the calling thread inside a parallel region, and the team size.
int thread_index();
int team_size();

}  // namespace matgrad::detail
