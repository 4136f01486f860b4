// Random inputs for the benchmarks: reproducible standard normal values.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace bench {

template <class T = float>
std::vector<T> random_vector(int64_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::normal_distribution<T> dist(0, 1);
    std::vector<T> v(static_cast<size_t>(n));
    for (auto& x : v) x = dist(gen);
    return v;
}

}  // namespace bench
